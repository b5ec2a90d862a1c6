import { toCloudflareError, type IngestState, type RemoteOutput } from "../cloudflare/stream-api";
import { errorBackoffMs, inputPollDelay, inputRetryDelay, isStale, outputsPollDelay, staleAt, type PollSituation } from "../sync/poll-policy";
import { StreamMeta, type StreamContext } from "./context";
import { clock } from "../clock";

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
  /** Taken before the outputs are listed, handed back to applyRemoteOutputs (Outputs.flagMark). */
  outputFlagsMark(): number;
  applyRemoteOutputs(outputs: RemoteOutput[], flagMark: number): void;
  /** A read failed: knowledge may just have gone stale, so viewers may need telling. */
  readFailed?(): void;
  /** An input read found the input connected (analytics read the live viewer count then). */
  inputLive?(liveInputUid: string): Promise<void>;
}

export class StatusSync {
  private readonly meta: StreamMeta;
  /** Consecutive failed reads, for backoff (in memory: a restart simply starts the backoff over). */
  private readonly failures = { input: 0, outputs: 0 };

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

  async pollInput(): Promise<void> {
    const webhooksBefore = this.meta.get("webhookCount");
    let live: string | null = null;
    await this.poll(INPUT_POLL_TIMER, "input", (uid) => this.s.api.getIngestState(uid, "poll"), (state) => {
      this.meta.set("lastInputSyncAt", String(clock.now()));
      // A webhook applied while we were reading is newer than what we read: keep it.
      if (this.meta.get("webhookCount") !== webhooksBefore) return;
      // A change the webhooks did not report: they are not arriving (or lost one), so poll at the
      // no-webhook cadence until the next one arrives. A webhook merely slower than this read costs the same.
      const wasConnected = this.s.store.get()?.ingestState === "connected";
      if ((state === "connected") !== wasConnected) this.meta.set("webhookSeenAt", null);
      this.hooks.applyIngest(state);
      if (state === "connected") live = this.s.store.get()?.liveInputUid ?? null;
    });
    // Piggy-backed on this poll: no call of its own cadence (docs/api.md, analytics).
    if (live !== null) await this.hooks.inputLive?.(live);
  }

  async pollOutputs(): Promise<void> {
    let flagMark = 0;
    const read = (uid: string) => {
      flagMark = this.hooks.outputFlagsMark();
      return this.s.api.listOutputs(uid, "poll");
    };
    await this.poll(OUTPUTS_POLL_TIMER, "outputs", read, (outputs) => this.hooks.applyRemoteOutputs(outputs, flagMark));
  }

  /**
   * One read of Cloudflare for `timer`: on failure, back off (or wait out the budget's deferral);
   * on success, apply the result only if the stream is still the one we read for (check-and-set
   * around the await), then plan the next reads.
   */
  private async poll<T>(timer: string, kind: "input" | "outputs", read: (liveInputUid: string) => Promise<T>, apply: (value: T) => void): Promise<void> {
    const before = this.s.store.get();
    if (!before || before.phase !== "running" || !before.liveInputUid) return;
    let value: T;
    try {
      value = await read(before.liveInputUid);
    } catch (error) {
      const cf = toCloudflareError(error);
      const now = clock.now();
      if (cf.budgetDeferralMs !== undefined) {
        // Our budget held the read back: nothing failed, so no backoff and webhooks still vouch.
        this.s.schedule.set(timer, now + cf.budgetDeferralMs);
      } else {
        const failures = (this.failures[kind] += 1);
        const backoff = errorBackoffMs(failures, cf.retryAfter);
        this.s.schedule.set(timer, now + (kind === "input" ? inputRetryDelay(backoff, cf.retryAfter, this.staleAt(now), now) : backoff));
      }
      // Knowledge may have gone stale meanwhile (or just now): tell viewers if what they see changed.
      if (kind === "input") this.hooks.readFailed?.();
      return;
    }
    const after = this.s.store.get();
    if (!after || after.phase !== "running" || after.liveInputUid !== before.liveInputUid) return;
    this.failures[kind] = 0;
    apply(value);
    this.s.schedule.cancel(timer);
    this.reschedule(clock.now());
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
    return isStale(this.hooks.situation(now), this.lastInputSyncAt());
  }

  private staleAt(now: number): number | null {
    return staleAt(this.hooks.situation(now), this.lastInputSyncAt());
  }

  private lastInputSyncAt(): number | null {
    const last = this.meta.get("lastInputSyncAt");
    return last === null ? null : Number(last);
  }

  /** The last input read failed (in memory, like the backoff). */
  readsFailing(): boolean {
    return this.failures.input > 0;
  }

  /** A webhook arrived for this stream; returns false when it is older than one already applied. */
  acceptWebhook(eventAt: number, now: number): boolean {
    const last = Number(this.meta.get("lastWebhookEventAt") ?? "0");
    if (eventAt < last) return false;
    this.meta.set("lastWebhookEventAt", String(eventAt));
    this.meta.set("webhookSeenAt", String(now));
    this.meta.set("webhookCount", String(Number(this.meta.get("webhookCount") ?? "0") + 1));
    // A webhook is as good as a successful read.
    this.meta.set("lastInputSyncAt", String(now));
    return true;
  }

  /** A webhook has arrived since a read last caught a change they missed (see pollInput). */
  webhooksSeen(): boolean {
    return this.meta.get("webhookSeenAt") !== null;
  }
}
