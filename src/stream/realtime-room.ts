import type { RealtimeTracks } from "../schemas/protocol";
import { clock } from "../clock";
import { StreamMeta, type StreamContext } from "./context";
import type { MediaKind } from "./realtime-sdp";
import { APP_TAG, sendText } from "./sockets";

/**
 * The stream's Realtime SFU room, as durable state: which SFU sessions exist and who owns each (the
 * glasses or an app), the tracks each holds (by mid, so they can be closed), and which session is the
 * room's publisher. No SDP is kept. The SFU has no rooms (seed 003): this is the room. Calls on the
 * SFU are in realtime-calls.ts; this module is only the record and the `realtime_tracks` push.
 */
export type Owner = { role: "app"; packageName: string } | { role: "device"; userId: string };

export interface RoomSession {
  sessionId: string;
  owner: Owner;
  /** `closing`: refused to callers; realtime-calls.ts closes its tracks at the SFU, then forgets it. */
  state: "open" | "closing";
  createdAt: number;
  closeAttempts: number;
}

export interface RoomTrack {
  mid: string;
  trackName: string;
  location: "local" | "remote";
  kind: MediaKind;
}

export const TABLES = ["realtime_sessions", "realtime_tracks"];
const PUBLISHER_KEY = "realtimePublisher";
const PUSHED_KEY = "realtimePushed";

interface SessionRow {
  session_id: string;
  owner_role: string;
  owner: string;
  state: string;
  created_at: number;
  close_attempts: number;
}

export class RoomStore {
  private readonly meta: StreamMeta;

  constructor(private readonly s: StreamContext) {
    s.sql.run(`CREATE TABLE IF NOT EXISTS realtime_sessions (
      session_id TEXT PRIMARY KEY, owner_role TEXT NOT NULL, owner TEXT NOT NULL, state TEXT NOT NULL,
      created_at INTEGER NOT NULL, close_attempts INTEGER NOT NULL DEFAULT 0)`);
    s.sql.run(`CREATE TABLE IF NOT EXISTS realtime_tracks (
      session_id TEXT NOT NULL, mid TEXT NOT NULL, track_name TEXT NOT NULL, location TEXT NOT NULL, kind TEXT NOT NULL,
      PRIMARY KEY (session_id, mid))`);
    this.meta = new StreamMeta(s.sql);
  }

  addSession(sessionId: string, owner: Owner, now: number): void {
    this.s.sql.run(
      `INSERT OR IGNORE INTO realtime_sessions (session_id, owner_role, owner, state, created_at) VALUES (?, ?, ?, 'open', ?)`,
      sessionId,
      owner.role,
      ownerName(owner),
      now,
    );
  }

  session(sessionId: string): RoomSession | null {
    const row = this.s.sql.one<SessionRow>(`SELECT * FROM realtime_sessions WHERE session_id = ?`, sessionId);
    return row ? toSession(row) : null;
  }

  sessions(state?: "open" | "closing"): RoomSession[] {
    const rows = state
      ? this.s.sql.all<SessionRow>(`SELECT * FROM realtime_sessions WHERE state = ? ORDER BY created_at`, state)
      : this.s.sql.all<SessionRow>(`SELECT * FROM realtime_sessions ORDER BY created_at`);
    return rows.map(toSession);
  }

  sessionsOf(owner: Owner): RoomSession[] {
    return this.s.sql
      .all<SessionRow>(`SELECT * FROM realtime_sessions WHERE owner_role = ? AND owner = ? ORDER BY created_at`, owner.role, ownerName(owner))
      .map(toSession);
  }

  /** Apps holding an open session: they count as viewers of the stream (presence.ts). */
  viewerApps(): string[] {
    return this.s.sql
      .all<{ owner: string }>(`SELECT DISTINCT owner FROM realtime_sessions WHERE owner_role = 'app' AND state = 'open'`)
      .map((r) => r.owner);
  }

  isEmpty(): boolean {
    return this.s.sql.one(`SELECT 1 AS y FROM realtime_sessions LIMIT 1`) === null;
  }

  /** Refuses the sessions to callers from now on; the publisher among them stops being the publisher. */
  markClosing(sessionIds: string[]): void {
    for (const id of sessionIds) {
      this.s.sql.run(`UPDATE realtime_sessions SET state = 'closing' WHERE session_id = ?`, id);
      if (this.publisher() === id) this.meta.set(PUBLISHER_KEY, null);
    }
  }

