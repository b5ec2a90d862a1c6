// The media side of the emulated Realtime SFU. The signalling (sfu.ts) decides what exists; an engine
// negotiates and forwards. fakeMedia() answers with SDP that only looks right (workerd has no UDP: the
// vitest suite checks signalling and authorization only); emulator/webrtc/ has the werift engine.

export type MediaKind = "audio" | "video";

export interface PullSource {
  kind: MediaKind;
  sourceSessionId: string;
  /** The publisher's mid for the track. */
  sourceMid: string;
}

export interface RealtimeMedia {
  /** Answers an offer on the session; `mids` are the m-sections it now receives as local tracks. */
  publish(sessionId: string, offer: string, mids: string[]): Promise<string>;
  /** Adds one sending m-section per source; returns the SFU's offer and the mid of each, in order. */
  pull(sessionId: string, sources: PullSource[]): Promise<{ sdp: string; mids: string[] }>;
  /** Applies the peer's answer (or offer: then returns the SFU's answer). */
  renegotiate(sessionId: string, description: { type: "offer" | "answer"; sdp: string }): Promise<{ type: "answer"; sdp: string } | null>;
  /** Stops the m-sections; with the peer's offer, returns the SFU's answer. */
  close(sessionId: string, mids: string[], offer: string | null): Promise<string | null>;
  closeSession(sessionId: string): void;
  /** The session's transport is up now / was ever up. */
  connected(sessionId: string): boolean;
  everConnected(sessionId: string): boolean;
  /** Emulator view: packets received and forwarded, when the engine counts them. */
  stats?(sessionId: string): unknown;
  /** Set by the SFU: the engine saw the session's peer go (closed or failed). */
  onGone?: (sessionId: string, why?: string) => void;
}

/** Signalling only: a session counts as connected once an answer has been exchanged. */
export function fakeMedia(): RealtimeMedia {
  const negotiated = new Set<string>();
  const mids = new Map<string, number>();
  const nextMid = (sessionId: string) => {
    const n = mids.get(sessionId) ?? 0;
    mids.set(sessionId, n + 1);
    return String(n);
  };
  return {
    async publish(sessionId, offer, _mids) {
      negotiated.add(sessionId);
      return answerFor(offer);
    },
    async pull(sessionId, sources) {
      const assigned = sources.map(() => `p${nextMid(sessionId)}`);
      return { sdp: offerFor(sources.map((s, i) => ({ kind: s.kind, mid: assigned[i]! }))), mids: assigned };
    },
    async renegotiate(sessionId, description) {
      negotiated.add(sessionId);
      return description.type === "offer" ? { type: "answer", sdp: answerFor(description.sdp) } : null;
    },
    async close(_sessionId, _mids, offer) {
      return offer ? answerFor(offer) : null;
    },
    closeSession(sessionId) {
      negotiated.delete(sessionId);
      mids.delete(sessionId);
    },
    connected: (sessionId) => negotiated.has(sessionId),
    everConnected: (sessionId) => negotiated.has(sessionId),
  };
}

const HEADER = ["v=0", "o=- 0 0 IN IP4 127.0.0.1", "s=-", "t=0 0", "a=group:BUNDLE"];

/** The offer's m-sections, each answered recvonly with its first payload type. */
function answerFor(offer: string): string {
  const lines = [...HEADER];
  for (const line of offer.split(/\r?\n/)) {
    if (line.startsWith("m=")) {
      const [media, , proto, pt] = line.slice(2).split(" ");
      lines.push(`m=${media} 9 ${proto} ${pt ?? "0"}`, "c=IN IP4 0.0.0.0", "a=recvonly");
    } else if (line.startsWith("a=mid:")) lines.push(line);
  }
  return lines.join("\r\n") + "\r\n";
}

function offerFor(sections: Array<{ kind: MediaKind; mid: string }>): string {
  const lines = [...HEADER];
  for (const s of sections) {
    lines.push(`m=${s.kind} 9 UDP/TLS/RTP/SAVPF ${s.kind === "video" ? 96 : 111}`, "c=IN IP4 0.0.0.0", `a=mid:${s.mid}`, "a=sendonly");
  }
  return lines.join("\r\n") + "\r\n";
}
