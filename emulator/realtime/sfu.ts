// Cloudflare Realtime SFU API (`/v1/apps/:appId/…`) and TURN credentials (`/v1/turn/keys/:keyId/…`).
// Web APIs only: the signalling (sessions, tracks, their status, errors, limits) is here; media goes
// through a RealtimeMedia engine: the signalling-only fake below (workerd, vitest) or werift
// (emulator/webrtc/, the Node host), which really forwards RTP from publisher to puller.

import { randomHex } from "../ids.ts";
import { fakeMedia, type MediaKind, type RealtimeMedia } from "./media.ts";

export interface RealtimeOptions {
  appId?: string;
  appSecret?: string;
  turnKeyId?: string;
  turnKeyToken?: string;
  media?: RealtimeMedia;
  now?: () => number;
}

interface TrackRecord {
  mid: string;
  trackName: string;
  location: "local" | "remote";
  kind: MediaKind;
  /** Remote tracks: the publishing session and its track name. */
  source?: { sessionId: string; trackName: string };
}

interface SessionRecord {
  sessionId: string;
  createdAt: number;
  tracks: Map<string, TrackRecord>;
}

/** Most tracks one call may carry (Cloudflare's documented limit). */
export const TRACKS_PER_CALL = 64;
/** A session that never connects is dropped after this long, as an abandoned one is at Cloudflare. */
export const CONNECT_TIMEOUT_MS = 30_000;
/** How many dropped sessions the control view lists. */
const DROPPED_KEPT = 50;

class SfuError extends Error {
  constructor(
    readonly status: number,
    readonly errorCode: string,
    message: string,
  ) {
    super(message);
  }
}

export class RealtimeSfu {
  readonly appId: string;
  readonly appSecret: string;
  readonly turnKeyId: string;
  readonly turnKeyToken: string;
  private readonly media: RealtimeMedia;
  private readonly now: () => number;
  private sessions = new Map<string, SessionRecord>();
  private dropped: Array<{ sessionId: string; why: string; at: string }> = [];

  constructor(options: RealtimeOptions = {}) {
    this.appId = options.appId ?? "local-realtime-app";
    this.appSecret = options.appSecret ?? "local-realtime-secret";
    this.turnKeyId = options.turnKeyId ?? "local-turn-key";
    this.turnKeyToken = options.turnKeyToken ?? "local-turn-token";
    this.media = options.media ?? fakeMedia();
    this.now = options.now ?? Date.now;
    this.media.onGone = (sessionId, why) => this.drop(sessionId, why ?? "its peer went away");
  }

  /** Answers a `/v1/…` call, or null when the path is not the SFU's. */
  async handle(request: Request, path: string): Promise<Response | null> {
    if (!path.startsWith("/v1/")) return null;
    try {
      const turn = /^\/v1\/turn\/keys\/([^/]+)\/credentials\/generate-ice-servers$/.exec(path);
      if (turn) return await this.iceServers(request, decodeURIComponent(turn[1]!));
      const m = /^\/v1\/apps\/([^/]+)\/sessions\/([^/]+)(?:\/(tracks\/new|tracks\/close|renegotiate))?$/.exec(path);
      if (!m) throw new SfuError(404, "not_found", `No route ${path}`);
      this.authenticate(request, decodeURIComponent(m[1]!), this.appSecret);
      this.expire();
      const method = request.method.toUpperCase();
      const sessionId = decodeURIComponent(m[2]!);
      const action = m[3];
      if (sessionId === "new" && !action) {
        if (method !== "POST") throw new SfuError(405, "method_not_allowed", "sessions/new takes POST");
        return await this.newSession(request);
      }
      const session = this.sessions.get(sessionId);
      if (!session) throw new SfuError(404, "session_not_found", `Session ${sessionId} does not exist`);
      if (!action && method === "GET") return json(this.describe(session));
      if (action === "tracks/new" && method === "POST") return await this.newTracks(session, await body(request));
      if (action === "tracks/close" && method === "PUT") return await this.closeTracks(session, await body(request));
      if (action === "renegotiate" && method === "PUT") return await this.renegotiate(session, await body(request));
      throw new SfuError(405, "method_not_allowed", `${method} is not allowed on ${path}`);
    } catch (e) {
      if (e instanceof SfuError) return json({ errorCode: e.errorCode, errorDescription: e.message }, e.status);
      throw e;
    }
  }

