import { clock } from "../clock";
import { fail, type Failure, type Result } from "../http/errors";
import { StreamMeta } from "./context";
import { startMessage } from "./device";
import { CREATE_WATCHDOG_TIMER, type CreateInput } from "./lifecycle";
import type { StreamParts } from "./parts";
import { send } from "./sockets";
import { deriveStatus } from "./status";
import type { StreamRecord } from "./store";
import type { StreamSnapshot } from "./views";
import { WATCH_URL_KEY } from "./watch-view";

const CREATE_WATCHDOG_MS = 60_000;

/**
 * Making the stream (its row, then its live input through lifecycle.ts) and apps joining it. The create in
 * flight is kept so that concurrent callers wait for it instead of repeating it, and so that nothing sees a
 * half-made stream; if the instance dies mid-create, the `create-watchdog` timer gives the stream up.
 */
export class StreamCreation {
  /** The create in flight (memory only: a wake finds the stream `initializing` and the watchdog settles it). */
  inFlight: Promise<Failure | null> | null = null;

  constructor(private readonly p: StreamParts) {}

  /** Creates the stream and its live input; idempotent for the same streamId. */
  async create(input: CreateInput): Promise<Result<{ snapshot: StreamSnapshot }>> {
    const { s, presence, participation, shutdown, sync, device, views, lifecycle, publisher } = this.p;
    if (this.inFlight) await this.inFlight;
    const existing = s.store.get();
    if (existing) return this.joinExisting(existing, input.packageName);

    const now = clock.now();
    const initial = deriveStatus({ phase: "initializing", ingestState: "idle", everConnected: false, device: "ok", deviceDetail: null, inputError: null });
    s.store.insert({
      streamId: input.streamId,
      userId: input.userId,
      createdBy: input.packageName,
      phase: "initializing",
      ...initial,
      liveInputUid: null,
      ingestProtocol: input.ingestProtocol,
      ingest: null,
      ingestState: "idle",
      everConnected: false,
      device: "ok",
      deviceDetail: null,
      inputError: null,
      recording: input.recording,
      deleteRecordingAfterDays: input.deleteRecordingAfterDays,
      createdAt: now,
      updatedAt: now,
      stoppedAt: null,
    });
    s.store.addParticipant(input.packageName, now);
    if (input.watchUrl) new StreamMeta(s.sql).set(WATCH_URL_KEY, input.watchUrl);
    // If this object dies mid-create, the watchdog cleans up what Cloudflare may hold.
    s.schedule.set(CREATE_WATCHDOG_TIMER, now + CREATE_WATCHDOG_MS);
    // Marked in flight before the first await, so nothing interleaving sees a half-made stream.
    this.inFlight = s.schedule.arm().then(() => lifecycle.createLiveInput(input));
    const failure = await this.inFlight.finally(() => {
      this.inFlight = null;
    });
    if (failure) {
      shutdown.wipe();
      await s.schedule.arm();
      return failure;
    }
    s.schedule.cancel(CREATE_WATCHDOG_TIMER);
    presence.hold(input.packageName, clock.now());
    participation.joined(input.packageName, now);
    presence.audit(clock.now());
    publisher.refresh();
    sync.reschedule(clock.now());
    // The app's list of streams learns of it before the start answers (read-your-writes for GET /api/streams):
    // one call to the app's own object, already warm from the key check, made alongside the alarm write.
    await Promise.all([s.schedule.arm(), participation.flush()]);
    // A device that connected during creation gets its credentials now.
    const record = s.store.get()!;
    for (const ws of device.sockets()) send(ws, startMessage(record));
    return { ok: true, snapshot: views.snapshot(record) };
  }

  /** An app joins a running stream. Fails with STREAM_ENDED when it is stopping or gone. */
  async join(packageName: string, watchUrl: string | null): Promise<Result<{ snapshot: StreamSnapshot }>> {
    if (this.inFlight) await this.inFlight;
    const record = this.p.s.store.get();
    if (!record) return fail(404, "STREAM_ENDED", "Stream does not exist");
    if (watchUrl) new StreamMeta(this.p.s.sql).set(WATCH_URL_KEY, watchUrl);
    return this.joinExisting(record, packageName);
  }

  private async joinExisting(record: StreamRecord, packageName: string): Promise<Result<{ snapshot: StreamSnapshot }>> {
    const { s, presence, participation, publisher, views } = this.p;
    if (record.phase !== "running") return fail(409, "STREAM_ENDED", `Stream is ${record.phase}`);
    const now = clock.now();
    const joined = s.store.addParticipant(packageName, now);
    if (joined) participation.joined(packageName, now);
    if (!presence.isViewing(packageName)) presence.hold(packageName, now);
    presence.evaluate(now);
    publisher.pushIfChanged();
    await Promise.all([s.schedule.arm(), joined ? participation.flush() : null]);
    return { ok: true, snapshot: views.snapshot(record) };
  }

  /** The `create-watchdog` timer: a stream still `initializing` when it fires is given up, unless its create still runs. */
  async watchdog(record: StreamRecord, now: number): Promise<void> {
    const { s, tombstones, shutdown } = this.p;
    if (record.phase !== "initializing") return;
    if (this.inFlight) {
      // Still in flight (a slow Cloudflare): look again later rather than drop the watchdog.
      s.schedule.set(CREATE_WATCHDOG_TIMER, now + CREATE_WATCHDOG_MS);
      return;
    }
    // The create died with a previous instance: give the stream up, and let a tombstone delete
    // any input Cloudflare made (or still makes) for it.
    tombstones.add({ kind: "live_input", streamId: record.streamId });
    shutdown.wipe();
    await tombstones.check(() => this.p.claims());
  }
}
