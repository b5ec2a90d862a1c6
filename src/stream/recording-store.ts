import type { RemoteVideo } from "../cloudflare/video-api";
import type { Sql } from "./sql";

/**
 * The stream's recordings (Cloudflare videos of its live input) and the compact record of the stream they
 * belong to. Both tables survive the stream's purge: the compact record (who started it, who took part)
 * answers GET/DELETE .../recordings for as long as any recording is kept, and both are emptied when the last
 * recording is deleted (recordings.ts).
 */
export type RecordingState = "recording" | "processing" | "ready" | "error" | "deleted";
/** `deleting`: our delete is under way (shown as `deleted`: the removal stands, Cloudflare confirms it). */
type StoredState = RecordingState | "deleting";

export interface RecordingRow {
  recording_id: string;
  state: StoredState;
  started_at: number | null;
  ended_at: number | null;
  ready_at: number | null;
  duration_seconds: number | null;
  hls_url: string | null;
  dash_url: string | null;
  thumbnail_url: string | null;
  expires_at: number | null;
  error: string | null;
}

/** One recording as the API shows it (GET /api/streams/:id/recordings). */
export interface RecordingView {
  recordingId: string;
  state: RecordingState;
  startedAt: string | null;
  endedAt: string | null;
  durationSeconds: number | null;
  hlsUrl: string | null;
  dashUrl: string | null;
  thumbnailUrl: string | null;
  expiresAt: string | null;
}

export interface RecordingOwner {
  streamId: string;
  userId: string;
  createdBy: string;
  participants: string[];
  stoppedAt: number | null;
  /** The client's deleteRecordingAfterDays (null: none asked); our retention caps it. */
  deleteAfterDays: number | null;
}

/** Cloudflare's video state → ours. */
export function stateOf(video: RemoteVideo): RecordingState {
  if (video.state === "live-inprogress") return "recording";
  if (video.state === "ready") return "ready";
  if (video.state === "error") return "error";
  return "processing";
}

export const isSettled = (state: StoredState): boolean => state === "ready" || state === "error" || state === "deleted";

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

export function toView(row: RecordingRow): RecordingView {
  const gone = row.state === "deleted" || row.state === "deleting";
  return {
    recordingId: row.recording_id,
    state: gone ? "deleted" : (row.state as RecordingState),
    startedAt: iso(row.started_at),
    endedAt: iso(row.ended_at),
    durationSeconds: row.duration_seconds,
    // Playable only once ready, and never after our delete.
    hlsUrl: row.state === "ready" ? row.hls_url : null,
    dashUrl: row.state === "ready" ? row.dash_url : null,
    thumbnailUrl: row.state === "ready" ? row.thumbnail_url : null,
    expiresAt: gone ? null : iso(row.expires_at),
  };
}

export class RecordingStore {
  constructor(private readonly sql: Sql) {
    sql.run(`CREATE TABLE IF NOT EXISTS recordings (
      recording_id TEXT PRIMARY KEY,
      state TEXT NOT NULL,
      started_at INTEGER,
      ended_at INTEGER,
      ready_at INTEGER,
      duration_seconds REAL,
      hls_url TEXT,
      dash_url TEXT,
      thumbnail_url TEXT,
      expires_at INTEGER,
      error TEXT
    )`);
    sql.run(`CREATE TABLE IF NOT EXISTS recording_owner (
      id INTEGER PRIMARY KEY CHECK (id = 1),
      stream_id TEXT NOT NULL,
      user_id TEXT NOT NULL,
      created_by TEXT NOT NULL,
      participants TEXT NOT NULL,
      stopped_at INTEGER,
      delete_after_days INTEGER,
      settle_passes INTEGER NOT NULL DEFAULT 0
    )`);
  }

  all(): RecordingRow[] {
    return this.sql.all<RecordingRow>(`SELECT * FROM recordings ORDER BY started_at, recording_id`);
  }

  get(id: string): RecordingRow | null {
    return this.sql.one<RecordingRow>(`SELECT * FROM recordings WHERE recording_id = ?`, id);
  }

  /** The newest ready recording (what the stream's view and the watch link offer once the stream is over). */
  latestReady(): RecordingRow | null {
    return this.sql.one<RecordingRow>(`SELECT * FROM recordings WHERE state = 'ready' ORDER BY started_at DESC, recording_id DESC LIMIT 1`);
  }

  unsettledCount(): number {
    return this.sql.one<{ n: number }>(`SELECT COUNT(*) AS n FROM recordings WHERE state IN ('recording', 'processing')`)!.n;
  }