  countCloseAttempt(sessionId: string): number {
    this.s.sql.run(`UPDATE realtime_sessions SET close_attempts = close_attempts + 1 WHERE session_id = ?`, sessionId);
    return this.session(sessionId)?.closeAttempts ?? 0;
  }

  forget(sessionId: string): void {
    this.s.sql.run(`DELETE FROM realtime_tracks WHERE session_id = ?`, sessionId);
    this.s.sql.run(`DELETE FROM realtime_sessions WHERE session_id = ?`, sessionId);
    if (this.publisher() === sessionId) this.meta.set(PUBLISHER_KEY, null);
  }

  addTracks(sessionId: string, tracks: RoomTrack[]): void {
    for (const t of tracks) {
      this.s.sql.run(
        `INSERT INTO realtime_tracks (session_id, mid, track_name, location, kind) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT(session_id, mid) DO UPDATE SET track_name = excluded.track_name, location = excluded.location, kind = excluded.kind`,
        sessionId,
        t.mid,
        t.trackName,
        t.location,
        t.kind,
      );
    }
  }

  removeTracks(sessionId: string, mids: string[]): void {
    for (const mid of mids) this.s.sql.run(`DELETE FROM realtime_tracks WHERE session_id = ? AND mid = ?`, sessionId, mid);
  }

  tracks(sessionId: string): RoomTrack[] {
    return this.s.sql
      .all<{ mid: string; track_name: string; location: string; kind: string }>(
        `SELECT mid, track_name, location, kind FROM realtime_tracks WHERE session_id = ? ORDER BY rowid`,
        sessionId,
      )
      .map((r) => ({ mid: r.mid, trackName: r.track_name, location: r.location as RoomTrack["location"], kind: r.kind as MediaKind }));
  }

  publisher(): string | null {
    return this.meta.get(PUBLISHER_KEY);
  }

  setPublisher(sessionId: string): void {
    this.meta.set(PUBLISHER_KEY, sessionId);
  }

  /** What viewers are told: the publisher's session and its published (local) tracks. */
  announcement(): RealtimeTracks {
    const sessionId = this.publisher();
    const tracks = sessionId
      ? this.tracks(sessionId)
          .filter((t) => t.location === "local")
          .map((t) => ({ trackName: t.trackName, kind: t.kind }))
      : [];
    return { type: "realtime_tracks", ...(sessionId && tracks.length > 0 ? { sessionId } : {}), tracks, timestamp: new Date(clock.now()).toISOString() };
  }

  /**
   * Tells every viewer socket the publisher's tracks when they differ from what was last told (a durable
   * fingerprint, so a restarted object neither repeats nor skips the message).
   */
  pushIfChanged(): void {
    const message = this.announcement();
    const { timestamp: _t, ...visible } = message;
    const fingerprint = JSON.stringify(visible);
    if ((this.meta.get(PUSHED_KEY) ?? JSON.stringify({ type: "realtime_tracks", tracks: [] })) === fingerprint) return;
    this.meta.set(PUSHED_KEY, fingerprint);
    const text = JSON.stringify(message);
    for (const ws of this.s.ctx.getWebSockets(APP_TAG)) if (ws.readyState === WebSocket.OPEN) sendText(ws, text);
  }

  /** A viewer (re)connected: it learns the publisher's tracks at once, if there are any. */
  welcome(ws: WebSocket): void {
    const message = this.announcement();
    if (message.tracks.length > 0) sendText(ws, JSON.stringify(message));
  }
}

export function ownerName(owner: Owner): string {
  return owner.role === "app" ? owner.packageName : owner.userId;
}

export function sameOwner(a: Owner, b: Owner): boolean {
  return a.role === b.role && ownerName(a) === ownerName(b);
}

function toSession(row: SessionRow): RoomSession {
  const owner: Owner = row.owner_role === "app" ? { role: "app", packageName: row.owner } : { role: "device", userId: row.owner };
  return {
    sessionId: row.session_id,
    owner,
    state: row.state === "closing" ? "closing" : "open",
    createdAt: row.created_at,
    closeAttempts: row.close_attempts,
  };
}
