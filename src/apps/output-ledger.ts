import type { Sql } from "../stream/sql";

/**
 * The per-app output ledger: the cap of 10 outputs per app spans every stream, so it lives in the
 * app's own object. A stream reserves a slot before calling Cloudflare, commits after, releases on
 * failure. Reservations left pending by a crash are reconciled against the stream (see AppAccount).
 */
export const MAX_OUTPUTS_PER_APP = 10;
export const PENDING_RECONCILE_AFTER_MS = 2 * 60_000;

export interface LedgerEntry {
  output_id: string;
  stream_id: string;
  state: "pending" | "committed";
  updated_at: number;
}

export class OutputLedger {
  constructor(private readonly sql: Sql) {
    sql.run(`CREATE TABLE IF NOT EXISTS output_ledger (
      output_id TEXT PRIMARY KEY,
      stream_id TEXT NOT NULL,
      state TEXT NOT NULL,
      updated_at INTEGER NOT NULL
    )`);
  }

  count(): number {
    return this.sql.one<{ n: number }>(`SELECT COUNT(*) AS n FROM output_ledger`)!.n;
  }

  /** Reserves a slot; false when the app already holds its maximum. Synchronous: no interleaving. */
  reserve(streamId: string, outputId: string, now: number): boolean {
    if (this.sql.one(`SELECT 1 AS y FROM output_ledger WHERE output_id = ?`, outputId)) return true;
    if (this.count() >= MAX_OUTPUTS_PER_APP) return false;
    this.sql.run(
      `INSERT INTO output_ledger (output_id, stream_id, state, updated_at) VALUES (?, ?, 'pending', ?)`,
      outputId,
      streamId,
      now,
    );
    return true;
  }

  commit(outputId: string, now: number): void {
    this.sql.run(`UPDATE output_ledger SET state = 'committed', updated_at = ? WHERE output_id = ?`, now, outputId);
  }

  release(outputId: string): void {
    this.sql.run(`DELETE FROM output_ledger WHERE output_id = ?`, outputId);
  }

  stalePending(now: number): LedgerEntry[] {
    return this.sql.all<LedgerEntry>(
      `SELECT * FROM output_ledger WHERE state = 'pending' AND updated_at <= ?`,
      now - PENDING_RECONCILE_AFTER_MS,
    );
  }

  oldestPendingAt(): number | null {
    return this.sql.one<{ t: number | null }>(`SELECT MIN(updated_at) AS t FROM output_ledger WHERE state = 'pending'`)?.t ?? null;
  }
}
