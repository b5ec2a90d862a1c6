import { ANALYTICS_TABLES } from "./analytics";
import { clock } from "../clock";
import { CloudflareCallError } from "../cloudflare/stream-api";
import { deleteVideo, getVideo, listInputVideos, listVideosByCreator, type RemoteVideo } from "../cloudflare/video-api";
import type { StreamContext } from "./context";
import { RecordingStore, toView, type RecordingView } from "./recording-store";
import type { StreamRecord } from "./store";

/**
 * Recordings, never orphaned (issue 14). Every live input we create has `defaultCreator` = the streamId, so
 * Cloudflare can always tell us which videos are this stream's, even after the input is gone or we crashed.
 *
 * - After each ingest connect a `recordings-capture` timer (durable, in the same write as the connect) lists
 *   the input's videos and records their uids; one call per connect.
 * - Before the stop deletes the input, the settle timer is armed (durable) and one last capture is made;
 *   whatever that misses (a crash, a failed call) the settle finds by creator.
 * - `recordings-settle` lists the stream's videos by creator (one call covers them all) at `poll` priority,
 *   30 s after the end, then 1, 2, 4, 8, 15 and 30 minutes later, until each is ready or failed; what is still
 *   unsettled after the last pass is marked `error`. The ready webhook settles a recording at once.
 * - `recordings-expire` deletes each recording at its expiry (ready + RECORDING_RETENTION_DAYS, or the client's
 *   deleteRecordingAfterDays if sooner) and finishes deletes a crash or a lost answer interrupted.
 * These timers and the two recording tables survive the stream's purge; when the last recording is gone
 * (and the stream purged) they are emptied too.
 */
export const RECORDING_CAPTURE_TIMER = "recordings-capture";
export const RECORDING_SETTLE_TIMER = "recordings-settle";
export const RECORDING_EXPIRE_TIMER = "recordings-expire";
export const RECORDING_TIMERS = [RECORDING_CAPTURE_TIMER, RECORDING_SETTLE_TIMER, RECORDING_EXPIRE_TIMER];

/** Gaps between settle passes, from the end: about an hour in all, 7 calls at most. */
export const SETTLE_DELAYS_MS = [30_000, 60_000, 120_000, 240_000, 480_000, 900_000, 1_800_000];
const CAPTURE_DELAY_MS = 2_000;
const DAY_MS = 86_400_000;

/**
 * What the live input asks Cloudflare: never unbounded (a client's `null` is replaced by our retention) and
 * within Cloudflare's 30–1096. Only a backstop: our own delete runs at the retention, which may be sooner.
 */
export function cloudflareDeleteAfterDays(requested: number | null, retentionDays: number): number {
  return Math.min(1096, Math.max(30, requested ?? retentionDays));
}

export class Recordings {
  readonly store: RecordingStore;

  constructor(private readonly s: StreamContext) {
    this.store = new RecordingStore(s.sql);
  }

  /** Whether this stream's input records at all (WebRTC inputs and `mode: off` make no videos). */
  static records(record: StreamRecord): boolean {
    return record.recording.mode === "automatic";
  }

  /** An ingest connect: learn the new video's uid shortly (the video exists from the connect on). */
  scheduleCapture(now: number): void {
    const record = this.s.store.get();
    if (!record || !Recordings.records(record)) return;
    this.rememberOwner(record);
    this.s.schedule.setEarliest(RECORDING_CAPTURE_TIMER, now + CAPTURE_DELAY_MS);
  }

  /** `recordings-capture`: the input's videos, recorded. A failure is retried by the schedule's backoff. */
  async capture(): Promise<void> {
    const record = this.s.store.get();
    if (!record?.liveInputUid || record.phase === "stopped" || !Recordings.records(record)) return;
    try {
      this.apply(await listInputVideos(this.s.api, record.liveInputUid, "poll"));
    } catch (error) {
      // The input is gone (a stop): the settle finds its videos by creator.
      if (error instanceof CloudflareCallError && error.upstreamStatus === 404) return;
      throw error;
    }
  }

