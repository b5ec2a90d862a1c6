import { clock } from "../clock";
import type { StreamContext } from "./context";

/**
 * Tells each participant app's account (AppAccount, apps/app-streams.ts) that it joined this stream and,
 * later, that the stream ended, so GET /api/streams can list an app's streams without scanning streams.
 * A transactional outbox like the ledger's: the entry is written in the same synchronous step as the
 * participation it reports, then delivered; what cannot be delivered now is retried from the alarm, and
 * an object that died first delivers on its next wake. Delivery is idempotent on the account's side.
 */
export const PARTICIPATION_OUTBOX_TIMER = "participation-outbox";
const RETRY_MS = 5_000;

interface Row {
  package_name: string;
  joined_at: number;
  ended_at: number | null;
}

export class ParticipationOutbox {
  private flushing: Promise<void> | null = null;

  constructor(private readonly s: StreamContext) {
    s.sql.run(`CREATE TABLE IF NOT EXISTS participation_outbox (
      package_name TEXT PRIMARY KEY,
      joined_at INTEGER NOT NULL,
      ended_at INTEGER
    )`);
  }

  joined(packageName: string, at: number): void {
    this.s.sql.run(
      `INSERT INTO participation_outbox (package_name, joined_at, ended_at) VALUES (?, ?, NULL)
       ON CONFLICT(package_name) DO NOTHING`,
      packageName,
      at,
    );
  }

  /** The stream stopped: every participant hears it (with its join time, in case that is still queued). */
  ended(at: number): void {
    this.s.sql.run(
      `INSERT INTO participation_outbox (package_name, joined_at, ended_at)
         SELECT package_name, joined_at, ? FROM participants WHERE true
       ON CONFLICT(package_name) DO UPDATE SET ended_at = excluded.ended_at`,
      at,
    );
  }

  isEmpty(): boolean {
    return this.s.sql.one(`SELECT 1 AS y FROM participation_outbox LIMIT 1`) === null;
  }

  /** Delivers what is queued; never throws (a failure is retried from the alarm). Concurrent calls share one run. */
  flush(): Promise<void> {
    this.flushing ??= this.deliver().finally(() => {
      this.flushing = null;
    });
    return this.flushing;
  }

  private async deliver(): Promise<void> {
    const record = this.s.store.get();
    if (!record) return;
    const pending = this.s.sql.all<Row>(`SELECT * FROM participation_outbox`);
    let failed = false;
    await Promise.all(
      pending.map(async (row) => {
        try {
          await this.s.env.APPS.getByName(row.package_name).recordStreams([
            { streamId: record.streamId, userId: record.userId, joinedAt: row.joined_at, endedAt: row.ended_at },
          ]);
          // Only what was delivered goes: an end queued meanwhile stays for the next run.
          this.s.sql.run(
            `DELETE FROM participation_outbox WHERE package_name = ? AND ended_at IS ?`,
            row.package_name,
            row.ended_at,
          );
        } catch (error) {
          failed = true;
          console.error("could not index the stream for its app; will retry", error instanceof Error ? error.message : error);
        }
      }),
    );
    if (failed) {
      this.s.schedule.setEarliest(PARTICIPATION_OUTBOX_TIMER, clock.now() + RETRY_MS);
      await this.s.schedule.arm().catch(() => undefined);
    }
  }
}
