import { DurableObject } from "cloudflare:workers";
import type { Env } from "../env";
import { Sql } from "../stream/sql";

/**
 * The durable index from a watch key (the opaque part of a user's watch link, `/w/<key>`) to its user,
 * in WATCH_KEY_SHARDS shard objects chosen by a hash of the key (as LiveInputIndex does for inputs).
 * It only says whose key it *was*: the user's own object (`UserStreams`) is the truth of which key is
 * current, so an entry left behind by a rotation that died halfway resolves to nothing.
 */
export const WATCH_KEY_SHARDS = 16;

export class WatchKeyIndex extends DurableObject<Env> {
  private readonly sql: Sql;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = new Sql(ctx.storage.sql);
    this.sql.run(`CREATE TABLE IF NOT EXISTS watch_keys (watch_key TEXT PRIMARY KEY, user_id TEXT NOT NULL)`);
  }

  async set(key: string, userId: string): Promise<void> {
    this.sql.run(
      `INSERT INTO watch_keys (watch_key, user_id) VALUES (?, ?) ON CONFLICT(watch_key) DO UPDATE SET user_id = excluded.user_id`,
      key,
      userId,
    );
  }

  async userId(key: string): Promise<string | null> {
    return this.sql.one<{ user_id: string }>(`SELECT user_id FROM watch_keys WHERE watch_key = ?`, key)?.user_id ?? null;
  }

  async forget(key: string): Promise<void> {
    this.sql.run(`DELETE FROM watch_keys WHERE watch_key = ?`, key);
  }
}

function shardFor(env: Env, key: string) {
  let hash = 0;
  for (let i = 0; i < key.length; i++) hash = (hash * 31 + key.charCodeAt(i)) >>> 0;
  return env.WATCH_KEYS.getByName(`shard:${hash % WATCH_KEY_SHARDS}`);
}

export const recordWatchKey = (env: Env, key: string, userId: string) => shardFor(env, key).set(key, userId);
export const userForWatchKey = (env: Env, key: string) => shardFor(env, key).userId(key);
export const forgetWatchKey = (env: Env, key: string) => shardFor(env, key).forget(key);
