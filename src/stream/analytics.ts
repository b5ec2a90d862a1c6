import { clock } from "../clock";
import { advance, end, initialState, observe, recordHit, report, sampleLiveViewers, type AnalyticsReport, type AnalyticsState } from "./analytics-model";
import type { StreamContext } from "./context";
import type { Presence } from "./presence";

/**
 * The stream's analytics (analytics-model.ts), kept from what the object already sees — presence changes,
 * ingest state, its status polls and the watch-link hits routed to it — with no timer of its own: each
 * push of the status observes, and the presence audit (every PRESENCE_AUDIT_SECONDS) is one of them.
 * One JSON row (≤ ~20 KB, bounded by the model), written only when a value changes or a bucket begins;
 * viewer apps in their own table (bounded by the participants). Wiped with the stream's record, or kept
 * with its recordings' compact record until the last recording is gone (shutdown.ts, recordings.ts).
 */
export const ANALYTICS_TABLES = ["analytics", "analytics_apps"];

export class StreamAnalytics {
  /** The stored state, read once per instance. */
  private state: AnalyticsState | null = null;

  constructor(
    private readonly s: StreamContext,
    private readonly presence: Presence,
  ) {
    s.sql.run(`CREATE TABLE IF NOT EXISTS analytics (id INTEGER PRIMARY KEY CHECK (id = 1), state TEXT NOT NULL)`);
    s.sql.run(`CREATE TABLE IF NOT EXISTS analytics_apps (package_name TEXT PRIMARY KEY)`);
  }

  private load(now: number): AnalyticsState {
    if (this.state) return this.state;
    const row = this.s.sql.one<{ state: string }>(`SELECT state FROM analytics WHERE id = 1`);
    this.state = row ? (JSON.parse(row.state) as AnalyticsState) : initialState(this.s.store.get()?.createdAt ?? now);
    return this.state;
  }

  private save(state: AnalyticsState): void {
    this.s.sql.run(
      `INSERT INTO analytics (id, state) VALUES (1, ?) ON CONFLICT(id) DO UPDATE SET state = excluded.state`,
      JSON.stringify(state),
    );
  }

  /** The stream's current facts, observed (called on every status push; cheap when nothing changed). */
  observe(now = clock.now()): void {
    const record = this.s.store.get();
    if (!record) this.state = null;
    if (!record || record.phase === "initializing") return;
    const state = this.load(now);
    if (record.phase === "stopped") {
      if (end(state, record.stoppedAt ?? now)) this.save(state);
      return;
    }
    const running = record.phase === "running";
    const concurrent = running ? this.presence.viewerCount() : 0;
    const changed = state.concurrent !== concurrent;
    if (observe(state, now, concurrent, running && record.ingestState === "connected")) this.save(state);
    if (changed && concurrent > 0) {
      for (const app of this.presence.viewingApps()) this.s.sql.run(`INSERT OR IGNORE INTO analytics_apps (package_name) VALUES (?)`, app);
    }
  }

  /**
   * After an input poll that found the input connected: one read of Cloudflare's live viewer count
   * (budget `poll` priority). Kept only if the stream is still live on the same input after the await;
   * a refused or failed read is simply skipped (the next poll reads again).
   */
  async readLiveViewers(liveInputUid: string): Promise<void> {
    let n: number;
    try {
      n = await this.s.api.getLiveViewers(liveInputUid);
    } catch {
      return;
    }
    const record = this.s.store.get();
    if (record?.phase !== "running" || record.liveInputUid !== liveInputUid || record.ingestState !== "connected") return;
    this.sampleLiveViewers(n);
  }

  /** A reading of Cloudflare's live (human) viewer count, taken while the input is connected. */
  sampleLiveViewers(liveViewers: number, now = clock.now()): void {
    const state = this.load(now);
    sampleLiveViewers(state, now, liveViewers);
    this.save(state);
  }

  hit(country: string, visitor: string | null, now = clock.now()): void {
    const state = this.load(now);
    advance(state, now);
    recordHit(state, country, visitor);
    this.save(state);
  }

  report(now = clock.now()): AnalyticsReport & { uniqueViewers: number } {
    const uniqueViewers = this.s.sql.one<{ n: number }>(`SELECT COUNT(*) AS n FROM analytics_apps`)?.n ?? 0;
    return { ...report(this.load(now), now), uniqueViewers };
  }

  /** Whether any analytics are stored (after the stream's purge they are kept only with its recordings). */
  kept(): boolean {
    this.state = null;
    return this.s.sql.one(`SELECT 1 AS y FROM analytics WHERE id = 1`) !== null;
  }

  /** Storage was wiped: forget the cached state too. */
  forget(): void {
    this.state = null;
  }
}
