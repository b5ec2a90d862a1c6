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
 */
export const INDEX_SHARDS = 16;

export class LiveInputIndex extends DurableObject<Env> {
  private readonly sql: Sql;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = new Sql(ctx.storage.sql);
    this.sql.run(`CREATE TABLE IF NOT EXISTS inputs (uid TEXT PRIMARY KEY, stream_id TEXT NOT NULL)`);
  }

  async set(uid: string, streamId: string): Promise<void> {
    this.sql.run(`INSERT INTO inputs (uid, stream_id) VALUES (?, ?) ON CONFLICT(uid) DO UPDATE SET stream_id = excluded.stream_id`, uid, streamId);
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

export async function recordInputStream(env: Env, uid: string, streamId: string): Promise<void> {
  await shardFor(env, uid).set(uid, streamId);
}

export async function streamIdForInput(env: Env, uid: string): Promise<string | null> {
  return (await shardFor(env, uid).streamId(uid)) ?? (await env.INPUT_INDEX.getByName(uid).streamId(uid));
}

export async function forgetInputStream(env: Env, uid: string): Promise<void> {
  await shardFor(env, uid).forget(uid);
}
