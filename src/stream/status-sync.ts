import { toCloudflareError, type IngestState, type RemoteOutput } from "../cloudflare/stream-api";
import { errorBackoffMs, inputPollDelay, isStale, outputsPollDelay, type PollSituation } from "../sync/poll-policy";
import { StreamMeta, type StreamContext } from "./context";

/**
 * Keeps the stream in step with Cloudflare: reads the live input and its outputs on the cadence of
 * the poll policy, through the shared API budget, with backoff on failure. Webhooks (applied by the
 * object directly) make changes fast; these polls keep the state true.
 */
export const INPUT_POLL_TIMER = "poll-input";
export const OUTPUTS_POLL_TIMER = "poll-outputs";
export const INGEST_STABLE_TIMER = "ingest-stable";
/** An output counts as streaming once the input has been connected this long (Livepeer-style debounce). */
export const INGEST_STABLE_MS = 3_000;

export interface SyncHooks {
  situation(now: number): PollSituation;
  applyIngest(state: IngestState): void;
  applyRemoteOutputs(outputs: RemoteOutput[]): void;
}

export class StatusSync {
  private readonly meta: StreamMeta;
  private inputFailures = 0;
  private outputFailures = 0;

  constructor(
    private readonly s: StreamContext,
    private readonly hooks: SyncHooks,
  ) {
    this.meta = new StreamMeta(s.sql);
  }

  /** Re-plans both polls after anything that changes the policy's inputs (clients, ingest, outputs). */
  reschedule(now: number): void {
    const situation = this.hooks.situation(now);
    this.plan(INPUT_POLL_TIMER, inputPollDelay(situation), now);
    this.plan(OUTPUTS_POLL_TIMER, outputsPollDelay(situation), now);
  }

  private plan(timer: string, delay: number | null, now: number): void {
    if (delay === null) {
      this.s.schedule.cancel(timer);
      return;
    }
    // Only ever bring a poll closer: a sooner poll (e.g. a backoff) is left alone unless it is later.
    this.s.schedule.setEarliest(timer, now + delay);
  }

  async pollInput(now: number): Promise<void> {
    const before = this.s.store.get();
    if (!before || before.phase !== "running" || !before.liveInputUid) return;
    let state: IngestState;
    try {
      state = await this.s.api.getIngestState(before.liveInputUid, "poll");
    } catch (error) {
      const cf = toCloudflareError(error);
      this.inputFailures += 1;
      this.s.schedule.set(INPUT_POLL_TIMER, Date.now() + (cf.budgetDeferralMs ?? errorBackoffMs(this.inputFailures, cf.retryAfter)));
      return;
    }
    // Check-and-set: the stream may have stopped, or its input changed, while we awaited.
    const after = this.s.store.get();
    if (!after || after.phase !== "running" || after.liveInputUid !== before.liveInputUid) return;
    this.inputFailures = 0;
    this.meta.set("lastInputSyncAt", String(Date.now()));
    this.hooks.applyIngest(state);
    this.s.schedule.cancel(INPUT_POLL_TIMER);
    this.reschedule(Date.now());
  }

  async pollOutputs(now: number): Promise<void> {
    const before = this.s.store.get();
    if (!before || before.phase !== "running" || !before.liveInputUid) return;
    let outputs: RemoteOutput[];
    try {
      outputs = await this.s.api.listOutputs(before.liveInputUid, "poll");
    } catch (error) {
      const cf = toCloudflareError(error);
      this.outputFailures += 1;
      this.s.schedule.set(OUTPUTS_POLL_TIMER, Date.now() + (cf.budgetDeferralMs ?? errorBackoffMs(this.outputFailures, cf.retryAfter)));
      return;
    }
    const after = this.s.store.get();
    if (!after || after.phase !== "running" || after.liveInputUid !== before.liveInputUid) return;
    this.outputFailures = 0;
    this.hooks.applyRemoteOutputs(outputs);
    this.s.schedule.cancel(OUTPUTS_POLL_TIMER);
    this.reschedule(Date.now());
    void now;
  }

  /** Records when ingest changed, for the output debounce, and arms the re-evaluation. */
  ingestChanged(state: IngestState, now: number): void {
    this.meta.set("ingestChangedAt", String(now));
    if (state === "connected") this.s.schedule.set(INGEST_STABLE_TIMER, now + INGEST_STABLE_MS);
    else this.s.schedule.cancel(INGEST_STABLE_TIMER);
  }

  ingestStable(connected: boolean, now: number): boolean {
    if (!connected) return false;
    const since = Number(this.meta.get("ingestChangedAt") ?? "0");
    return now - since >= INGEST_STABLE_MS;
  }

  stale(now: number): boolean {
    const last = this.meta.get("lastInputSyncAt");
    return isStale(this.hooks.situation(now), last === null ? null : Number(last));
  }

  /** A webhook arrived for this stream; returns false when it is older than one already applied. */
  acceptWebhook(eventAt: number, now: number): boolean {
    const last = Number(this.meta.get("lastWebhookEventAt") ?? "0");
    if (eventAt < last) return false;
    this.meta.set("lastWebhookEventAt", String(eventAt));
    this.meta.set("webhookSeenAt", String(now));
    // A webhook is as good as a successful read.
    this.meta.set("lastInputSyncAt", String(now));
    return true;
  }

  webhooksSeen(): boolean {
    return this.meta.get("webhookSeenAt") !== null;
  }
}
