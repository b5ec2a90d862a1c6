import { clock } from "../clock";
import { CloudflareCallError } from "../cloudflare/stream-api";
import type { StreamContext } from "./context";

/**
 * Tombstones: durable memory of a create whose answer was lost. A live input or output that Cloudflare
 * makes after we gave up on it (a timeout hides a request still being served) is owned by nothing, so
 * each ambiguous create leaves a tombstone that keeps looking for the late resource — live inputs by the
 * streamId in their `meta`, outputs by URL and key — and deletes whatever no row of ours claims. It looks
 * again with a growing interval (reconcile interval, doubling, at most 2 min) until the watch window
 * (ORPHAN_WATCH_MINUTES, 10 by default) has passed. Tombstones survive the stream's own wipe.
 */
export const TOMBSTONE_TIMER = "tombstones";
const MAX_CHECK_INTERVAL_MS = 120_000;

export type Tombstone =
  | { kind: "live_input"; streamId: string }
  | { kind: "output"; liveInputUid: string; server: string; streamKey: string };

interface TombstoneRow {
  id: number;
  kind: Tombstone["kind"];
  stream_id: string | null;
  live_input_uid: string | null;
  server: string | null;
  stream_key: string | null;
  asked_at: number;
  watch_until: number;
  checks: number;
}

/** What the stream currently claims, so a tombstone never deletes a resource in use. */
export interface Claims {
  /** The live input the stream uses (null when none, or while a create is in flight: then `busy`). */
  liveInputUid: string | null;
  /** Output uids our rows claim. */
  outputUids: Set<string>;
  /** URL+key pairs with an add in flight or a pending row: matching outputs are left for later. */
  busyOutputs: Set<string>;
  /** A live-input create is in flight: live-input tombstones wait. */
  creatingInput: boolean;
}

export const outputKey = (server: string, streamKey: string) => `${server}\n${streamKey}`;

export class Tombstones {
  constructor(private readonly s: StreamContext) {
    s.sql.run(`CREATE TABLE IF NOT EXISTS tombstones (
      id INTEGER PRIMARY KEY AUTOINCREMENT,
      kind TEXT NOT NULL,
      stream_id TEXT,
      live_input_uid TEXT,
      server TEXT,
      stream_key TEXT,
      asked_at INTEGER NOT NULL,
      watch_until INTEGER NOT NULL,
      checks INTEGER NOT NULL DEFAULT 0
    )`);
  }

  /** Records an ambiguous create and arms its first check. Call `schedule.arm()` afterwards. */
  add(tombstone: Tombstone): void {
    const now = clock.now();
    this.s.sql.run(
      `INSERT INTO tombstones (kind, stream_id, live_input_uid, server, stream_key, asked_at, watch_until) VALUES (?, ?, ?, ?, ?, ?, ?)`,
      tombstone.kind,
      tombstone.kind === "live_input" ? tombstone.streamId : null,
      tombstone.kind === "output" ? tombstone.liveInputUid : null,
      tombstone.kind === "output" ? tombstone.server : null,
      tombstone.kind === "output" ? tombstone.streamKey : null,
      now,
      now + this.s.config.orphanWatchMinutes * 60_000,
    );
    this.s.schedule.setEarliest(TOMBSTONE_TIMER, now + this.s.config.reconcileSeconds * 1000);
  }

  count(): number {
    return this.s.sql.one<{ n: number }>(`SELECT COUNT(*) AS n FROM tombstones`)!.n;
  }

  /**
   * One pass over every tombstone: deletes late resources nothing claims, drops tombstones whose window
   * has passed, and plans the next pass. A Cloudflare failure leaves the tombstone for the next pass.
   */
  async check(claims: () => Claims): Promise<void> {
    const rows = this.s.sql.all<TombstoneRow>(`SELECT * FROM tombstones ORDER BY id`);
    let liveInputs: Array<{ uid: string; streamId: string | null }> | null = null;
    for (const row of rows) {
      try {
        if (row.kind === "live_input") {
          if (claims().creatingInput) continue;
          liveInputs ??= await this.s.api.listOurLiveInputs();
          for (const input of liveInputs.filter((i) => i.streamId === row.stream_id)) {
            // Read the claim again after each await: the stream may have adopted an input meanwhile.
            if (input.uid === claims().liveInputUid) continue;
            await this.s.api.deleteLiveInputWithOutputs(input.uid);
            console.log("deleted a live input created after its create was given up", JSON.stringify({ streamId: row.stream_id, uid: input.uid }));
          }
        } else {
          await this.checkOutputs(row, claims);
        }
      } catch (error) {
        if (!(error instanceof CloudflareCallError && error.upstreamStatus === 404)) {
          console.error("tombstone check failed; will look again", error instanceof Error ? error.message : error);
        }
      }
      this.s.sql.run(`UPDATE tombstones SET checks = checks + 1 WHERE id = ?`, row.id);
    }
    const now = clock.now();
    this.s.sql.run(`DELETE FROM tombstones WHERE watch_until <= ?`, now);
    this.plan(now);
  }

  private async checkOutputs(row: TombstoneRow, claims: () => Claims): Promise<void> {
    const key = outputKey(row.server!, row.stream_key!);
    if (claims().busyOutputs.has(key)) return;
    let remote;
    try {
      remote = await this.s.api.listOutputs(row.live_input_uid!, "cleanup");
    } catch (error) {
      // The input is gone, and every output with it: nothing can turn up any more.
      if (error instanceof CloudflareCallError && error.upstreamStatus === 404) {
        this.s.sql.run(`DELETE FROM tombstones WHERE id = ?`, row.id);
        return;
      }
      throw error;
    }
    for (const output of remote) {
      const current = claims();
      if (outputKey(output.url, output.streamKey) !== key || current.outputUids.has(output.uid) || current.busyOutputs.has(key)) continue;
      await this.s.api.deleteOutput(row.live_input_uid!, output.uid, "cleanup");
      console.log("deleted an output created after its create was given up", JSON.stringify({ liveInputUid: row.live_input_uid, uid: output.uid }));
    }
  }

  /** The next pass: the reconcile interval, doubling with each pass, capped, never past the window. */
  private plan(now: number): void {
    const next = this.s.sql.one<{ checks: number; watch_until: number }>(
      `SELECT MIN(checks) AS checks, MIN(watch_until) AS watch_until FROM tombstones`,
    );
    if (!next || next.watch_until === null) {
      this.s.schedule.cancel(TOMBSTONE_TIMER);
      return;
    }
    const interval = Math.min(MAX_CHECK_INTERVAL_MS, this.s.config.reconcileSeconds * 1000 * 2 ** next.checks);
    this.s.schedule.set(TOMBSTONE_TIMER, Math.min(now + interval, Math.max(now, next.watch_until)));
  }
}
