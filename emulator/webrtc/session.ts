// WHIP/WHEP sessions over werift (Node only): non-trickle offer/answer, noticing a peer that is gone, and a
// full-ICE client peer for local test clients (clients.ts). The server side's peer is peer.ts's newPeer()
// (ICE lite, loopback candidate, no header extensions), shared with the Realtime SFU.

import { RTCPeerConnection, RTCRtpCodecParameters } from "werift";
import { gathered } from "./peer.ts";

const VIDEO_FEEDBACK = [{ type: "nack" }, { type: "nack", parameter: "pli" }, { type: "ccm", parameter: "fir" }];

export function codecs() {
  return {
    video: [
      new RTCRtpCodecParameters({ mimeType: "video/VP8", clockRate: 90000, rtcpFeedback: VIDEO_FEEDBACK }),
      new RTCRtpCodecParameters({
        mimeType: "video/H264",
        clockRate: 90000,
        rtcpFeedback: VIDEO_FEEDBACK,
        parameters: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f",
      }),
    ],
    audio: [new RTCRtpCodecParameters({ mimeType: "audio/opus", clockRate: 48000, channels: 2 })],
  };
}

/**
 * A client peer (full ICE agent) with Cloudflare's codecs (or only those of `only`), checking only the pair to
 * the far end's 127.0.0.1 candidate: with every interface paired, a loaded machine saw DTLS start on a path
 * the far end had not chosen, and fail.
 */
export function clientPeer(only?: { video?: string; audio?: string }): RTCPeerConnection {
  const all = codecs();
  const pick = (list: RTCRtpCodecParameters[], mime: string | undefined) => (mime ? list.filter((c) => c.mimeType.toLowerCase() === mime.toLowerCase()) : list);
  return new RTCPeerConnection({
    codecs: { video: pick(all.video, only?.video), audio: pick(all.audio, only?.audio) },
    iceAdditionalHostAddresses: ["127.0.0.1"],
    iceUseIpv6: false,
    iceFilterCandidatePair: (pair: { remoteCandidate: { host: string } }) => pair.remoteCandidate.host === "127.0.0.1",
  });
}

/** Answers an offer: the answer SDP with every candidate in it (WHIP/WHEP have no trickle here). */
export async function answer(pc: RTCPeerConnection, offerSdp: string): Promise<string> {
  await pc.setRemoteDescription({ type: "offer", sdp: offerSdp });
  await pc.setLocalDescription(await pc.createAnswer());
  await gathered(pc);
  return pc.localDescription!.sdp;
}

/** An offer with every candidate in it (for WHIP/WHEP clients). */
export async function offer(pc: RTCPeerConnection): Promise<string> {
  await pc.setLocalDescription(await pc.createOffer());
  await gathered(pc);
  return pc.localDescription!.sdp;
}


/**
 * Calls `onGone` once when the peer is gone for good: failed or closed, or disconnected for `graceMs`
 * (ICE consent lost: a vanished peer that sent no DELETE).
 */
export function whenGone(pc: RTCPeerConnection, onGone: (why: string) => void, graceMs = 5000): () => void {
  let timer: ReturnType<typeof setTimeout> | null = null;
  let done = false;
  const fire = (why: string) => {
    if (done) return;
    done = true;
    if (timer) clearTimeout(timer);
    sub.unSubscribe();
    onGone(why);
  };
  const sub = pc.connectionStateChange.subscribe((state) => {
    if (state === "failed" || state === "closed") return fire(`connection ${state}`);
    if (state === "disconnected" && !timer) timer = setTimeout(() => fire("connection lost"), graceMs);
    if (state === "connected" && timer) {
      clearTimeout(timer);
      timer = null;
    }
  });
  return () => {
    done = true;
    if (timer) clearTimeout(timer);
    sub.unSubscribe();
  };
}

/** A minimal check that a body is an SDP offer/answer worth handing to werift. */
export function looksLikeSdp(sdp: string): boolean {
  return sdp.startsWith("v=0") && /\r?\nm=(audio|video) /.test(sdp) && /\r?\na=fingerprint:/.test(sdp) && /\r?\na=ice-ufrag:/.test(sdp);
}