  // ── Control (/__emulator/realtime) ─────────────────────────────────────────────────────────────

  /** Every session with its tracks and their status: GET /__emulator/realtime. */
  snapshot(): unknown {
    this.expire();
    return {
      appId: this.appId,
      turnKeyId: this.turnKeyId,
      sessions: [...this.sessions.values()].map((s) => ({
        ...this.describe(s),
        createdAt: new Date(s.createdAt).toISOString(),
        connected: this.media.connected(s.sessionId),
        media: this.media.stats?.(s.sessionId) ?? null,
      })),
      dropped: this.dropped,
    };
  }

  /** The peer of a session vanished (DELETE /__emulator/realtime/sessions/:id): its PeerConnection is gone. */
  drop(sessionId: string, why = "dropped through /__emulator/realtime"): boolean {
    if (!this.sessions.delete(sessionId)) return false;
    // The last few, for the control view: a test that finds a session gone can say why.
    this.dropped.push({ sessionId, why, at: new Date(this.now()).toISOString() });
    if (this.dropped.length > DROPPED_KEPT) this.dropped.shift();
    this.media.closeSession(sessionId);
    return true;
  }

  reset(): void {
    for (const id of [...this.sessions.keys()]) this.drop(id, "emulator reset");
    this.dropped = [];
  }

  // ── API ────────────────────────────────────────────────────────────────────────────────────────

  private authenticate(request: Request, appOrKey: string, secret: string): void {
    const token = /^Bearer\s+(.+)$/i.exec(request.headers.get("authorization") ?? "")?.[1]?.trim();
    const expected = secret === this.appSecret ? this.appId : this.turnKeyId;
    if (appOrKey !== expected || token !== secret) throw new SfuError(401, "unauthorized", "The app id or its secret was not accepted");
  }

  private async newSession(request: Request): Promise<Response> {
    const b = await body(request);
    const sessionId = randomHex(16);
    const session: SessionRecord = { sessionId, createdAt: this.now(), tracks: new Map() };
    this.sessions.set(sessionId, session);
    const offer = description(b.sessionDescription, "offer");
    const answer = offer ? await this.media.publish(sessionId, offer, []) : null;
    return json({ sessionId, ...(answer ? { sessionDescription: { type: "answer", sdp: answer } } : {}) }, 201);
  }

