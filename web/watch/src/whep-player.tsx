// The low-latency player for a stream ingested over WebRTC (WHIP), which has no HLS: WHEP
// (draft-ietf-wish-whep) at the stream's `webrtcUrl`, a receive-only RTCPeerConnection on a <video>. The offer
// carries every candidate (no trickle); the session is DELETEd when the player goes. A refused offer, or a
// connection that fails or is not up 10 s after the answer, is tried again 2 s later.
import { useEffect, useRef, useState } from "preact/hooks";

const RETRY_MS = 2_000;
const GATHER_MS = 2_000;
const CONNECT_MS = 10_000;

async function gathered(pc: RTCPeerConnection): Promise<void> {
  if (pc.iceGatheringState === "complete") return;
  await new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, GATHER_MS);
    pc.addEventListener("icegatheringstatechange", () => {
      if (pc.iceGatheringState !== "complete") return;
      clearTimeout(timer);
      resolve();
    });
  });
}

export function WhepPlayer({ webrtcUrl }: { webrtcUrl: string }) {
  const video = useRef<HTMLVideoElement>(null);
  const [note, setNote] = useState("Connecting to the live picture…");

  useEffect(() => {
    const el = video.current;
    if (!el) return;
    let done = false;
    let pc: RTCPeerConnection | null = null;
    let session: string | null = null;
    let retry: ReturnType<typeof setTimeout> | undefined;
    let connecting: ReturnType<typeof setTimeout> | undefined;
    const end = () => {
      clearTimeout(connecting);
      pc?.close();
      pc = null;
      if (session) void fetch(session, { method: "DELETE" }).catch(() => undefined);
      session = null;
    };
    const again = (why: string) => {
      end();
      if (done) return;
      setNote(`${why}; trying again.`);
      retry = setTimeout(start, RETRY_MS);
    };
    async function start() {
      if (done) return;
      const peer = new RTCPeerConnection();
      pc = peer;
      peer.addTransceiver("video", { direction: "recvonly" });
      peer.addTransceiver("audio", { direction: "recvonly" });
      peer.addEventListener("track", (e) => {
        const stream = el!.srcObject instanceof MediaStream ? el!.srcObject : new MediaStream();
        stream.addTrack(e.track);
        if (el!.srcObject !== stream) el!.srcObject = stream;
        void el!.play().catch(() => setNote("Press play to start the picture."));
      });
      peer.addEventListener("connectionstatechange", () => {
        if (pc !== peer) return;
        if (peer.connectionState === "connected") setNote("");
        if (peer.connectionState === "failed") again("The connection to the picture failed");
      });
      try {
        await peer.setLocalDescription(await peer.createOffer());
        await gathered(peer);
        const res = await fetch(webrtcUrl, { method: "POST", headers: { "content-type": "application/sdp" }, body: peer.localDescription!.sdp });
        if (pc !== peer) return;
        if (res.status !== 201) {
          const body = (await res.json().catch(() => null)) as { message?: string } | null;
          return again(`The picture is not available yet (HTTP ${res.status}${body?.message ? `: ${body.message}` : ""})`);
        }
        const location = res.headers.get("location");
        session = location ? new URL(location, webrtcUrl).href : null;
        await peer.setRemoteDescription({ type: "answer", sdp: await res.text() });
        connecting = setTimeout(() => {
          if (pc === peer && peer.connectionState !== "connected") again(`No connection to the picture after ${CONNECT_MS / 1000} s`);
        }, CONNECT_MS);
      } catch (error) {
        if (pc === peer) again(`The picture could not be reached (${error instanceof Error ? error.message : String(error)})`);
      }
    }
    void start();
    return () => {
      done = true;
      clearTimeout(retry);
      end();
      el.srcObject = null;
    };
  }, [webrtcUrl]);

  return (
    <figure class="player">
      <video ref={video} data-testid="player" controls muted autoplay playsInline aria-label="Live picture of the stream (WebRTC)" />
      <figcaption aria-live="polite">{note}</figcaption>
    </figure>
  );
}
