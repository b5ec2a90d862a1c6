import { clock } from "../clock";
import { ANALYTICS_TABLES } from "./analytics";
import { forgetInputStream } from "../cloudflare/live-input-index";
import { StreamMeta, type StreamContext } from "./context";
import type { DeviceChannel } from "./device";
import { CLEANUP_TIMER } from "./lifecycle";
import type { Outputs } from "./outputs";
import type { ParticipationOutbox } from "./participation-outbox";
import type { Presence } from "./presence";
import type { RealtimeCalls } from "./realtime-calls";
import { TABLES as ROOM_TABLES } from "./realtime-room";
import type { StatusPublisher } from "./publisher";
import { closeQuietly } from "./sockets";
import { deriveStatus } from "./status";
import type { StreamRecord } from "./store";
import { TOMBSTONE_TIMER } from "./tombstones";
import { RECORDING_TIMERS, type Recordings } from "./recordings";

/**
 * Ending a stream: stop the glasses, delete every Cloudflare resource (outputs first, then the live
 * input), release every ledger slot, tell the user's index, close the sockets; later, purge the
 * storage. The stop is resumable: its cleanup timer is armed before the first Cloudflare call, so a
 * crash at any point resumes it from the alarm, with backoff, until Cloudflare confirms.
 */
export const PURGE_TIMER = "purge";
export const NOTIFY_USER_TIMER = "notify-user";
const STOPPED_RETENTION_MS = 24 * 3_600_000;
/** Tables emptied by a wipe. Tombstones are kept: they outlive the stream they watch for. */
const STREAM_TABLES = ["stream", "participants", "join_holds", "tickets", "meta", "outputs", "idempotent_adds", "ledger_outbox", "participation_outbox", ...ROOM_TABLES];

export class Shutdown {
  private readonly meta: StreamMeta;
  private stopping: Promise<void> | null = null;

  constructor(
    private readonly s: StreamContext,
    private readonly parts: {
      device: DeviceChannel;
      presence: Presence;
      outputs: Outputs;
      publisher: StatusPublisher;
      participation: ParticipationOutbox;
      room: RealtimeCalls;
      recordings: Recordings;
      runningTimers: string[];
    },
  ) {
    this.meta = new StreamMeta(s.sql);
  }

  /** Stops the stream; concurrent callers share one stop. */
  stop(reason: string): Promise<void> {
    this.stopping ??= this.runStop(reason).finally(() => {
      this.stopping = null;
    });
    return this.stopping;
  }

  private async runStop(reason: string): Promise<void> {
    const record = this.s.store.get();
    if (!record || record.phase === "stopped") return;
    const { device, presence, outputs, publisher } = this.parts;
    if (record.phase !== "stopping") {
      this.meta.set("stopReason", reason);
      this.s.store.update({ phase: "stopping" });
      publisher.refresh();
      device.sendStop(record.streamId);
      presence.clearAll();
      for (const name of this.parts.runningTimers) this.s.schedule.cancel(name);
    }
    // Armed before the Cloudflare calls: if this object dies mid-cleanup, the stop resumes from the alarm
    // one backoff step later (5 s at first). While this instance lives, that alarm joins the stop in
    // flight (`stop` shares one promise), so a slow Cloudflare never gets a second, concurrent cleanup.
    const attempts = Number(this.meta.get("stopAttempts") ?? "0");
    this.meta.set("stopAttempts", String(attempts + 1));
    const retryIn = Math.min(5 * 60_000, 5_000 * 2 ** attempts) * (0.8 + Math.random() * 0.4);
    this.s.schedule.set(CLEANUP_TIMER, clock.now() + retryIn);
    await this.s.schedule.arm();
    // Never delete the input before its recordings are accounted for: the settle is armed (durable) first.
    await this.parts.recordings.beforeInputDelete(record);
    try {
      // The room's SFU sessions first (their tracks force-closed): a stopped stream leaves none behind.
      if (!(await this.parts.room.closeAll())) throw new Error("some realtime sessions are not closed yet");
      if (record.liveInputUid) await this.s.api.deleteLiveInputWithOutputs(record.liveInputUid);
    } catch (error) {
      // Keep `stopping`; the cleanup timer retries with backoff until Cloudflare confirms the deletion.
      console.error("stream cleanup failed; will retry", error instanceof Error ? error.message : error);
      this.s.schedule.set(CLEANUP_TIMER, clock.now() + retryIn);
      await this.s.schedule.arm();
      return;
    }
    this.clearTimersExceptTombstones();
    // A stopped stream stays readable for a day, then its storage is emptied.
    this.s.schedule.set(PURGE_TIMER, clock.now() + STOPPED_RETENTION_MS);
    const stoppedAt = clock.now();
    this.s.store.update({ phase: "stopped", ingest: null, ingestState: "idle", stoppedAt });
    this.parts.recordings.ended(this.s.store.get()!);
    // Each participant's list of streams keeps it as stopped, until the snapshot is purged.
    this.parts.participation.ended(stoppedAt);
    await outputs.releaseAll();
    const derived = deriveStatus({ ...this.s.store.get()!, phase: "stopped" });
    this.s.store.update({ ...derived, message: `${derived.message}: ${this.meta.get("stopReason") ?? reason}` });
    publisher.pushIfChanged();
    for (const ws of this.s.ctx.getWebSockets()) closeQuietly(ws, 1000, "Stream stopped");
    await this.s.schedule.arm();
    await Promise.all([this.notifyUserStreamEnded(record), this.parts.participation.flush()]);
    // The input is gone: its webhook index entry is no longer needed (the sweep reads the meta).
    if (record.liveInputUid) {
      await forgetInputStream(this.s.env, record.liveInputUid).catch((error: unknown) => console.error("could not drop the input index entry", error instanceof Error ? error.message : error));
    }
  }

  /** Tells the user's index this stream is over; retried from the alarm until it lands. */
  async notifyUserStreamEnded(record: StreamRecord): Promise<void> {
    try {
      await this.s.env.USERS.getByName(record.userId).streamEnded(record.streamId);
    } catch (error) {
      console.error("could not release the user's stream; will retry", error instanceof Error ? error.message : error);
      this.s.schedule.set(NOTIFY_USER_TIMER, clock.now() + 30_000);
      await this.s.schedule.arm();
    }
  }

  /** Empties a long-stopped stream's storage, once its ledger changes have been delivered. */
  async purge(): Promise<void> {
    await this.parts.outputs.flushLedger();
    if (this.s.sql.one(`SELECT 1 AS y FROM ledger_outbox LIMIT 1`)) {
      this.s.schedule.set(PURGE_TIMER, clock.now() + 3_600_000);
      return;
    }
    this.wipe();
    // The compact record and the recordings outlive the stream until the last recording is deleted.
    this.parts.recordings.forgetIfDone();
  }

  /** Removes the stream's state (after a failed create, or when a stopped stream is purged). */
  wipe(): void {
    for (const table of STREAM_TABLES) this.s.sql.run(`DELETE FROM ${table}`);
    // The analytics live as long as the compact record of the recordings (recordings.ts forgetIfDone drops them then).
    if (!this.parts.recordings.owner()) for (const table of ANALYTICS_TABLES) this.s.sql.run(`DELETE FROM ${table}`);
    this.clearTimersExceptTombstones();
  }

  /** Tombstones and the recordings' timers outlive the stream they watch for. */
  private clearTimersExceptTombstones(): void {
    const keep = [TOMBSTONE_TIMER, ...RECORDING_TIMERS];
    this.s.sql.run(`DELETE FROM schedule WHERE name NOT IN (${keep.map(() => "?").join(", ")})`, ...keep);
  }
}