  /**
   * What Cloudflare says about a video, applied. A row we deleted (or are deleting) is never brought back;
   * the end is the first moment it is seen no longer live (or the stream's stop, if earlier).
   */
  upsert(video: RemoteVideo, now: number, expiresAt: (readyAt: number) => number, stoppedAt: number | null): void {
    const existing = this.get(video.uid);
    if (existing && (existing.state === "deleted" || existing.state === "deleting")) return;
    const state = stateOf(video);
    const endedAt = state === "recording" ? null : (existing?.ended_at ?? Math.min(now, stoppedAt ?? now));
    const readyAt = state === "ready" || state === "error" ? (existing?.ready_at ?? video.readyAt ?? now) : null;
    this.sql.run(
      `INSERT INTO recordings (recording_id, state, started_at, ended_at, ready_at, duration_seconds, hls_url, dash_url, thumbnail_url, expires_at, error)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT(recording_id) DO UPDATE SET state = excluded.state, started_at = COALESCE(recordings.started_at, excluded.started_at),
         ended_at = excluded.ended_at, ready_at = excluded.ready_at, duration_seconds = excluded.duration_seconds, hls_url = excluded.hls_url,
         dash_url = excluded.dash_url, thumbnail_url = excluded.thumbnail_url, expires_at = excluded.expires_at, error = excluded.error`,
      video.uid,
      state,
      video.created ?? existing?.started_at ?? now,
      endedAt,
      readyAt,
      video.durationSeconds,
      video.hlsUrl,
      video.dashUrl,
      video.thumbnailUrl,
      readyAt !== null ? expiresAt(readyAt) : null,
      state === "error" ? (video.errorReason ?? "Cloudflare could not process the recording") : null,
    );
  }

  /**
   * A state we decide: deleting/deleted (our delete), deleted (Cloudflare no longer has it), error (it never
   * settled; then `expiresAt` is when our retention deletes it).
   */
  setState(id: string, state: StoredState, error: string | null = null, now: number | null = null, expiresAt: number | null = null): void {
    this.sql.run(
      `UPDATE recordings SET state = ?, error = COALESCE(?, error), ended_at = COALESCE(ended_at, ?), expires_at = COALESCE(expires_at, ?) WHERE recording_id = ?`,
      state,
      error,
      now,
      expiresAt,
      id,
    );
  }

  /** Rows our retention or a client's delete must remove now, or whose delete was interrupted. */
  dueForDelete(now: number): RecordingRow[] {
    return this.sql.all<RecordingRow>(
      `SELECT * FROM recordings WHERE state = 'deleting' OR (state IN ('ready', 'error', 'processing') AND expires_at IS NOT NULL AND expires_at <= ?)`,
      now,
    );
  }

  nextExpiry(): number | null {
    return (
      this.sql.one<{ at: number | null }>(`SELECT MIN(expires_at) AS at FROM recordings WHERE state IN ('ready', 'error', 'processing') AND expires_at IS NOT NULL`)?.at ?? null
    );
  }

  hasDeleting(): boolean {
    return this.sql.one(`SELECT 1 AS y FROM recordings WHERE state = 'deleting' LIMIT 1`) !== null;
  }

  /** Every recording is deleted: nothing is kept for this stream any more. */
  allGone(): boolean {
    return this.sql.one(`SELECT 1 AS y FROM recordings WHERE state != 'deleted' LIMIT 1`) === null;
  }

  owner(): RecordingOwner | null {
    const row = this.sql.one<{ stream_id: string; user_id: string; created_by: string; participants: string; stopped_at: number | null; delete_after_days: number | null }>(
      `SELECT * FROM recording_owner WHERE id = 1`,
    );
    return row
      ? {
          streamId: row.stream_id,
          userId: row.user_id,
          createdBy: row.created_by,
          participants: JSON.parse(row.participants) as string[],
          stoppedAt: row.stopped_at,
          deleteAfterDays: row.delete_after_days,
        }
      : null;
  }

  setOwner(owner: RecordingOwner): void {
    this.sql.run(
      `INSERT INTO recording_owner (id, stream_id, user_id, created_by, participants, stopped_at, delete_after_days) VALUES (1, ?, ?, ?, ?, ?, ?)
       ON CONFLICT(id) DO UPDATE SET participants = excluded.participants, stopped_at = excluded.stopped_at, delete_after_days = excluded.delete_after_days`,
      owner.streamId,
      owner.userId,
      owner.createdBy,
      JSON.stringify(owner.participants),
      owner.stoppedAt,
      owner.deleteAfterDays,
    );
  }

  /** Counts one settle pass; returns how many have run (the settle is bounded). */
  countSettlePass(): number {
    this.sql.run(`UPDATE recording_owner SET settle_passes = settle_passes + 1 WHERE id = 1`);
    return this.sql.one<{ n: number }>(`SELECT settle_passes AS n FROM recording_owner WHERE id = 1`)?.n ?? 0;
  }

  clear(): void {
    this.sql.run(`DELETE FROM recordings`);
    this.sql.run(`DELETE FROM recording_owner`);
  }
}
