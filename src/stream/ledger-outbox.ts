import { clock } from "../clock";
import type { StreamContext } from "./context";

/**
 * Transactional outbox for the per-app output ledger (AppAccount): a commit or release is written in
 * the same synchronous step as the output change that causes it, then delivered; what cannot be
 * delivered now is retried from the alarm. Delivery is idempotent on the ledger's side.
 */
export const LEDGER_OUTBOX_TIMER = "ledger-outbox";
const RETRY_MS = 5_000;

export class LedgerOutbox {
  constructor(private readonly s: StreamContext) {
    s.sql.run(`CREATE TABLE IF NOT EXISTS ledger_outbox (
      output_id TEXT PRIMARY KEY,
      package_name TEXT NOT NULL,
      op TEXT NOT NULL
    )`);
  }

  queue(outputId: string, packageName: string, op: "commit" | "release"): void {
    this.s.sql.run(
      `INSERT INTO ledger_outbox (output_id, package_name, op) VALUES (?, ?, ?)
       ON CONFLICT(output_id) DO UPDATE SET op = excluded.op`,
      outputId,
      packageName,
      op,
    );
  }

  isEmpty(): boolean {
    return this.s.sql.one(`SELECT 1 AS y FROM ledger_outbox LIMIT 1`) === null;
  }

  /** Delivers queued ledger changes; what cannot be delivered now is retried from the alarm. */
  async flush(): Promise<void> {
    const pending = this.s.sql.all<{ output_id: string; package_name: string; op: string }>(`SELECT * FROM ledger_outbox`);
    let failed = false;
    for (const entry of pending) {
      try {
        const app = this.s.env.APPS.getByName(entry.package_name);
        if (entry.op === "commit") await app.commitOutput(entry.output_id);
        else await app.releaseOutput(entry.output_id);
        this.s.sql.run(`DELETE FROM ledger_outbox WHERE output_id = ? AND op = ?`, entry.output_id, entry.op);
      } catch {
        failed = true;
      }
    }
    if (failed) {
      this.s.schedule.setEarliest(LEDGER_OUTBOX_TIMER, clock.now() + RETRY_MS);
      await this.s.schedule.arm();
    }
  }
}
