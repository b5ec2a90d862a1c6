import type { Sql } from "../stream/sql";

/**
 * Deployment-wide counters a production deployment watches (GET /api/admin/stats, docs/deploy.md): budget
 * refusals, Cloudflare failures, leak-sweep deletions, webhook outcomes. They live in one SQLite table of
 * the ApiBudget object (the deployment's one global object, which already owns the budget's own events),
 * and are cumulative since the table was created, so a watcher takes differences between two reads.
 *
 * `add` increments, `set` overwrites (a last run's figures); every row keeps when it last changed.
 */
export interface StatsDelta {
  add?: Record<string, number>;
  set?: Record<string, number>;
}

export interface CounterValue {
  value: number;
  updatedAt: number;
}

const NAME = /^[a-z0-9_.]{1,64}$/;
const MAX_ENTRIES = 64;

/** Drops what a caller must not write: unknown shapes, odd names, non-integers, negative increments. */
export function sanitizeDelta(delta: unknown): Required<StatsDelta> {
  const out: Required<StatsDelta> = { add: {}, set: {} };
  if (typeof delta !== "object" || delta === null) return out;
  for (const kind of ["add", "set"] as const) {
    const entries = (delta as StatsDelta)[kind];
    if (typeof entries !== "object" || entries === null) continue;
    for (const [name, value] of Object.entries(entries).slice(0, MAX_ENTRIES)) {
      if (!NAME.test(name) || typeof value !== "number" || !Number.isSafeInteger(value)) continue;
      if (kind === "add" && value <= 0) continue;
      out[kind][name] = value;
    }
  }
  return out;
}

export function isEmptyDelta(delta: StatsDelta | undefined): boolean {
  return !delta || (Object.keys(delta.add ?? {}).length === 0 && Object.keys(delta.set ?? {}).length === 0);
}

export class CounterTable {
  constructor(private readonly sql: Sql) {
    sql.run(`CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL, updated_at INTEGER NOT NULL)`);
  }

  apply(delta: unknown, now: number): void {
    const { add, set } = sanitizeDelta(delta);
    if (Object.keys(add).length + Object.keys(set).length > 0) this.ensureSince(now);
    for (const [name, n] of Object.entries(add)) {
      this.sql.run(
        `INSERT INTO counters (name, value, updated_at) VALUES (?, ?, ?) ON CONFLICT(name) DO UPDATE SET value = value + excluded.value, updated_at = excluded.updated_at`,
        name,
        n,
        now,
      );
    }
    for (const [name, v] of Object.entries(set)) {
      this.sql.run(
        `INSERT INTO counters (name, value, updated_at) VALUES (?, ?, ?) ON CONFLICT(name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`,
        name,
        v,
        now,
      );
    }
  }

  read(): Record<string, CounterValue> {
    const out: Record<string, CounterValue> = {};
    for (const row of this.sql.all<{ name: string; value: number; updated_at: number }>(`SELECT name, value, updated_at FROM counters`)) {
      out[row.name] = { value: row.value, updatedAt: row.updated_at };
    }
    return out;
  }

  /** When counting began (the first counted event), or null before any. */
  since(): number | null {
    return this.sql.one<{ value: number }>(`SELECT value FROM counters WHERE name = 'meta.counting_since'`)?.value ?? null;
  }

  private ensureSince(now: number): void {
    this.sql.run(`INSERT INTO counters (name, value, updated_at) VALUES ('meta.counting_since', ?, ?) ON CONFLICT(name) DO NOTHING`, now, now);
  }
}

/** Every counter's name, in one place (docs/deploy.md explains each). */
export const STAT = {
  /** A Cloudflare call our budget held back (nothing sent), by priority. */
  budgetRefused: (priority: "user" | "cleanup" | "poll") => `budget.refused.${priority}`,
  /** A call that could not reach the ApiBudget object at all (nothing sent). */
  budgetUnavailable: "budget.unavailable",
  /** Cloudflare answered 429: the whole budget was blocked for its retry-after. */
  rateLimited: "cloudflare.rate_limited",
  /** A Cloudflare call that failed: 5xx, 4xx other than 404/429, or no answer (timeout, connection). */
  cloudflareFailed: (kind: "server" | "client" | "unreachable") => `cloudflare.failed.${kind}`,
  sweepRuns: "sweep.runs",
  sweepFailedRuns: "sweep.failed_runs",
  sweepInputsDeleted: "sweep.inputs_deleted",
  sweepOutputsDeleted: "sweep.outputs_deleted",
  sweepDeleteFailures: "sweep.delete_failures",
  sweepLastChecked: "sweep.last.checked",
  sweepLastDeleted: "sweep.last.deleted",
  sweepLastFailed: "sweep.last.failed",
  /** A webhook's outcome at POST /api/webhooks/cloudflare-stream. */
  webhook: (outcome: WebhookOutcome) => `webhooks.${outcome}`,
} as const;

export type WebhookOutcome = "accepted" | "test" | "unauthorized" | "invalid_payload" | "unknown_input" | "disabled" | "failed";
