import type { Sql } from "./sql";
import { clock } from "../clock";

/**
 * One physical alarm multiplexed over a schedule table (the `cloudflare/agents` pattern): each named
 * timer is a row; the alarm is always set to the earliest due row, overdue rows included. A handler
 * that throws is retried with exponential backoff, and one interrupted by a crash runs again: a timer
 * is never lost.
 */
export type TimerHandler = (name: string, now: number) => Promise<void> | void;

const RETRY_BASE_MS = 2_000;
const RETRY_MAX_MS = 5 * 60_000;
/** How far a running timer is pushed ahead, so a crash mid-handler cannot lose it. */
const LEASE_MS = 60_000;

export class Schedule {
  /**
   * The alarm as this instance last set it, so `arm()` with nothing changed costs no storage call (it runs
   * on every connect). `undefined` when not known: a new instance, or after the runtime fired (and so
   * cleared) the alarm.
   */
  private armed: number | null | undefined = undefined;

  constructor(
    private readonly sql: Sql,
    private readonly storage: DurableObjectStorage,
  ) {
    sql.run(`CREATE TABLE IF NOT EXISTS schedule (
      name TEXT PRIMARY KEY,
      due_at INTEGER NOT NULL,
      attempts INTEGER NOT NULL DEFAULT 0
    )`);
  }

  /** Sets (or moves) a named timer. Call `arm()` afterwards, once per batch of changes. */
  set(name: string, dueAt: number): void {
    this.sql.run(
      `INSERT INTO schedule (name, due_at, attempts) VALUES (?, ?, 0)
       ON CONFLICT(name) DO UPDATE SET due_at = excluded.due_at, attempts = 0`,
      name,
      Math.floor(dueAt),
    );
  }

  /** Sets the timer only if it is absent or due later than `dueAt`. */
  setEarliest(name: string, dueAt: number): void {
    const existing = this.dueAt(name);
    if (existing === null || existing > dueAt) this.set(name, dueAt);
  }

  cancel(name: string): void {
    this.sql.run(`DELETE FROM schedule WHERE name = ?`, name);
  }

  cancelPrefix(prefix: string): void {
    this.sql.run(`DELETE FROM schedule WHERE substr(name, 1, ?) = ?`, prefix.length, prefix);
  }

  dueAt(name: string): number | null {
    return this.sql.one<{ due_at: number }>(`SELECT due_at FROM schedule WHERE name = ?`, name)?.due_at ?? null;
  }

  names(): string[] {
    return this.sql.all<{ name: string }>(`SELECT name FROM schedule ORDER BY due_at`).map((r) => r.name);
  }

  clear(): void {
    this.sql.run(`DELETE FROM schedule`);
  }

  /** Points the single physical alarm at the earliest row (or removes it when nothing is scheduled). */
  async arm(): Promise<void> {
    const want = this.sql.one<{ due_at: number }>(`SELECT due_at FROM schedule ORDER BY due_at LIMIT 1`)?.due_at ?? null;
    if (this.armed === want) return;
    const known = this.armed !== undefined;
    // Recorded before the await, so interleaved calls compare against the latest request (storage applies
    // them in order); forgotten again if the call fails.
    this.armed = want;
    try {
      if (want === null) await this.storage.deleteAlarm();
      else if (known || (await this.storage.getAlarm()) !== want) await this.storage.setAlarm(want);
    } catch (error) {
      this.armed = undefined;
      throw error;
    }
  }

  /** The alarm is firing: the runtime clears it, so the next `arm()` must set it whatever it was. */
  alarmFired(): void {
    this.armed = undefined;
  }

  /**
   * Runs every due timer, earliest first. Before its handler runs, a row is *leased*: moved a minute
   * ahead rather than removed, so if the object dies mid-handler the timer fires again. A handler may
   * re-schedule or cancel its own row; if it leaves the lease untouched, the row is done and removed.
   * A handler that throws (and did not re-schedule) comes back with exponential backoff.
   */
  async runDue(handler: TimerHandler, now: number): Promise<void> {
    const due = this.sql.all<{ name: string; attempts: number }>(
      `SELECT name, attempts FROM schedule WHERE due_at <= ? ORDER BY due_at`,
      now,
    );
    for (const row of due) {
      // It may have been cancelled or moved by an earlier handler in this batch.
      const dueAt = this.dueAt(row.name);
      if (dueAt === null || dueAt > now) continue;
      const lease = Math.max(clock.now(), now) + LEASE_MS;
      this.sql.run(`UPDATE schedule SET due_at = ? WHERE name = ?`, lease, row.name);
      await this.arm();
      try {
        await handler(row.name, now);
        if (this.dueAt(row.name) === lease) this.cancel(row.name);
      } catch (error) {
        console.error(`timer ${row.name} failed (attempt ${row.attempts + 1})`, error instanceof Error ? error.message : error);
        if (this.dueAt(row.name) === lease) {
          const delay = Math.min(RETRY_MAX_MS, RETRY_BASE_MS * 2 ** row.attempts) * (0.8 + Math.random() * 0.4);
          this.sql.run(
            `UPDATE schedule SET due_at = ?, attempts = ? WHERE name = ?`,
            Math.floor(clock.now() + delay),
            row.attempts + 1,
            row.name,
          );
        }
      }
    }
  }
}
