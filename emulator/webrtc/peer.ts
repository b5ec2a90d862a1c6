// werift primitives shared by the emulator's WebRTC parts (Realtime SFU; WHIP/WHEP can use them too).
// Node only. Each answers one trap measured in BRIEF §6: loopback candidates, RTP header extensions,
// keyframe requests (PLI) and the exact H.264 profile.

import { RTCPeerConnection, RTCRtpCodecParameters, useH264, useOPUS, useVP8, type MediaStreamTrack, type RTCRtpReceiver, type RTCRtpSender, type RtpPacket } from "werift";

/** Codecs the emulator negotiates: VP8 first (what glasses should send), H.264 Constrained Baseline, Opus. */
export function emulatorCodecs(): { video: RTCRtpCodecParameters[]; audio: RTCRtpCodecParameters[] } {
  return {
    video: [useVP8({ payloadType: 96 }), useH264({ payloadType: 102 })],
    audio: [useOPUS({ payloadType: 111 })],
  };
}

/**
 * A werift peer as the emulator's server side needs it: loopback host candidates (werift gathers none
 * unless told: `iceAdditionalHostAddresses`), no RTP header extensions negotiated (see `forwardRtp`), our
 * codecs, and ICE lite, as an SFU is: it answers the client's checks and never runs its own, so a client
 * that applies the answer late (a slow signalling path) still connects instead of finding the server's
 * side already failed.
 */
export function newPeer(codecs = emulatorCodecs()): RTCPeerConnection {
  return new RTCPeerConnection({
    iceAdditionalHostAddresses: ["127.0.0.1"],
    iceUseIpv6: false,
    iceLite: true,
    codecs,
    headerExtensions: { video: [], audio: [] },
  });
}

/** Resolves once ICE gathering is complete (non-trickle signalling carries every candidate), or after `timeoutMs`. */
export async function gathered(pc: RTCPeerConnection, timeoutMs = 3_000): Promise<void> {
  if (pc.iceGatheringState === "complete") return;
  await new Promise<void>((resolve) => {
    const timer = setTimeout(done, timeoutMs);
    const { unSubscribe } = pc.iceGatheringStateChange.subscribe((state) => {
      if (state === "complete") done();
    });
    function done() {
      clearTimeout(timer);
      unSubscribe();
      resolve();
    }
  });
}

/** Sets the local description (offer or answer already created) and waits for ICE gathering. */
export async function localDescriptionGathered(pc: RTCPeerConnection, description: { type: "offer" | "answer" | "pranswer"; sdp: string }): Promise<string> {
  await pc.setLocalDescription(description);
  await gathered(pc);
  return pc.localDescription!.sdp;
}

/**
 * H.264 is only forwarded to a viewer whose codec has the publisher's exact profile-level-id and
 * packetization-mode (another profile decodes as black); other codecs match by MIME type and clock rate.
 */
export function sameCodec(a: RTCRtpCodecParameters, b: RTCRtpCodecParameters): boolean {
  if (a.mimeType.toLowerCase() !== b.mimeType.toLowerCase() || a.clockRate !== b.clockRate) return false;
  if (a.mimeType.toLowerCase() !== "video/h264") return true;
  const fmtp = (c: RTCRtpCodecParameters) => {
    const p = new Map((c.parameters ?? "").split(";").map((kv) => kv.trim().split("=") as [string, string]));
    return `${(p.get("profile-level-id") ?? "").toLowerCase()}/${p.get("packetization-mode") ?? "0"}`;
  };
  return fmtp(a) === fmtp(b);
}

/** The codecs a viewer may be offered for a publisher's codec: the same one, with a fresh payload type. */
export function codecsFor(source: RTCRtpCodecParameters, offered: RTCRtpCodecParameters[]): RTCRtpCodecParameters[] {
  return offered.filter((c) => sameCodec(c, source));
}

export interface Forwarding {
  stop(): void;
  /** Packets sent on to the viewer. */
  readonly forwarded: number;
}

/**
 * Forwards one received track to one sender: every RTP packet, with its header extensions stripped
 * (werift would copy them by id into the viewer's stream, where the ids mean something else), and the
 * viewer's keyframe requests (PLI) relayed to the publisher, without which a viewer that joins late
 * sees nothing until the next periodic keyframe.
 */
export function forwardRtp(source: { track: MediaStreamTrack; receiver: RTCRtpReceiver }, sender: RTCRtpSender): Forwarding {
  let forwarded = 0;
  const rtp = source.track.onReceiveRtp.subscribe((packet: RtpPacket) => {
    const copy = packet.clone();
    copy.header.extensions = [];
    copy.header.extension = false;
    void sender.sendRtp(copy).then(() => forwarded++, () => undefined);
  });
  const pli = sender.onPictureLossIndication.subscribe(() => {
    if (source.track.ssrc !== undefined) void source.receiver.sendRtcpPLI(source.track.ssrc).catch(() => undefined);
  });
  // The viewer's first frame needs a keyframe: ask the publisher for one now.
  if (source.track.ssrc !== undefined) void source.receiver.sendRtcpPLI(source.track.ssrc).catch(() => undefined);
  return {
    stop() {
      rtp.unSubscribe();
      pli.unSubscribe();
    },
    get forwarded() {
      return forwarded;
    },
  };
}
