// Browser code for test/e2e/webrtc-chromium.test.mjs, bundled by esbuild (with partytracks and rxjs from
// node_modules: no CDN) into the pages the test serves. Written as a page of ours would be: WHIP and WHEP
// as plain fetch + RTCPeerConnection (RFC 9725, non-trickle), the room through partytracks' client with
// `prefix` = the stream's room. Each page shows one <video>; `window.webrtcPage` is what the test calls.
import { PartyTracks } from "partytracks/client";
import { of } from "rxjs";

const video = document.querySelector("video");
/** Frames the <video> presented (requestVideoFrameCallback), counted from the first one. */
let presented = 0;
/** When this page began to publish or watch, and when its <video> presented its first frame (performance.now()). */
let startedAt = null;
let firstFrameAt = null;
let peer = null;
const log = [];
const note = (line) => log.push(`${Math.round(performance.now() - (startedAt ?? 0))} ms: ${line}`);

function countFrames() {
  video.requestVideoFrameCallback(() => {
    if (presented === 0) {
      firstFrameAt = performance.now();
      note("first frame presented");
    }
    presented++;
    countFrames();
  });
}
countFrames();

function show(track) {
  video.srcObject = new MediaStream([track]);
  void video.play().catch((e) => note(`play(): ${e.message}`));
}

function watchPeer(pc, what) {
  peer = pc;
  pc.addEventListener("connectionstatechange", () => note(`${what} connection ${pc.connectionState}`));
  pc.addEventListener("iceconnectionstatechange", () => note(`${what} ice ${pc.iceConnectionState}`));
}

/** Waits for ICE gathering to finish (bounded: the candidates gathered by then go in the offer). */
async function gathered(pc, timeoutMs = 3000) {
  if (pc.iceGatheringState === "complete") return;
  await new Promise((resolve) => {
    const timer = setTimeout(resolve, timeoutMs);
    pc.addEventListener("icegatheringstatechange", () => {
      if (pc.iceGatheringState === "complete") {
        clearTimeout(timer);
        resolve();
      }
    });
  });
}

/** POSTs the peer's offer to a WHIP/WHEP endpoint and applies the answer; returns the session URL. */
async function offerTo(url, pc) {
  await pc.setLocalDescription(await pc.createOffer());
  await gathered(pc);
  note(`offer gathered (${pc.localDescription.sdp.match(/a=candidate/g)?.length ?? 0} candidates)`);
  const res = await fetch(url, { method: "POST", headers: { "content-type": "application/sdp" }, body: pc.localDescription.sdp });
  const text = await res.text();
  if (res.status !== 201) throw new Error(`${url} answered ${res.status}: ${text}`);
  note(`answered ${res.status}`);
  await pc.setRemoteDescription({ type: "answer", sdp: text });
  return new URL(res.headers.get("location"), url).href;
}

window.webrtcPage = {
  /**
   * The glasses: the fake camera, published over WHIP to `whipUrl` and pushed into the stream's room with
   * partytracks (the device token as `Authorization`). Resolves when both are sending, with the room
   * track's {sessionId, trackName} as partytracks reports it.
   */
  async publish({ whipUrl, roomPrefix, deviceToken, iceServers }) {
    startedAt = performance.now();
    const camera = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 360, frameRate: 30 }, audio: false });
    const [track] = camera.getVideoTracks();
    show(track);
    const whip = new RTCPeerConnection();
    watchPeer(whip, "whip");
    whip.addTransceiver(track, { direction: "sendonly" });
    const whipSession = await offerTo(whipUrl, whip);
    note(`whip answered, session ${whipSession}`);
    const room = new PartyTracks({ prefix: roomPrefix, headers: new Headers({ authorization: `Bearer ${deviceToken}` }), iceServers });
    const pushed = await new Promise((resolve, reject) => {
      room.push(of(track)).subscribe({ next: resolve, error: reject });
    });
    note(`pushed into the room as ${pushed.trackName}`);
    return { whipSession, sessionId: pushed.sessionId, trackName: pushed.trackName };
  },

  /** A WHEP viewer at the stream's `webrtcUrl`. */
  async watchWhep(url) {
    startedAt = performance.now();
    const pc = new RTCPeerConnection();
    watchPeer(pc, "whep");
    pc.addTransceiver("video", { direction: "recvonly" });
    pc.addEventListener("track", (e) => show(e.track));
    return offerTo(url, pc);
  },

  /** An app viewer: pulls the publisher's track from the room with partytracks (the app's headers). */
  async watchRoom({ roomPrefix, headers, iceServers, sessionId, trackName }) {
    startedAt = performance.now();
    const room = new PartyTracks({ prefix: roomPrefix, headers: new Headers(headers), iceServers });
    room.peerConnection$.subscribe((pc) => watchPeer(pc, "room"));
    room.history.addEventListener("logentry", () => {
      const entry = room.history.entries.at(-1);
      note(`partytracks ${entry.type} ${entry.method ?? ""} ${entry.endpoint.replace(roomPrefix, "").split("?")[0]}`);
    });
    room.pull(of({ location: "remote", sessionId, trackName })).subscribe({
      next: (track) => {
        note("room track pulled");
        show(track);
      },
      error: (e) => note(`room pull failed: ${e.message}`),
    });
  },

  /** What the page decoded and showed so far. */
  async stats() {
    let inbound = null;
    let outbound = null;
    if (peer) {
      (await peer.getStats()).forEach((s) => {
        if (s.type === "inbound-rtp" && s.kind === "video") inbound = { framesDecoded: s.framesDecoded ?? 0, keyFramesDecoded: s.keyFramesDecoded ?? 0, packetsReceived: s.packetsReceived ?? 0, pliCount: s.pliCount ?? 0 };
        if (s.type === "outbound-rtp" && s.kind === "video") outbound = { framesEncoded: s.framesEncoded ?? 0, packetsSent: s.packetsSent ?? 0, pliCount: s.pliCount ?? 0 };
      });
    }
    return {
      presented,
      /** ms from the start of publish()/watch…() to the first frame shown (the camera's own, for the glasses). */
      firstFrameMs: startedAt !== null && firstFrameAt !== null ? Math.round(firstFrameAt - startedAt) : null,
      width: video.videoWidth,
      height: video.videoHeight,
      connectionState: peer?.connectionState ?? null,
      inbound,
      outbound,
      log: log.slice(-30),
    };
  },
};