  /**
   * Called by the stop before it deletes the live input: the settle is armed first (durable: a crash from here
   * on still settles every recording by creator), then one last capture from the input's listing.
   */
  async beforeInputDelete(record: StreamRecord): Promise<void> {
    if (!Recordings.records(record)) return;
    this.rememberOwner(record);
    if (this.s.schedule.dueAt(RECORDING_SETTLE_TIMER) === null) this.s.schedule.set(RECORDING_SETTLE_TIMER, clock.now() + SETTLE_DELAYS_MS[0]!);
    await this.s.schedule.arm();
    if (!record.liveInputUid) return;
    try {
      this.apply(await listInputVideos(this.s.api, record.liveInputUid, "cleanup"));
    } catch (error) {
      console.error("could not list the input's recordings before deleting it; the settle finds them by creator", error instanceof Error ? error.message : error);
    }
  }

  /** The stream's final facts for the compact record (stopped time, participants). */
  ended(record: StreamRecord): void {
    if (Recordings.records(record) || this.store.owner()) this.rememberOwner(record);
  }

  /** `recordings-settle`: one listing by creator, applied; the next pass planned, or the unsettled failed. */
  async settle(): Promise<void> {
    const owner = this.store.owner();
    if (!owner) return;
    const pass = this.store.countSettlePass();
    const listed = await listVideosByCreator(this.s.api, owner.streamId, "poll");
    this.apply(listed);
    // A recording we know that Cloudflare no longer lists: read it once; gone means deleted.
    const seen = new Set(listed.map((v) => v.uid));
    for (const row of this.store.all()) {
      if (seen.has(row.recording_id) || (row.state !== "recording" && row.state !== "processing")) continue;
      const video = await getVideo(this.s.api, row.recording_id, "poll");
      if (video) this.apply([video]);
      else this.store.setState(row.recording_id, "deleted", "Cloudflare no longer has this recording", clock.now());
    }
    const now = clock.now();
    if (this.store.unsettledCount() === 0) this.s.schedule.cancel(RECORDING_SETTLE_TIMER);
    else if (pass < SETTLE_DELAYS_MS.length) this.s.schedule.set(RECORDING_SETTLE_TIMER, now + SETTLE_DELAYS_MS[pass]!);
    else {
      for (const row of this.store.all()) {
        if (row.state === "recording" || row.state === "processing") {
          this.store.setState(row.recording_id, "error", "The recording did not become ready", now, now + this.retentionDays() * DAY_MS);
        }
      }
      this.s.schedule.cancel(RECORDING_SETTLE_TIMER);
    }
    this.planExpiry();
  }

  /** The signed ready/error webhook (already verified): applied if the video is this stream's. */
  applyWebhook(video: RemoteVideo): { applied: boolean; reason?: string } {
    const owner = this.store.owner();
    const streamId = owner?.streamId ?? this.s.store.get()?.streamId;
    if (!streamId || video.creator !== streamId) return { applied: false, reason: "not a recording of this stream" };
    this.apply([video]);
    if (this.store.unsettledCount() === 0) this.s.schedule.cancel(RECORDING_SETTLE_TIMER);
    return { applied: true };
  }

  /** `recordings-expire`: deletes what retention or a client's delete asks, finishing interrupted deletes. */
  async expire(): Promise<void> {
    let failed: unknown = null;
    for (const row of this.store.dueForDelete(clock.now())) {
      this.store.setState(row.recording_id, "deleting");
      try {
        await deleteVideo(this.s.api, row.recording_id, "cleanup");
        this.store.setState(row.recording_id, "deleted");
      } catch (error) {
        failed = error;
      }
    }
    this.planExpiry();
    this.forgetIfDone();
    if (failed) throw failed; // the schedule's backoff retries the rest
  }

