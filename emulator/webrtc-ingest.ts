// WHIP ingest and WHEP playback with real media (Node only), terminated with werift: a WHIP publish is one
// peer whose tracks feed a Forwarder; each WHEP viewer is one peer fed by it (no transcoding, no mixing). The
// input connects when the publisher's media connects and disconnects when it leaves: a DELETE, a failed or
// closed connection, or MEDIA_SILENCE_MS without a packet (FIRST_MEDIA_MS before the first; a vanished publisher: werift's
// ICE consent alone would take 30 s to notice, RFC 7675). The emulator ending the broadcast
// (input disabled or deleted, keys rotated, reset) ends the session and its viewers.

import type { RTCPeerConnection } from "werift";
import type { StreamEmulator } from "./core.ts";
import type { WebRtcDriver } from "./types.ts";
import { WebRtcRefusal } from "./webrtc-http.ts";
import { Forwarder } from "./webrtc/forward.ts";
import { newPeer } from "./webrtc/peer.ts";
import { answer, looksLikeSdp, whenGone } from "./webrtc/session.ts";
import { filterOffer } from "./webrtc/sdp-filter.ts";
import { randomBytes } from "node:crypto";

/** A publisher that sent media and then nothing for this long is gone (WebRTC sends even a still image). */
export const MEDIA_SILENCE_MS = 5000;
/** A publisher connected this long without sending any media is gone too. */
const FIRST_MEDIA_MS = 10_000;

interface Viewer {
  sessionId: string;
  pc: RTCPeerConnection;
  detach: () => void;
  since: number;
  connected: boolean;
}

interface Publisher {
  sessionId: string;
  inputUid: string;
  streamKey: string;
  pc: RTCPeerConnection;
  forwarder: Forwarder;
  since: number;
  connected: boolean;
  connectedAt: number | null;
  viewers: Map<string, Viewer>;
  silence?: ReturnType<typeof setInterval>;
}

export interface WebRtcSessionView {
  sessionId: string;
  inputUid: string;
  state: "connecting" | "connected";
  since: string;
  tracks?: string[];
  viewers?: number;
  forwardedPackets?: number;
}

export class WeriftWebRtc implements WebRtcDriver {
  private readonly publishers = new Map<string, Publisher>();

  constructor(
    private readonly emulator: () => StreamEmulator,
    private readonly log: (line: string) => void = () => undefined,
  ) {}

  async publish(input: { uid: string; streamKey: string }, offerSdp: string): Promise<{ sessionId: string; answerSdp: string }> {
    if (!looksLikeSdp(offerSdp)) throw new WebRtcRefusal(400, "INVALID_SDP", "The offer has no ICE credentials or DTLS fingerprint");
    if (this.publishers.has(input.uid)) {
      throw new WebRtcRefusal(409, "ALREADY_PUBLISHING", `Live input ${input.uid} already has a WHIP publisher: DELETE its session first`);
    }
    const pc = newPeer();
    const forwarder = new Forwarder();
    const publisher: Publisher = { sessionId: sessionId(), inputUid: input.uid, streamKey: input.streamKey, pc, forwarder, since: Date.now(), connected: false, connectedAt: null, viewers: new Map() };
    pc.ontrack = ({ track, transceiver }) => forwarder.addPublishedTrack(track, transceiver);
    // Reserved before the await: a second publish meanwhile is refused.
    this.publishers.set(input.uid, publisher);
    let answerSdp: string;
    try {
      answerSdp = await answer(pc, offerSdp);
    } catch (e) {
      this.publishers.delete(input.uid);
      await pc.close().catch(() => undefined);
      throw e;
    }
    pc.connectionStateChange.subscribe((state) => {
      if (state !== "connected" || publisher.connected || this.publishers.get(input.uid) !== publisher) return;
      publisher.connected = true;
      publisher.connectedAt = Date.now();
      // Live from the moment media can flow, pushed like any other connect (webhook, relays, status).
      if (!this.emulator().connect(input.uid, "whip")) this.endPublisher(publisher, "live input disabled or deleted meanwhile", false);
    });
    whenGone(pc, (why) => this.endPublisher(publisher, why, true));
    publisher.silence = setInterval(() => {
      const last = forwarder.lastPacketAt;
      const now = Date.now();
      if (last !== null ? now - last > MEDIA_SILENCE_MS : publisher.connectedAt !== null && now - publisher.connectedAt > FIRST_MEDIA_MS) {
        this.endPublisher(publisher, last !== null ? `no media for ${MEDIA_SILENCE_MS / 1000} s` : `connected ${FIRST_MEDIA_MS / 1000} s without media`, true);
      }
    }, 500);
    return { sessionId: publisher.sessionId, answerSdp };
  }

