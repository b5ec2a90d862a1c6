// A signalling-only WebRtcDriver for the workerd host (vitest), which has no UDP: WHIP and WHEP answer with SDP
// that only looks right and no media flows. A WHIP publish connects its input at once (there is no media
// connection to wait for) and its DELETE disconnects it, so the coordinator's live status from WHIP
// connect/disconnect can be tested in workerd. Web APIs only. Real media: webrtc-ingest.ts (Node).

import type { StreamEmulator } from "./core.ts";
import type { WebRtcDriver } from "./types.ts";
import { WebRtcRefusal } from "./webrtc-http.ts";

export class SignallingOnlyWebRtc implements WebRtcDriver {
  /** input uid → its WHIP session and WHEP sessions */
  private readonly sessions = new Map<string, { publisher: string; streamKey: string; viewers: Set<string> }>();

  constructor(private readonly emulator: () => StreamEmulator) {}

  async publish(input: { uid: string; streamKey: string }, offerSdp: string): Promise<{ sessionId: string; answerSdp: string }> {
    if (this.sessions.has(input.uid)) throw new WebRtcRefusal(409, "ALREADY_PUBLISHING", `Live input ${input.uid} already has a WHIP publisher: DELETE its session first`);
    const sessionId = crypto.randomUUID().replaceAll("-", "");
    this.sessions.set(input.uid, { publisher: sessionId, streamKey: input.streamKey, viewers: new Set() });
    this.emulator().connect(input.uid, "whip");
    return { sessionId, answerSdp: answerFor(offerSdp, "recvonly") };
  }

  async play(inputUid: string, offerSdp: string): Promise<{ sessionId: string; answerSdp: string }> {
    const session = this.sessions.get(inputUid);
    if (!session) throw new WebRtcRefusal(409, "NOT_LIVE_OVER_WHIP", `Live input ${inputUid} has no WHIP publisher`);
    const sessionId = crypto.randomUUID().replaceAll("-", "");
    session.viewers.add(sessionId);
    return { sessionId, answerSdp: answerFor(offerSdp, "sendonly") };
  }

  end(inputUid: string, sessionId: string): boolean {
    const session = this.sessions.get(inputUid);
    if (!session) return false;
    if (session.publisher === sessionId) {
      this.sessions.delete(inputUid);
      this.emulator().disconnect(inputUid);
      return true;
    }
    return session.viewers.delete(sessionId);
  }

  /** The emulator ended the broadcast (disable, delete, key rotation, reset): forget its sessions. */
  kick(streamKey: string): void {
    for (const [uid, s] of this.sessions) if (s.streamKey === streamKey) this.sessions.delete(uid);
  }

  view(): { whip: { sessionId: string; inputUid: string; viewers: number }[] } {
    return { whip: [...this.sessions].map(([inputUid, s]) => ({ sessionId: s.publisher, inputUid, viewers: s.viewers.size })) };
  }
}

/** Each m-section of the offer answered with its first payload type, in the given direction. */
function answerFor(offer: string, direction: "recvonly" | "sendonly"): string {
  const lines = ["v=0", "o=- 0 0 IN IP4 127.0.0.1", "s=-", "t=0 0"];
  for (const line of offer.split(/\r?\n/)) {
    if (line.startsWith("m=")) {
      const [media, , proto, pt] = line.slice(2).split(" ");
      lines.push(`m=${media} 9 ${proto} ${pt ?? "0"}`, "c=IN IP4 0.0.0.0", `a=${direction}`);
    } else if (line.startsWith("a=mid:")) lines.push(line);
  }
  return lines.join("\r\n") + "\r\n";
}
