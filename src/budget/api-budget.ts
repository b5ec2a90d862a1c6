import { DurableObject } from "cloudflare:workers";
import type { Env } from "../env";
import { Sql } from "../stream/sql";
import { SlidingWindowBudget, type BudgetSettings, type Grant, type GrantLog, type Lease, type Priority } from "./sliding-window";
import { resetLeases } from "./lease-pool";
import { clock } from "../clock";
import { CounterTable, STAT, type CounterValue, type StatsDelta } from "../ops/counters";

/**
 * One object for the whole deployment (one Cloudflare token): every Stream API call is paid from it,
 * either one slot per call (`acquire`) or from a short lease of a few slots kept in the caller's
 * isolate (`lease`, see lease-pool.ts).
 */
export const BUDGET_OBJECT_NAME = "global";

class SqlGrantLog implements GrantLog {
  constructor(private readonly sql: Sql) {
    sql.run(`CREATE TABLE IF NOT EXISTS grants (id INTEGER PRIMARY KEY AUTOINCREMENT, at INTEGER NOT NULL)`);
    sql.run(`CREATE INDEX IF NOT EXISTS grants_at ON grants (at)`);
  }
  countSince(since: number): number {
    return this.sql.one<{ n: number }>(`SELECT COUNT(*) AS n FROM grants WHERE at >= ?`, since)!.n;
  }
  nthSince(since: number, n: number): number | null {
    return this.sql.one<{ at: number }>(`SELECT at FROM grants WHERE at >= ? ORDER BY at LIMIT 1 OFFSET ?`, since, n)?.at ?? null;
  }
  add(at: number): void {
    this.sql.run(`INSERT INTO grants (at) VALUES (?)`, at);
  }
  pruneBefore(before: number): void {
    this.sql.run(`DELETE FROM grants WHERE at < ?`, before);
  }
}

export class ApiBudget extends DurableObject<Env> {
  private readonly sql: Sql;
  private readonly budget: SlidingWindowBudget;
  /** The deployment's counters (ops/counters.ts): this is its one global object. */
  private readonly counters: CounterTable;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = new Sql(ctx.storage.sql);
    this.sql.run(`CREATE TABLE IF NOT EXISTS blocked (id INTEGER PRIMARY KEY CHECK (id = 1), until INTEGER NOT NULL)`);
    this.budget = new SlidingWindowBudget(new SqlGrantLog(this.sql));
    this.budget.restoreBlock(this.sql.one<{ until: number }>(`SELECT until FROM blocked`)?.until ?? 0);
    this.counters = new CounterTable(this.sql);
  }

  async acquire(priority: Priority, settings: BudgetSettings): Promise<Grant> {
    return this.budget.acquire(priority, settings, clock.now());
  }

  /** `stats`: the caller isolate's pending counts, riding along (ops/stats-buffer.ts). */
  async lease(priority: Priority, settings: BudgetSettings, count: number, ttlMs: number, stats?: StatsDelta): Promise<Lease> {
    if (stats) this.counters.apply(stats, clock.now());
    return this.budget.lease(priority, settings, clock.now(), Math.min(Math.max(1, count), 64), Math.min(Math.max(0, ttlMs), 10_000));
  }

  async reportRateLimited(retryAfterSeconds: number): Promise<void> {
    this.counters.apply({ add: { [STAT.rateLimited]: 1 } }, clock.now());
    this.budget.block(clock.now() + Math.max(1, retryAfterSeconds) * 1000);
    this.sql.run(
      `INSERT INTO blocked (id, until) VALUES (1, ?) ON CONFLICT(id) DO UPDATE SET until = excluded.until`,
      this.budget.blockedUntilMs,
    );
  }

  /** Operator action (and tests): lift a block from an earlier 429 and forget the window. */
  async clear(): Promise<void> {
    this.budget.restoreBlock(0);
    resetLeases();
    this.sql.run(`DELETE FROM blocked`);
    this.sql.run(`DELETE FROM grants`);
  }

  async recordStats(delta: StatsDelta): Promise<void> {
    this.counters.apply(delta, clock.now());
  }

  /** The counters and the current window, for GET /api/admin/stats. */
  async stats(): Promise<{ counters: Record<string, CounterValue>; countingSince: number | null; usedLast5Min: number; blockedUntil: string | null }> {
    return { counters: this.counters.read(), countingSince: this.counters.since(), ...(await this.usage()) };
  }

  async usage(): Promise<{ usedLast5Min: number; blockedUntil: string | null }> {
    const used = this.sql.one<{ n: number }>(`SELECT COUNT(*) AS n FROM grants WHERE at >= ?`, clock.now() - 300_000)!.n;
    const blocked = this.budget.blockedUntilMs;
    return { usedLast5Min: used, blockedUntil: blocked > clock.now() ? new Date(blocked).toISOString() : null };
  }
}
