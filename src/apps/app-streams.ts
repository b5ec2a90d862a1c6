import type { Sql } from "../stream/sql";

/**
 * The durable index of the streams an app takes part in, kept in the app's own AppAccount object.
 *
 * Participation itself lives in each stream's object (its `participants` table): that is what access is
 * checked against, and it cannot be listed without knowing the stream. So each stream object tells the
 * app's account when the app joins and when the stream ends (stream/participation-outbox.ts, a
 * transactional outbox retried until it lands); GET /api/streams reads a page here and asks each listed
 * stream for its snapshot. The app's own object is the natural key: the list is always per app, the app's
 * object is already on its hot path (its key check), and no object ever holds every app's streams.
 *
 * Entries are ordered newest join first. A stream that ended more than RETENTION_MS ago is dropped (its
 * snapshot is purged then anyway); one that vanished without telling us is dropped when a list finds it
 * gone (`forget`).
 */
export const ENDED_RETENTION_MS = 24 * 3_600_000;

export interface AppStreamEntry {
  streamId: string;
  userId: string;
  joinedAt: number;
  endedAt: number | null;
}

/** A position in the list: the sort key of the last entry a page examined. */
export interface ListPosition {
  at: number;
  streamId: string;
}

interface Row {
  stream_id: string;
  user_id: string;
  joined_at: number;
  ended_at: number | null;
}

export class AppStreamIndex {
  constructor(private readonly sql: Sql) {
    sql.run(`CREATE TABLE IF NOT EXISTS app_streams (
      stream_id TEXT PRIMARY KEY,
      user_id TEXT NOT NULL,
      joined_at INTEGER NOT NULL,
      ended_at INTEGER
    )`);
    sql.run(`CREATE INDEX IF NOT EXISTS app_streams_by_join ON app_streams (joined_at DESC, stream_id DESC)`);
  }

  /** Idempotent: the first join time is kept; an end, once known, stays. */
  record(entries: AppStreamEntry[]): void {
    for (const e of entries) {
      this.sql.run(
        `INSERT INTO app_streams (stream_id, user_id, joined_at, ended_at) VALUES (?, ?, ?, ?)
         ON CONFLICT(stream_id) DO UPDATE SET
           joined_at = MIN(joined_at, excluded.joined_at),
           ended_at = COALESCE(excluded.ended_at, ended_at)`,
        e.streamId,
        e.userId,
        e.joinedAt,
        e.endedAt,
      );
    }
  }

  /** Up to `limit` entries after `after` (newest first), and whether more follow. */
  page(after: ListPosition | null, limit: number, now: number): { entries: AppStreamEntry[]; more: boolean } {
    this.sql.run(`DELETE FROM app_streams WHERE ended_at IS NOT NULL AND ended_at < ?`, now - ENDED_RETENTION_MS);
    const rows = after
      ? this.sql.all<Row>(
          `SELECT * FROM app_streams WHERE joined_at < ? OR (joined_at = ? AND stream_id < ?)
           ORDER BY joined_at DESC, stream_id DESC LIMIT ?`,
          after.at,
          after.at,
          after.streamId,
          limit + 1,
        )
      : this.sql.all<Row>(`SELECT * FROM app_streams ORDER BY joined_at DESC, stream_id DESC LIMIT ?`, limit + 1);
    return {
      entries: rows.slice(0, limit).map((r) => ({ streamId: r.stream_id, userId: r.user_id, joinedAt: r.joined_at, endedAt: r.ended_at })),
      more: rows.length > limit,
    };
  }

  forget(streamIds: string[]): void {
    for (const id of streamIds) this.sql.run(`DELETE FROM app_streams WHERE stream_id = ?`, id);
  }
}
