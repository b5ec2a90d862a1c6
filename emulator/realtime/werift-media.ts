// The Realtime SFU's media in the Node host: one werift PeerConnection per session. A publish answers
// the peer's offer and receives its tracks; a pull adds a sending transceiver per track, offered with
// the publisher's exact codec, and forwards the publisher's RTP to it (emulator/webrtc/peer.ts).

import type { MediaStreamTrack, RTCPeerConnection, RTCRtpCodecParameters, RTCRtpReceiver, RTCRtpTransceiver } from "werift";
import { codecsFor, emulatorCodecs, forwardRtp, localDescriptionGathered, newPeer, type Forwarding } from "../webrtc/peer.ts";
import type { PullSource, RealtimeMedia } from "./media.ts";

interface Received {
  transceiver: RTCRtpTransceiver;
  track: MediaStreamTrack | null;
  packets: number;
  /** Pulls waiting for the track to appear (werift makes it at the first packet or from the SDP's ssrc). */
  waiting: Array<(track: MediaStreamTrack, receiver: RTCRtpReceiver) => void>;
}

interface Sent {
  transceiver: RTCRtpTransceiver;
  forwarding: Forwarding | null;
}

interface Peer {
  pc: RTCPeerConnection;
  everConnected: boolean;
  received: Map<string, Received>;
  sent: Map<string, Sent>;
}

export function weriftMedia(): RealtimeMedia {
  const peers = new Map<string, Peer>();
  const media: RealtimeMedia = {
    async publish(sessionId, offer, mids) {
      const peer = peerOf(sessionId);
      await peer.pc.setRemoteDescription({ type: "offer", sdp: offer });
      const answer = await peer.pc.createAnswer();
      const sdp = await localDescriptionGathered(peer.pc, answer);
      for (const transceiver of peer.pc.getTransceivers()) {
        const mid = transceiver.mid;
        if (!mid || !mids.includes(mid) || peer.received.has(mid)) continue;
        const received: Received = { transceiver, track: null, packets: 0, waiting: [] };
        peer.received.set(mid, received);
        const adopt = (track: MediaStreamTrack) => {
          if (received.track) return;
          received.track = track;
          track.onReceiveRtp.subscribe(() => received.packets++);
          for (const wake of received.waiting.splice(0)) wake(track, transceiver.receiver);
        };
        // werift makes the track at setRemoteDescription when the offer names its ssrc, else at the first packet.
        const existing = transceiver.receiver.tracks[0];
        if (existing) adopt(existing);
        transceiver.onTrack.subscribe(adopt);
      }
      return sdp;
    },

    async pull(sessionId, sources: PullSource[]) {
      const peer = peerOf(sessionId);
      const added: RTCRtpTransceiver[] = [];
      for (const source of sources) {
        const from = peers.get(source.sourceSessionId)?.received.get(source.sourceMid);
        if (!from) throw new Error(`no track ${source.sourceMid} in session ${source.sourceSessionId}`);
        const transceiver = peer.pc.addTransceiver(source.kind, { direction: "sendonly" });
        const codec = publishedCodec(from);
        if (codec) transceiver.codecs = codecsFor(codec, emulatorCodecs()[source.kind]);
        added.push(transceiver);
        const sent: Sent = { transceiver, forwarding: null };
        const attach = (track: MediaStreamTrack, receiver: RTCRtpReceiver) => {
          sent.forwarding = forwardRtp({ track, receiver }, transceiver.sender);
        };
        if (from.track) attach(from.track, from.transceiver.receiver);
        else from.waiting.push(attach);
        // Keyed once the offer gives it a mid, below.
        (transceiver as unknown as { __sent: Sent }).__sent = sent;
      }
      const offer = await peer.pc.createOffer();
      const sdp = await localDescriptionGathered(peer.pc, offer);
      const mids = added.map((t) => {
        const mid = t.mid ?? "";
        peer.sent.set(mid, (t as unknown as { __sent: Sent }).__sent);
        return mid;
      });
      return { sdp, mids };
    },

    async renegotiate(sessionId, description) {
      const peer = peerOf(sessionId);
      await peer.pc.setRemoteDescription(description);
      if (description.type === "answer") return null;
      const answer = await peer.pc.createAnswer();
      return { type: "answer", sdp: await localDescriptionGathered(peer.pc, answer) };
    },

    async close(sessionId, mids, offer) {
      const peer = peers.get(sessionId);
      if (!peer) return null;
      for (const mid of mids) {
        const sent = peer.sent.get(mid);
        sent?.forwarding?.stop();
        peer.sent.delete(mid);
        peer.received.delete(mid);
      }
      if (!offer) return null;
      await peer.pc.setRemoteDescription({ type: "offer", sdp: offer });
      const answer = await peer.pc.createAnswer();
      return localDescriptionGathered(peer.pc, answer);
    },

    closeSession(sessionId) {
      const peer = peers.get(sessionId);
      if (!peer) return;
      peers.delete(sessionId);
      for (const sent of peer.sent.values()) sent.forwarding?.stop();
      void peer.pc.close().catch(() => undefined);
    },

    connected: (sessionId) => peers.get(sessionId)?.pc.connectionState === "connected",
    everConnected: (sessionId) => peers.get(sessionId)?.everConnected === true,

    stats(sessionId) {
      const peer = peers.get(sessionId);
      if (!peer) return null;
      return {
        connectionState: peer.pc.connectionState,
        received: Object.fromEntries([...peer.received].map(([mid, r]) => [mid, { packets: r.packets }])),
        forwarded: Object.fromEntries([...peer.sent].map(([mid, s]) => [mid, { packets: s.forwarding?.forwarded ?? 0 }])),
      };
    },
  };

  function peerOf(sessionId: string): Peer {
    let peer = peers.get(sessionId);
    if (peer) return peer;
    const pc = newPeer();
    const created: Peer = { pc, everConnected: false, received: new Map(), sent: new Map() };
    pc.connectionStateChange.subscribe((state) => {
      if (state === "connected") created.everConnected = true;
      // The peer went away (closed, or ICE consent failed): the SFU drops the session.
      if ((state === "failed" || state === "closed") && peers.get(sessionId) === created) {
        media.onGone?.(sessionId, `its PeerConnection went ${state} (ICE ${pc.iceConnectionState}, ${created.everConnected ? "after" : "before"} connecting)`);
      }
    });
    peers.set(sessionId, created);
    peer = created;
    return peer;
  }

  return media;
}

/** The codec the publisher negotiated for a track: what its packets carry, else the first negotiated. */
function publishedCodec(from: Received): RTCRtpCodecParameters | undefined {
  return from.transceiver.codecs[0];
}
