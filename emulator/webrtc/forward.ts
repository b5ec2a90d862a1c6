// A forwarding relay (Node only): one publisher's received tracks sent on, unchanged, to any number of viewer
// peers. Reusable by WHEP playback and the Realtime SFU emulation. Traps handled (BRIEF §6):
// - viewers see nothing until their keyframe requests reach the publisher: each viewer's PLI (and a new
//   viewer's first moment) asks the publisher for a keyframe, at most every 500 ms;
// - werift copies RTP header extensions by id into the outgoing packet, where the viewer negotiated other ids:
//   forwarded packets carry none;
// - the viewer must take the publisher's exact codec (sdp-filter.ts) since nothing is transcoded.

import { MediaStreamTrack, RtpPacket, type RTCPeerConnection, type RTCRtpTransceiver } from "werift";
import type { ForwardedCodec } from "./sdp-filter.ts";

const KEYFRAME_REQUEST_MIN_MS = 500;

interface Source {
  kind: "audio" | "video";
  codec: ForwardedCodec;
  receiver: RTCRtpTransceiver["receiver"];
  ssrc: number | null;
  outputs: Set<MediaStreamTrack>;
  lastKeyframeRequest: number;
}

export class Forwarder {
  private readonly sources: Source[] = [];
  /** RTP packets forwarded to viewers (all tracks, all viewers), for views and tests. */
  forwarded = 0;
  /** When the publisher last sent media (ms since epoch), or null before its first packet. */
  lastPacketAt: number | null = null;

  /** Call from the publisher's `onTrack`: its packets are forwarded from now on. */
  addPublishedTrack(track: MediaStreamTrack, transceiver: RTCRtpTransceiver): void {
    const codec = transceiver.codecs[0];
    const source: Source = {
      kind: track.kind as "audio" | "video",
      codec: { kind: track.kind as "audio" | "video", mimeType: codec?.mimeType ?? "", parameters: codec?.parameters },
      receiver: transceiver.receiver,
      ssrc: null,
      outputs: new Set(),
      lastKeyframeRequest: 0,
    };
    this.sources.push(source);
    track.onReceiveRtp.subscribe((rtp: RtpPacket) => {
      if (source.ssrc === null) {
        // The codec actually sent (the first negotiated one, unless the publisher chose another).
        const sent = transceiver.codecs.find((c) => c.payloadType === rtp.header.payloadType);
        if (sent) source.codec = { kind: source.kind, mimeType: sent.mimeType, parameters: sent.parameters };
      }
      source.ssrc = rtp.header.ssrc;
      this.lastPacketAt = Date.now();
      if (source.outputs.size === 0) return;
      rtp.header.extensions = [];
      rtp.header.extension = false;
      const bytes = rtp.serialize();
      for (const out of source.outputs) {
        out.writeRtp(bytes);
        this.forwarded++;
      }
    });
  }

  /** The codecs a viewer must take (one per published kind). */
  codecs(): ForwardedCodec[] {
    return this.sources.map((s) => s.codec);
  }

  kinds(): ("audio" | "video")[] {
    return this.sources.map((s) => s.kind);
  }

  /**
   * Adds one sendonly transceiver per published track to a viewer peer (before its offer is applied, so they
   * take its media sections). Returns a detach function.
   */
  attachViewer(pc: RTCPeerConnection): () => void {
    const attached: { source: Source; track: MediaStreamTrack }[] = [];
    for (const source of this.sources) {
      const track = new MediaStreamTrack({ kind: source.kind });
      const transceiver = pc.addTransceiver(track, { direction: "sendonly" });
      source.outputs.add(track);
      attached.push({ source, track });
      if (source.kind === "video") {
        transceiver.sender.onPictureLossIndication.subscribe(() => this.requestKeyframe(source));
        // A new viewer needs a keyframe to start decoding: ask once its DTLS is up (and now, in case it is).
        transceiver.sender.onReady.subscribe(() => this.requestKeyframe(source, true));
      }
    }
    return () => {
      for (const { source, track } of attached) source.outputs.delete(track);
    };
  }

  private requestKeyframe(source: Source, force = false): void {
    const now = Date.now();
    if (source.ssrc === null || (!force && now - source.lastKeyframeRequest < KEYFRAME_REQUEST_MIN_MS)) return;
    source.lastKeyframeRequest = now;
    void source.receiver.sendRtcpPLI(source.ssrc).catch(() => undefined);
  }
}
