import { toCloudflareError } from "../cloudflare/stream-api";
import type { StreamContext } from "./context";
import type { IngestState } from "./status";

/**
 * Keeps the stream's ingest state in step with Cloudflare by polling the live input. Cadence adapts:
 * fast until the glasses first connect (bounded), slow while anybody is connected to us, none otherwise.
 * Webhooks (when configured) apply the same change at once; polling keeps it true.
 */
export const POLL_TIMER = "poll";
export const FAST_POLL_MS = 2_000;
export const FAST_POLL_WINDOW_MS = 2 * 60_000;
export const SLOW_POLL_MS = 30_000;
const ERROR_BACKOFF_BASE_MS = 2_000;
const ERROR_BACKOFF_MAX_MS = 5 * 60_000;

export class IngestSync {
  private failures = 0;

  constructor(private readonly s: StreamContext) {}

  /** Reads the input's state; returns it, or null when the stream changed while we awaited. */
  async poll(now: number, hasClients: boolean): Promise<IngestState | null> {
    const before = this.s.store.get();
    if (!before || before.phase !== "running" || !before.liveInputUid) return null;
    let state: IngestState;
    try {
      state = await this.s.api.getIngestState(before.liveInputUid);
      this.failures = 0;
    } catch (error) {
      const cf = toCloudflareError(error);
      this.failures += 1;
      const backoff = Math.min(ERROR_BACKOFF_MAX_MS, ERROR_BACKOFF_BASE_MS * 2 ** (this.failures - 1));
      const delay = Math.max(backoff * (0.75 + Math.random() * 0.5), (cf.retryAfter ?? 0) * 1000);
      this.s.schedule.set(POLL_TIMER, Date.now() + delay);
      return null;
    }
    // Check-and-set: the stream may have been stopped (or the input replaced) while we awaited.
    const after = this.s.store.get();
    if (!after || after.phase !== "running" || after.liveInputUid !== before.liveInputUid) return null;
    this.scheduleNext(now, hasClients, state === "connected" || after.everConnected);
    return state;
  }

  scheduleNext(now: number, hasClients: boolean, everConnected: boolean): void {
    const record = this.s.store.get();
    if (!record || record.phase !== "running") {
      this.s.schedule.cancel(POLL_TIMER);
      return;
    }
    if (!everConnected && now - record.createdAt < FAST_POLL_WINDOW_MS) {
      this.s.schedule.set(POLL_TIMER, now + FAST_POLL_MS);
    } else if (hasClients || record.ingestState === "connected") {
      this.s.schedule.set(POLL_TIMER, now + SLOW_POLL_MS);
    } else {
      this.s.schedule.cancel(POLL_TIMER);
    }
  }
}