  /** DELETE .../recordings/:id (rights checked by the caller). `pending`: Cloudflare has not confirmed yet. */
  async delete(id: string): Promise<{ found: boolean; pending: boolean }> {
    const row = this.store.get(id);
    if (!row) return { found: false, pending: false };
    if (row.state === "deleted") return { found: true, pending: false };
    // Durable before the call: a crash or a lost answer is finished by the expire timer.
    this.store.setState(id, "deleting");
    this.s.schedule.set(RECORDING_EXPIRE_TIMER, clock.now() + this.s.config.reconcileSeconds * 1000);
    await this.s.schedule.arm();
    try {
      await deleteVideo(this.s.api, id, "user");
    } catch (error) {
      console.error("recording delete not confirmed; will retry", error instanceof Error ? error.message : error);
      return { found: true, pending: true };
    }
    this.store.setState(id, "deleted");
    this.planExpiry();
    this.forgetIfDone();
    await this.s.schedule.arm();
    return { found: true, pending: false };
  }

  /** The leak sweep's question about one video naming this stream as creator (see StreamCoordinator.sweepRecording). */
  sweep(video: RemoteVideo): "keep" | "delete" {
    const record = this.s.store.get();
    if (!record && !this.store.owner()) return "delete";
    if (record && !this.store.owner()) this.rememberOwner(record);
    this.apply([video]);
    const row = this.store.get(video.uid);
    if (!row) return "keep";
    if (row.state === "deleted" || row.state === "deleting") return "delete";
    return row.expires_at !== null && row.expires_at <= clock.now() ? "delete" : "keep";
  }

  list(): RecordingView[] {
    return this.store.all().map(toView);
  }

  /** The newest ready recording, or null (the stream's view, managed_stream_status, the watch link). */
  latest(): RecordingView | null {
    const row = this.store.latestReady();
    return row ? toView(row) : null;
  }

  /** The stream the recordings belong to, while any is kept (also after the stream's purge). */
  owner() {
    return this.store.owner();
  }

  private apply(videos: RemoteVideo[]): void {
    const record = this.s.store.get();
    const owner = this.store.owner();
    const streamId = owner?.streamId ?? record?.streamId;
    const stoppedAt = record?.stoppedAt ?? owner?.stoppedAt ?? null;
    const days = this.retentionDays();
    for (const video of videos) {
      // Only this stream's: a video with another creator is not ours to keep or delete.
      if (video.creator !== null && video.creator !== streamId) continue;
      this.store.upsert(video, clock.now(), (readyAt) => readyAt + days * DAY_MS, stoppedAt);
    }
    this.planExpiry();
  }

  /** Our retention, or the client's deleteRecordingAfterDays if sooner. */
  private retentionDays(): number {
    const asked = this.store.owner()?.deleteAfterDays ?? this.s.store.get()?.deleteRecordingAfterDays ?? null;
    return Math.min(this.s.config.recordingRetentionDays, asked ?? Infinity);
  }

  private planExpiry(): void {
    const now = clock.now();
    const next = this.store.hasDeleting() ? now + this.s.config.reconcileSeconds * 1000 : this.store.nextExpiry();
    if (next === null) this.s.schedule.cancel(RECORDING_EXPIRE_TIMER);
    else this.s.schedule.set(RECORDING_EXPIRE_TIMER, Math.max(now, next));
  }

  private rememberOwner(record: StreamRecord): void {
    this.store.setOwner({
      streamId: record.streamId,
      userId: record.userId,
      createdBy: record.createdBy,
      participants: this.s.store.participants(),
      stoppedAt: record.stoppedAt,
      deleteAfterDays: record.deleteRecordingAfterDays,
    });
  }

  /** Once the stream is purged and every recording deleted, nothing of it is kept (also called by the purge). */
  forgetIfDone(): void {
    if (!this.s.store.get() && this.store.allGone() && this.s.schedule.dueAt(RECORDING_SETTLE_TIMER) === null) {
      this.store.clear();
      // The stream's analytics were kept with the compact record (shutdown.ts wipe): they go with it.
      for (const table of ANALYTICS_TABLES) this.s.sql.run(`DELETE FROM ${table}`);
      for (const name of RECORDING_TIMERS) this.s.schedule.cancel(name);
    }
  }
}
