import { DurableObject } from "cloudflare:workers";
import type { Env } from "../env";
import { Sql } from "../stream/sql";

/**
 * The durable index from a live input uid to its streamId, so a webhook (which names only the input)
 * finds its stream with one lookup and no scanning. Entries live in INDEX_SHARDS shard objects chosen
 * by a hash of the uid: a start then writes to an object that already exists instead of creating one
 * more object per input (object creation is the costliest step of a start on the local runtime).
 *
 * Earlier versions kept one object per uid (named by the uid, key `streamId`): a lookup that misses
 * its shard still reads there, so inputs indexed before the change keep their webhooks.
 *
 * It is also the index of running streams that GET /api/admin/streams pages through (`runningStreamsPage`):
 * an entry is written when a stream's input is created and dropped once the stream has stopped and
 * deleted it, which is exactly the life of a running (or stopping) stream, so the admin's list costs the
 * start path nothing extra. Each entry keeps its stream's creation time (`created_at`, newest first); a
 * list reads every shard and merges. Inputs still in the per-uid layout cannot be listed.
 */
export const INDEX_SHARDS = 16;

export class LiveInputIndex extends DurableObject<Env> {
  private readonly sql: Sql;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = new Sql(ctx.storage.sql);
    this.sql.run(`CREATE TABLE IF NOT EXISTS inputs (uid TEXT PRIMARY KEY, stream_id TEXT NOT NULL)`);
    // Added for the running-streams list; entries written before it sort as the oldest.
    if (!this.sql.all<{ name: string }>(`PRAGMA table_info(inputs)`).some((c) => c.name === "created_at")) {
      this.sql.run(`ALTER TABLE inputs ADD COLUMN created_at INTEGER NOT NULL DEFAULT 0`);
    }
  }

  async set(uid: string, streamId: string, createdAt = 0): Promise<void> {
    this.sql.run(
      `INSERT INTO inputs (uid, stream_id, created_at) VALUES (?, ?, ?)
       ON CONFLICT(uid) DO UPDATE SET stream_id = excluded.stream_id, created_at = excluded.created_at`,
      uid,
      streamId,
      createdAt,
    );
  }

  /** This shard's entries after `after`, newest stream first (see runningStreamsPage). */
  async page(after: { at: number; streamId: string } | null, limit: number): Promise<RunningEntry[]> {
    const rows = after
      ? this.sql.all<{ uid: string; stream_id: string; created_at: number }>(
          `SELECT uid, stream_id, created_at FROM inputs WHERE created_at < ? OR (created_at = ? AND stream_id < ?)
           ORDER BY created_at DESC, stream_id DESC LIMIT ?`,
          after.at,
          after.at,
          after.streamId,
          limit,
        )
      : this.sql.all<{ uid: string; stream_id: string; created_at: number }>(
          `SELECT uid, stream_id, created_at FROM inputs ORDER BY created_at DESC, stream_id DESC LIMIT ?`,
          limit,
        );
    return rows.map((r) => ({ uid: r.uid, streamId: r.stream_id, createdAt: r.created_at }));
  }

  async streamId(uid: string): Promise<string | null> {
    const row = this.sql.one<{ stream_id: string }>(`SELECT stream_id FROM inputs WHERE uid = ?`, uid);
    // A per-uid object from before the shards keeps its entry under the key `streamId`.
    return row?.stream_id ?? (await this.ctx.storage.get<string>("streamId")) ?? null;
  }

  /** Called once the stream has deleted its input; later webhooks for it get 404. */
  async forget(uid: string): Promise<void> {
    this.sql.run(`DELETE FROM inputs WHERE uid = ?`, uid);
    await this.ctx.storage.delete("streamId");
  }
}

function shardFor(env: Env, uid: string) {
  let hash = 0;
  for (let i = 0; i < uid.length; i++) hash = (hash * 31 + uid.charCodeAt(i)) >>> 0;
  return env.INPUT_INDEX.getByName(`shard:${hash % INDEX_SHARDS}`);
}

export async function recordInputStream(env: Env, uid: string, streamId: string, createdAt = 0): Promise<void> {
  await shardFor(env, uid).set(uid, streamId, createdAt);
}

export interface RunningEntry {
  uid: string;
  streamId: string;
  createdAt: number;
}

/**
 * Up to `limit` running streams after `after`, newest first, from every shard (each gives its first
 * `limit`; the merge keeps the overall first `limit`); `more` when any shard may hold further entries.
 */
export async function runningStreamsPage(
  env: Env,
  after: { at: number; streamId: string } | null,
  limit: number,
): Promise<{ entries: RunningEntry[]; more: boolean }> {
  const shards = await Promise.all(
    Array.from({ length: INDEX_SHARDS }, (_, i) => env.INPUT_INDEX.getByName(`shard:${i}`).page(after, limit + 1)),
  );
  const all = shards.flat().sort((a, b) => b.createdAt - a.createdAt || (a.streamId < b.streamId ? 1 : a.streamId > b.streamId ? -1 : 0));
  return { entries: all.slice(0, limit), more: all.length > limit };
}

export async function streamIdForInput(env: Env, uid: string): Promise<string | null> {
  return (await shardFor(env, uid).streamId(uid)) ?? (await env.INPUT_INDEX.getByName(uid).streamId(uid));
}

export async function forgetInputStream(env: Env, uid: string): Promise<void> {
  await shardFor(env, uid).forget(uid);
}
