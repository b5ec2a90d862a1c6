import type { Config } from "../config";
import type { StreamApi } from "../cloudflare/stream-api";
import type { Env } from "../env";
import type { Schedule } from "./schedule";
import type { Sql } from "./sql";
import type { StreamStore } from "./store";

/** What every per-stream module shares: storage, timers, the Cloudflare client and configuration. */
export interface StreamContext {
  ctx: DurableObjectState;
  env: Env;
  config: Config;
  sql: Sql;
  store: StreamStore;
  schedule: Schedule;
  api: StreamApi;
}

/** A small key/value table for scalar per-stream state (keep-alive bookkeeping, last pushed status). */
export class StreamMeta {
  constructor(private readonly sql: Sql) {
    sql.run(`CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)`);
  }

  get(key: string): string | null {
    return this.sql.one<{ value: string }>(`SELECT value FROM meta WHERE key = ?`, key)?.value ?? null;
  }

  set(key: string, value: string | null): void {
    if (value === null) this.sql.run(`DELETE FROM meta WHERE key = ?`, key);
    else this.sql.run(`INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value`, key, value);
  }
}
