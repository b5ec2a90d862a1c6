import { nanoid } from "nanoid";
import type { Env } from "../env";
import type { Sql } from "../stream/sql";
import { forgetWatchKey, recordWatchKey } from "./watch-key-index";

/** `/w/<key>`: 24 characters of nanoid's alphabet (~143 bits), never derived from the user id. */
export const WATCH_KEY_LENGTH = 24;
export const WATCH_KEY_PATTERN = /^[A-Za-z0-9_-]{24}$/;

/** The public path of a watch link, under the Worker's origin. */
export function watchPath(key: string): string {
  return `/w/${key}`;
}

/**
 * A user's watch key, kept by the user's own object (`UserStreams`), which is the truth of which key is
 * current; the sharded WatchKeyIndex only routes a key to its user. A new key is written to the index
 * before it becomes current (so a current key always resolves), and a rotated-away key is refused here
 * at once, whether or not its index entry could be dropped yet.
 */
export class WatchKeys {
  /** A key being created, so concurrent callers share it instead of making two. */
  private creating: Promise<string> | null = null;

  constructor(
    private readonly sql: Sql,
    private readonly env: Env,
  ) {
    sql.run(`CREATE TABLE IF NOT EXISTS watch_key (id INTEGER PRIMARY KEY CHECK (id = 1), watch_key TEXT NOT NULL, created_at INTEGER NOT NULL)`);
    sql.run(`CREATE TABLE IF NOT EXISTS last_stream (id INTEGER PRIMARY KEY CHECK (id = 1), stream_id TEXT NOT NULL)`);
  }

  current(): string | null {
    return this.sql.one<{ watch_key: string }>(`SELECT watch_key FROM watch_key WHERE id = 1`)?.watch_key ?? null;
  }

  /** The user's key, made (and indexed) on first use. */
  async ensure(userId: string, now: number): Promise<string> {
    const existing = this.current();
    if (existing) return existing;
    this.creating ??= this.replace(userId, null, now).finally(() => {
      this.creating = null;
    });
    return this.creating;
  }

  /** A new key; the old one stops resolving the moment this returns (and even if its index entry lingers). */
  async rotate(userId: string, now: number): Promise<string> {
    if (this.creating) await this.creating.catch(() => undefined);
    return this.replace(userId, this.current(), now);
  }

  private async replace(userId: string, old: string | null, now: number): Promise<string> {
    const key = nanoid(WATCH_KEY_LENGTH);
    // Indexed first: if this fails, nothing changed and the caller gets the error.
    await recordWatchKey(this.env, key, userId);
    this.sql.run(
      `INSERT INTO watch_key (id, watch_key, created_at) VALUES (1, ?, ?)
       ON CONFLICT(id) DO UPDATE SET watch_key = excluded.watch_key, created_at = excluded.created_at`,
      key,
      now,
    );
    // The old key is already dead (matches() refuses it); its entry is only tidied away.
    if (old) await forgetWatchKey(this.env, old).catch(() => undefined);
    return key;
  }

  matches(key: string): boolean {
    return this.current() === key;
  }

  /** The user's most recent stream: what an offline watch link shows (its recording). */
  lastStream(): string | null {
    return this.sql.one<{ stream_id: string }>(`SELECT stream_id FROM last_stream WHERE id = 1`)?.stream_id ?? null;
  }

  rememberStream(streamId: string): void {
    this.sql.run(
      `INSERT INTO last_stream (id, stream_id) VALUES (1, ?) ON CONFLICT(id) DO UPDATE SET stream_id = excluded.stream_id`,
      streamId,
    );
  }
}