  private async newTracks(session: SessionRecord, b: Record<string, unknown>): Promise<Response> {
    const tracks = Array.isArray(b.tracks) ? (b.tracks as Array<Record<string, unknown>>) : null;
    if (!tracks || tracks.length === 0) throw new SfuError(400, "invalid_request", "tracks must be a non-empty array");
    if (tracks.length > TRACKS_PER_CALL) throw new SfuError(400, "too_many_tracks", `At most ${TRACKS_PER_CALL} tracks per call`);
    const locations = new Set(tracks.map((t) => t.location));
    if (locations.size !== 1 || !(locations.has("local") || locations.has("remote"))) {
      throw new SfuError(400, "invalid_request", "Every track must have the same location, local or remote");
    }
    if (locations.has("local")) {
      const offer = description(b.sessionDescription, "offer");
      if (!offer) throw new SfuError(400, "invalid_request", "Local tracks need a sessionDescription offer");
      const kinds = kindsByMid(offer);
      const answered: Array<Record<string, unknown>> = [];
      const made: TrackRecord[] = [];
      for (const t of tracks) {
        const mid = typeof t.mid === "string" ? t.mid : "";
        const trackName = typeof t.trackName === "string" ? t.trackName : "";
        const kind = kinds.get(mid);
        if (!trackName || (kind !== "audio" && kind !== "video")) {
          answered.push({ trackName, mid, errorCode: "invalid_track", errorDescription: `No audio or video m-section with mid ${mid}` });
        } else if ([...session.tracks.values()].some((x) => x.location === "local" && x.trackName === trackName && x.mid !== mid)) {
          answered.push({ trackName, mid, errorCode: "track_name_taken", errorDescription: `Track ${trackName} already exists in this session` });
        } else {
          made.push({ mid, trackName, location: "local", kind });
          answered.push({ trackName, mid });
        }
      }
      let sdp: string;
      try {
        sdp = await this.media.publish(session.sessionId, offer, made.map((t) => t.mid));
      } catch (e) {
        throw new SfuError(400, "invalid_offer", `The offer was refused: ${e instanceof Error ? e.message : String(e)}`);
      }
      for (const t of made) session.tracks.set(t.mid, t);
      return json({ requiresImmediateRenegotiation: false, sessionDescription: { type: "answer", sdp }, tracks: answered });
    }
    const answered: Array<Record<string, unknown>> = [];
    const pulls: Array<{ track: TrackRecord; sourceMid: string; entry: Record<string, unknown> }> = [];
    for (const t of tracks) {
      const sourceId = typeof t.sessionId === "string" ? t.sessionId : "";
      const trackName = typeof t.trackName === "string" ? t.trackName : "";
      const source = [...(this.sessions.get(sourceId)?.tracks.values() ?? [])].find((x) => x.location === "local" && x.trackName === trackName);
      if (!source) {
        answered.push({ trackName, sessionId: sourceId, errorCode: "track_not_found", errorDescription: `Session ${sourceId} has no track ${trackName}` });
        continue;
      }
      const track: TrackRecord = { mid: "", trackName, location: "remote", kind: source.kind, source: { sessionId: sourceId, trackName } };
      const entry: Record<string, unknown> = { trackName, sessionId: sourceId };
      pulls.push({ track, sourceMid: source.mid, entry });
      answered.push(entry);
    }
    if (pulls.length === 0) return json({ requiresImmediateRenegotiation: false, tracks: answered });
    const { sdp, mids } = await this.media.pull(
      session.sessionId,
      pulls.map((p) => ({ kind: p.track.kind, sourceSessionId: p.track.source!.sessionId, sourceMid: p.sourceMid })),
    );
    pulls.forEach((p, i) => {
      p.track.mid = mids[i]!;
      p.entry.mid = mids[i]!;
      session.tracks.set(p.track.mid, p.track);
    });
    return json({ requiresImmediateRenegotiation: true, sessionDescription: { type: "offer", sdp }, tracks: answered });
  }

  private async renegotiate(session: SessionRecord, b: Record<string, unknown>): Promise<Response> {
    const d = b.sessionDescription as { type?: unknown; sdp?: unknown } | undefined;
    if (!d || (d.type !== "answer" && d.type !== "offer") || typeof d.sdp !== "string") {
      throw new SfuError(400, "invalid_request", "sessionDescription {type, sdp} is required");
    }
    try {
      const reply = await this.media.renegotiate(session.sessionId, { type: d.type, sdp: d.sdp });
      return json(reply ? { sessionDescription: reply } : {});
    } catch (e) {
      throw new SfuError(400, "invalid_description", `The description was refused: ${e instanceof Error ? e.message : String(e)}`);
    }
  }

  private async closeTracks(session: SessionRecord, b: Record<string, unknown>): Promise<Response> {
    const tracks = Array.isArray(b.tracks) ? (b.tracks as Array<Record<string, unknown>>) : null;
    if (!tracks || tracks.length === 0) throw new SfuError(400, "invalid_request", "tracks must be a non-empty array");
    if (tracks.length > TRACKS_PER_CALL) throw new SfuError(400, "too_many_tracks", `At most ${TRACKS_PER_CALL} tracks per call`);
    const mids = tracks.map((t) => String(t.mid ?? ""));
    const answered = mids.map((mid) => (session.tracks.has(mid) ? { mid } : { mid, errorCode: "track_not_found", errorDescription: `No track with mid ${mid}` }));
    const closing = mids.filter((mid) => session.tracks.has(mid));
    const force = b.force === true;
    const offer = description(b.sessionDescription, "offer");
    const sdp = await this.media.close(session.sessionId, closing, force ? null : offer);
    for (const mid of closing) session.tracks.delete(mid);
    // Emulator choice: a session whose every track was force-closed is dropped (nothing of it is left to use).
    if (force && session.tracks.size === 0 && closing.length > 0) this.drop(session.sessionId, "its last track was closed with force");
    return json({ requiresImmediateRenegotiation: false, ...(sdp ? { sessionDescription: { type: "answer", sdp } } : {}), tracks: answered });
  }