  async play(inputUid: string, offerSdp: string): Promise<{ sessionId: string; answerSdp: string }> {
    if (!looksLikeSdp(offerSdp)) throw new WebRtcRefusal(400, "INVALID_SDP", "The offer has no ICE credentials or DTLS fingerprint");
    const publisher = this.publishers.get(inputUid);
    if (!publisher?.connected) throw new WebRtcRefusal(409, "NOT_LIVE_OVER_WHIP", `Live input ${inputUid} has no connected WHIP publisher`);
    const filtered = filterOffer(offerSdp, publisher.forwarder.codecs());
    if (filtered === null) {
      const wanted = publisher.forwarder.codecs().map((c) => `${c.mimeType}${c.parameters ? ` (${c.parameters})` : ""}`).join(", ");
      throw new WebRtcRefusal(406, "CODEC_MISMATCH", `The offer cannot receive what is published (${wanted}); nothing is transcoded`);
    }
    const pc = newPeer();
    const viewer: Viewer = { sessionId: sessionId(), pc, detach: publisher.forwarder.attachViewer(pc), since: Date.now(), connected: false };
    publisher.viewers.set(viewer.sessionId, viewer);
    let answerSdp: string;
    try {
      answerSdp = await answer(pc, filtered);
    } catch (e) {
      this.endViewer(publisher, viewer);
      throw e;
    }
    pc.connectionStateChange.subscribe((state) => {
      if (state === "connected") viewer.connected = true;
    });
    whenGone(pc, () => this.endViewer(publisher, viewer));
    return { sessionId: viewer.sessionId, answerSdp };
  }

  end(inputUid: string, sessionId: string): boolean {
    const publisher = this.publishers.get(inputUid);
    if (!publisher) return false;
    if (publisher.sessionId === sessionId) {
      this.endPublisher(publisher, "DELETE", true);
      return true;
    }
    const viewer = publisher.viewers.get(sessionId);
    if (!viewer) return false;
    this.endViewer(publisher, viewer);
    return true;
  }

  /** The emulator ended the broadcast of this stream key (it has already marked the input disconnected). */
  kick(streamKey: string): void {
    for (const publisher of [...this.publishers.values()]) {
      if (publisher.streamKey === streamKey) this.endPublisher(publisher, "ended by the emulator", false);
    }
  }

  sessions(): { whip: WebRtcSessionView[]; whep: WebRtcSessionView[] } {
    const whip: WebRtcSessionView[] = [];
    const whep: WebRtcSessionView[] = [];
    for (const p of this.publishers.values()) {
      whip.push({
        sessionId: p.sessionId,
        inputUid: p.inputUid,
        state: p.connected ? "connected" : "connecting",
        since: new Date(p.since).toISOString(),
        tracks: p.forwarder.codecs().map((c) => c.mimeType),
        viewers: p.viewers.size,
        forwardedPackets: p.forwarder.forwarded,
      });
      for (const v of p.viewers.values()) {
        whep.push({ sessionId: v.sessionId, inputUid: p.inputUid, state: v.connected ? "connected" : "connecting", since: new Date(v.since).toISOString() });
      }
    }
    return { whip, whep };
  }

  async close(): Promise<void> {
    const closing = [...this.publishers.values()].flatMap((p) => [p.pc, ...[...p.viewers.values()].map((v) => v.pc)]);
    for (const p of [...this.publishers.values()]) this.endPublisher(p, "emulator closing", false);
    await Promise.all(closing.map((pc) => pc.close().catch(() => undefined)));
  }

  private endPublisher(publisher: Publisher, why: string, disconnectInput: boolean): void {
    if (this.publishers.get(publisher.inputUid) !== publisher) return;
    this.publishers.delete(publisher.inputUid);
    clearInterval(publisher.silence);
    for (const viewer of [...publisher.viewers.values()]) this.endViewer(publisher, viewer);
    void publisher.pc.close().catch(() => undefined);
    if (disconnectInput && publisher.connected) this.emulator().disconnect(publisher.inputUid);
    this.log(`stream emulator: WHIP publish ${publisher.sessionId} for live input ${publisher.inputUid} ended (${why})`);
  }

  private endViewer(publisher: Publisher, viewer: Viewer): void {
    if (!publisher.viewers.delete(viewer.sessionId)) return;
    viewer.detach();
    void viewer.pc.close().catch(() => undefined);
  }
}

function sessionId(): string {
  return randomBytes(12).toString("hex");
}
