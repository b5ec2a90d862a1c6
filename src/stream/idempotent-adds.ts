import { clock } from "../clock";
import { fail, type Failure, type Result } from "../http/errors";
import type { Sql } from "./sql";

/**
 * `Idempotency-Key` on output adds: a retry of a *successful* add returns the original outputId and
 * creates nothing; failures are not remembered (fixing the cause and retrying works). A concurrent
 * retry waits for the original. The same key with a different URL or name is refused.
 */
const IDEMPOTENCY_TTL_MS = 24 * 3_600_000;

export class IdempotentAdds<T extends { outputId: string }> {
  /** Requests in flight per key, so a concurrent retry waits for the original. */
  private readonly inflight = new Map<string, { request: string; reply: Promise<Result<T>> }>();

  constructor(private readonly sql: Sql) {
    sql.run(`CREATE TABLE IF NOT EXISTS idempotent_adds (
      package_name TEXT NOT NULL,
      key TEXT NOT NULL,
      request TEXT NOT NULL,
      output_id TEXT NOT NULL,
      created_at INTEGER NOT NULL,
      PRIMARY KEY (package_name, key)
    )`);
  }

  async run(packageName: string, key: string, request: string, add: () => Promise<Result<T>>, replay: (outputId: string) => T): Promise<Result<T>> {
    const mapKey = `${packageName}\n${key}`;
    const running = this.inflight.get(mapKey);
    if (running) return running.request === request ? running.reply : keyReused();
    const stored = this.sql.one<{ request: string; output_id: string }>(
      `SELECT request, output_id FROM idempotent_adds WHERE package_name = ? AND key = ? AND created_at > ?`,
      packageName,
      key,
      clock.now() - IDEMPOTENCY_TTL_MS,
    );
    if (stored) return stored.request === request ? { ok: true, ...replay(stored.output_id) } : keyReused();

    const reply = add().then((result) => {
      if (result.ok) {
        this.sql.run(`DELETE FROM idempotent_adds WHERE created_at <= ?`, clock.now() - IDEMPOTENCY_TTL_MS);
        this.sql.run(
          `INSERT OR REPLACE INTO idempotent_adds (package_name, key, request, output_id, created_at) VALUES (?, ?, ?, ?, ?)`,
          packageName,
          key,
          request,
          result.outputId,
          clock.now(),
        );
      }
      return result;
    });
    this.inflight.set(mapKey, { request, reply });
    try {
      return await reply;
    } finally {
      this.inflight.delete(mapKey);
    }
  }
}

function keyReused(): Failure {
  return fail(422, "IDEMPOTENCY_KEY_REUSED", "This Idempotency-Key was used for a different request");
}