  private async iceServers(request: Request, keyId: string): Promise<Response> {
    if (request.method.toUpperCase() !== "POST") throw new SfuError(405, "method_not_allowed", "generate-ice-servers takes POST");
    this.authenticate(request, keyId, this.turnKeyToken);
    const b = await body(request);
    const ttl = typeof b.ttl === "number" && b.ttl > 0 ? Math.floor(b.ttl) : 86_400;
    const username = `${Math.floor(this.now() / 1000) + ttl}:${randomHex(8)}`;
    return json(
      {
        iceServers: [
          { urls: ["stun:127.0.0.1:3478"] },
          { urls: ["turn:127.0.0.1:3478?transport=udp", "turn:127.0.0.1:3478?transport=tcp"], username, credential: randomHex(16) },
        ],
      },
      201,
    );
  }

  private describe(session: SessionRecord): { sessionId: string; tracks: unknown[] } {
    const connected = this.media.connected(session.sessionId);
    return {
      sessionId: session.sessionId,
      tracks: [...session.tracks.values()].map((t) => {
        const sourceLive = t.location === "local" || this.sessions.get(t.source!.sessionId)?.tracks.has(this.sourceMid(t) ?? "") === true;
        const status = !sourceLive ? "inactive" : connected ? "active" : "waiting";
        return { location: t.location, mid: t.mid, trackName: t.trackName, ...(t.source ? { sessionId: t.source.sessionId } : {}), status };
      }),
    };
  }

  private sourceMid(t: TrackRecord): string | undefined {
    const source = this.sessions.get(t.source!.sessionId);
    return [...(source?.tracks.values() ?? [])].find((x) => x.location === "local" && x.trackName === t.source!.trackName)?.mid;
  }

  /** Sessions that never connected within CONNECT_TIMEOUT_MS are dropped (checked on every call). */
  private expire(): void {
    const now = this.now();
    for (const s of [...this.sessions.values()]) {
      if (!this.media.everConnected(s.sessionId) && now - s.createdAt > CONNECT_TIMEOUT_MS) this.drop(s.sessionId, `never connected within ${CONNECT_TIMEOUT_MS} ms`);
    }
  }
}

async function body(request: Request): Promise<Record<string, unknown>> {
  const text = await request.text();
  if (text.trim() === "") return {};
  try {
    const value = JSON.parse(text) as unknown;
    if (typeof value === "object" && value !== null && !Array.isArray(value)) return value as Record<string, unknown>;
  } catch {
    // fall through
  }
  throw new SfuError(400, "invalid_json", "The body is not a JSON object");
}

function description(value: unknown, type: "offer" | "answer"): string | null {
  const d = value as { type?: unknown; sdp?: unknown } | undefined;
  return d && d.type === type && typeof d.sdp === "string" ? d.sdp : null;
}

export function kindsByMid(sdp: string): Map<string, string> {
  const kinds = new Map<string, string>();
  let kind: string | null = null;
  for (const line of sdp.split(/\r?\n/)) {
    if (line.startsWith("m=")) kind = line.slice(2).split(" ")[0] ?? null;
    else if (line.startsWith("a=mid:") && kind !== null) kinds.set(line.slice(6).trim(), kind);
  }
  return kinds;
}

function json(value: unknown, status = 200): Response {
  return new Response(JSON.stringify(value), { status, headers: { "content-type": "application/json" } });
}
