import { DurableObject } from "cloudflare:workers";
import { streamApiFor } from "../budget/budgeted-api";
import { loadConfig } from "../config";
import type { Env } from "../env";
import { fail, type Failure, type Result } from "../http/errors";
import type { ProtocolError } from "../schemas/protocol";
import { InboundGuard } from "./inbound";
import { AppRequests } from "./app-requests";
import { StreamViews, type DeviceStreamInfo, type StreamSnapshot } from "./views";
import type { AdminStreamListItem } from "../schemas/responses";
import type { StreamContext } from "./context";
import { DeviceChannel, KEEPALIVE_TIMER, startMessage } from "./device";
import { INGEST_STABLE_TIMER, INPUT_POLL_TIMER, OUTPUTS_POLL_TIMER, StatusSync } from "./status-sync";
import { OUTPUT_RECONCILE_TIMER, Outputs, type AddedOutput, type OutputView, type Removal } from "./outputs";
import { LEDGER_OUTBOX_TIMER } from "./ledger-outbox";
import { PARTICIPATION_OUTBOX_TIMER, ParticipationOutbox } from "./participation-outbox";
import { StatusPublisher } from "./publisher";
import { CloudflareFacts, type WebhookEvent } from "./cloudflare-facts";
import { NOTIFY_USER_TIMER, PURGE_TIMER, Shutdown } from "./shutdown";
import { TOMBSTONE_TIMER, Tombstones, type Claims } from "./tombstones";
import { RECORDING_CAPTURE_TIMER, RECORDING_EXPIRE_TIMER, RECORDING_SETTLE_TIMER, Recordings } from "./recordings";
import type { RecordingView } from "./recording-store";
import type { RemoteVideo } from "../cloudflare/video-api";
import type { ParsedRtmpUrl } from "../outputs/rtmp-url";
import { CLEANUP_TIMER, CREATE_WATCHDOG_TIMER, Lifecycle, type CreateInput } from "./lifecycle";
import { GRACE_TIMER, PRESENCE_AUDIT_TIMER, Presence } from "./presence";
import { REALTIME_AUDIT_TIMER, REALTIME_CLOSE_TIMER, RealtimeCalls, type RealtimeAnswer, type RealtimeCall } from "./realtime-calls";
import type { Owner } from "./realtime-room";
import { Schedule } from "./schedule";
import { appTag, closeQuietly, send, sendText, tagsFor, type SocketIdentity } from "./sockets";
import { Sql } from "./sql";
import { deriveStatus, type DeviceCondition } from "./status";
import { StreamStore, type StreamRecord } from "./store";
import { clock } from "../clock";
import { StreamAnalytics } from "./analytics";
import { WATCH_URL_KEY, watchView, type WatchHit, type WatchView } from "./watch-view";
import { StreamMeta } from "./context";

/** Headers the Worker sets after authenticating a WebSocket upgrade; never trusted from outside. */
export const ROLE_HEADER = "x-sc-role";
export const PACKAGE_HEADER = "x-sc-package";
export const USER_HEADER = "x-sc-user";
export const TICKET_HEADER = "x-sc-ticket";
/** Set when user grants are required: only apps that joined through POST /api/streams may view. */
export const JOINED_ONLY_HEADER = "x-sc-joined-only";

const CREATE_WATCHDOG_MS = 60_000;
/** Timers that only mean something while the stream runs; a stop cancels them. */
const RUNNING_TIMERS = [INPUT_POLL_TIMER, OUTPUTS_POLL_TIMER, INGEST_STABLE_TIMER, KEEPALIVE_TIMER, CREATE_WATCHDOG_TIMER, PRESENCE_AUDIT_TIMER, REALTIME_AUDIT_TIMER, REALTIME_CLOSE_TIMER];

/**
 * One object per stream. A thin shell: it owns the storage and the sockets, and delegates each
 * concern to a module — presence, the device channel, lifecycle (Cloudflare resources), outputs,
 * status sync, inbound message screening, views, and the timer schedule.
 */
export class StreamCoordinator extends DurableObject<Env> {
  private readonly s: StreamContext;
  private readonly presence: Presence;
  private readonly device: DeviceChannel;
  private readonly lifecycle: Lifecycle;
  private readonly sync: StatusSync;
  private readonly outputs: Outputs;
  private readonly tombstones: Tombstones;
  private readonly publisher: StatusPublisher;
  private readonly shutdown: Shutdown;
  private readonly facts: CloudflareFacts;
  /** The create in flight, so concurrent callers wait for it instead of repeating it. */
  private creating: Promise<Failure | null> | null = null;
  private readonly inbound = new InboundGuard();
  private readonly views: StreamViews;
  private readonly appRequests: AppRequests;
  /** Reports joins and the stream's end to each participant app's list of streams (GET /api/streams). */
  private readonly participation: ParticipationOutbox;
  /** The Realtime SFU room (realtime-calls.ts, realtime-room.ts). */
  private readonly room: RealtimeCalls;
  /** Viewers, ingest and watch-link hits over the stream's life (analytics.ts); observed on every push. */
  private readonly analytics: StreamAnalytics;
  /** The stream's recordings (Cloudflare videos): captured while live, settled after the end, deleted at retention. */
  private readonly recordings: Recordings;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    const config = loadConfig(env);
    const sql = new Sql(ctx.storage.sql);
    this.s = {
      ctx,
      env,
      config,
      sql,
      store: new StreamStore(sql),
      schedule: new Schedule(sql, ctx.storage),
      api: streamApiFor(env, config),
    };
    this.tombstones = new Tombstones(this.s);
    this.participation = new ParticipationOutbox(this.s);
    this.recordings = new Recordings(this.s);
    this.presence = new Presence(this.s);
    this.room = new RealtimeCalls(this.s, {
      presentApps: (now) => this.presence.presentApps(now),
      changed: () => (this.s.store.get()?.phase === "running" ? this.afterPresenceChange(clock.now()) : this.s.schedule.arm()),
    });
    this.presence.roomViewers = () => this.room.store.viewerApps();
    this.device = new DeviceChannel(this.s);
    this.lifecycle = new Lifecycle(this.s, this.tombstones);
    this.outputs = new Outputs(this.s, this.tombstones, (packageName) => this.presence.presentApps(clock.now()).has(packageName));
    this.facts = new CloudflareFacts(this.s, {
      outputs: this.outputs,
      presence: this.presence,
      device: this.device,
      recordings: this.recordings,
      sync: () => this.sync,
      publisher: () => this.publisher,
    });
    this.sync = new StatusSync(this.s, {
      situation: (now) => this.facts.situation(now),
      applyIngest: (state) => this.facts.applyIngest(state),
      applyRemoteOutputs: (outputs) => this.facts.applyRemoteOutputs(outputs),
      readFailed: () => this.facts.readFailed(),
      inputLive: (uid) => this.analytics.readLiveViewers(uid),
    });
    this.views = new StreamViews(this.s, this.presence, this.device, this.outputs, this.sync, () => this.recordings.latest());
    this.analytics = new StreamAnalytics(this.s, this.presence);
    this.publisher = new StatusPublisher(this.s, this.views, this.presence, () => this.analytics.observe());
    this.appRequests = new AppRequests(this.s, this.views, {
      join: (packageName) => this.join(packageName, null),
      addOutput: (packageName, url, name) => this.addOutput(packageName, url, name, null),
      leave: (packageName) => this.leave(packageName),
    });
    this.shutdown = new Shutdown(this.s, {
      device: this.device,
      presence: this.presence,
      outputs: this.outputs,
      publisher: this.publisher,
      participation: this.participation,
      room: this.room,
      recordings: this.recordings,
      runningTimers: RUNNING_TIMERS,
    });
    // Ping/pong without waking the object.
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair('{"type":"ping"}', '{"type":"pong"}'));
    void ctx.blockConcurrencyWhile(() => this.onWake());
  }

  /**
   * Every start of this object (first request or alarm after an eviction, a crash or a deploy) re-derives
   * what memory used to hold from what is durable: who is present (sockets lost without a close are
   * simply absent now, so the grace timer arms), the device's keep-alives, unsettled outputs, and a
   * create that died with the previous instance.
   */
  private async onWake(): Promise<void> {
    const record = this.s.store.get();
    const now = clock.now();
    if (record?.phase === "running") {
      this.presence.audit(now, "wake");
      this.room.onWake(now);
      this.device.reconcile(now);
      if (this.outputs.hasUnsettled()) this.outputs.scheduleReconcile(0);
      this.sync.reschedule(now);
      this.publisher.pushIfChanged();
    } else if (record?.phase === "initializing") {
      // Its create was in flight in the previous instance: settle it now rather than a minute later.
      this.s.schedule.set(CREATE_WATCHDOG_TIMER, now);
    } else if (record?.phase === "stopping") {
      // Its cleanup may have died with the previous instance: resume it now, not at the lease's end.
      this.s.schedule.set(CLEANUP_TIMER, now);
    }
    // Joins or an end a previous instance could not report yet (not awaited: requests need not wait).
    if (!this.participation.isEmpty()) void this.participation.flush();
    await this.s.schedule.arm();
  }

  // ── RPC: lifecycle ─────────────────────────────────────────────────────────────────────────────

  /** Creates the stream and its live input; idempotent for the same streamId. */
  async create(input: CreateInput): Promise<Result<{ snapshot: StreamSnapshot }>> {
    if (this.creating) await this.creating;
    const existing = this.s.store.get();
    if (existing) return this.joinExisting(existing, input.packageName);

    const now = clock.now();
    const initial = deriveStatus({ phase: "initializing", ingestState: "idle", everConnected: false, device: "ok", deviceDetail: null, inputError: null });
    this.s.store.insert({
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
    this.s.store.addParticipant(input.packageName, now);
    if (input.watchUrl) new StreamMeta(this.s.sql).set(WATCH_URL_KEY, input.watchUrl);
    // If this object dies mid-create, the watchdog cleans up what Cloudflare may hold.
    this.s.schedule.set(CREATE_WATCHDOG_TIMER, now + CREATE_WATCHDOG_MS);
    // Marked in flight before the first await, so nothing interleaving sees a half-made stream.
    this.creating = this.s.schedule.arm().then(() => this.lifecycle.createLiveInput(input));
    const failure = await this.creating.finally(() => {
      this.creating = null;
    });
    if (failure) {
      this.shutdown.wipe();
      await this.s.schedule.arm();
      return failure;
    }
    this.s.schedule.cancel(CREATE_WATCHDOG_TIMER);
    this.presence.hold(input.packageName, clock.now());
    this.participation.joined(input.packageName, now);
    this.presence.audit(clock.now());
    this.refresh();
    this.sync.reschedule(clock.now());
    // The app's list of streams learns of it before the start answers (read-your-writes for GET /api/streams):
    // one call to the app's own object, already warm from the key check, made alongside the alarm write.
    await Promise.all([this.s.schedule.arm(), this.participation.flush()]);
    // A device that connected during creation gets its credentials now.
    const record = this.s.store.get()!;
    for (const ws of this.device.sockets()) send(ws, startMessage(record));
    return { ok: true, snapshot: this.views.snapshot(record) };
  }

  /** An app joins a running stream. Fails with STREAM_ENDED when it is stopping or gone. */
  async join(packageName: string, watchUrl: string | null = null): Promise<Result<{ snapshot: StreamSnapshot }>> {
    if (this.creating) await this.creating;
    const record = this.s.store.get();
    if (!record) return fail(404, "STREAM_ENDED", "Stream does not exist");
    if (watchUrl) new StreamMeta(this.s.sql).set(WATCH_URL_KEY, watchUrl);
    return this.joinExisting(record, packageName);
  }

  private async joinExisting(record: StreamRecord, packageName: string): Promise<Result<{ snapshot: StreamSnapshot }>> {
    if (record.phase !== "running") return fail(409, "STREAM_ENDED", `Stream is ${record.phase}`);
    const now = clock.now();
    const joined = this.s.store.addParticipant(packageName, now);
    if (joined) this.participation.joined(packageName, now);
    if (!this.presence.isViewing(packageName)) this.presence.hold(packageName, now);
    this.presence.evaluate(now);
    this.pushIfChanged();
    await Promise.all([this.s.schedule.arm(), joined ? this.participation.flush() : null]);
    return { ok: true, snapshot: this.views.snapshot(record) };
  }

  async getSnapshot(packageName: string): Promise<Result<{ snapshot: StreamSnapshot }>> {
    if (this.creating) await this.creating;
    const record = this.s.store.get();
    if (!record || !this.s.store.isParticipant(packageName)) return streamNotFound();
    return { ok: true, snapshot: this.views.snapshot(record) };
  }

  /**
   * One entry of a stream list (GET /api/streams for an app, `null`: GET /api/admin/streams). Not found
   * for an app that never joined. Does not wait for a create in flight: a list shows it `initializing`.
   */
  async listView(packageName: string | null): Promise<Result<{ view: StreamListView }>> {
    const record = this.s.store.get();
    if (!record || (packageName !== null && !this.s.store.isParticipant(packageName))) return streamNotFound();
    return {
      ok: true,
      view: {
        ...this.views.snapshot(record),
        userId: record.userId,
        createdBy: record.createdBy,
        participants: this.s.store.participants(),
        // As an app that added none of them sees them: every stream key masked.
        outputs: packageName === null && record.phase !== "initializing" ? this.views.outputViews(record, null) : [],
      },
    };
  }

  /** The user's watch link changed (rotated): the SDK's `previewUrl` shows the new one from the next push. */
  async setWatchUrl(watchUrl: string): Promise<void> {
    if (!this.s.store.get()) return;
    new StreamMeta(this.s.sql).set(WATCH_URL_KEY, watchUrl);
    this.pushIfChanged();
  }

  /** `GET /w/:key` resolved to this stream (watch-view.ts); `hit` is counted in the analytics. Null once purged. */
  async watchView(hit: WatchHit | null): Promise<WatchView | null> {
    const record = this.s.store.get();
    if (!record) {
      // Purged, but its recordings are kept: the watch link still offers the newest ready one.
      const latest = this.recordings.latest();
      const owner = this.recordings.owner();
      return latest && owner ? { state: "offline", streamId: owner.streamId, hlsUrl: null, dashUrl: null, thumbnailUrl: null, latestRecording: latest } : null;
    }
    if (hit && record.phase !== "initializing") this.analytics.hit(hit.country, hit.visitor);
    return watchView(this.s.config, record, this.recordings.latest());
  }

  /** `GET /api/streams/:id/analytics`: for the apps that took part (`null`: the admin). */
  async analyticsReport(packageName: string | null): Promise<Result<{ report: StreamAnalyticsReport }>> {
    if (this.creating) await this.creating;
    const record = this.s.store.get();
    if (!record) {
      // Purged, but kept with its recordings' compact record: readable by the same apps.
      const owner = this.recordings.owner();
      if (!owner || !this.analytics.kept() || (packageName !== null && !owner.participants.includes(packageName))) return streamNotFound();
      return { ok: true, report: { streamId: owner.streamId, state: "stopped", ...this.analytics.report() } };
    }
    if (packageName !== null && !this.s.store.isParticipant(packageName)) return streamNotFound();
    this.analytics.observe();
    return { ok: true, report: { streamId: record.streamId, state: record.status, ...this.analytics.report() } };
  }

  /** The app leaves (REST or `managed_stream_stop`): its hold and sockets go; others are unaffected. */
  async leave(packageName: string): Promise<Result<{ snapshot: StreamSnapshot }>> {
    const record = this.s.store.get();
    if (!record || !this.s.store.isParticipant(packageName)) return streamNotFound();
    this.presence.releaseHold(packageName);
    const sockets = this.ctx.getWebSockets(appTag(packageName));
    for (const ws of sockets) this.presence.onClose(ws);
    await this.room.closeSessionsOf({ role: "app", packageName });
    // Its sockets hear last that its managed stream stopped (the SDK may then start again); others see
    // the viewer count drop in the next push.
    const left = sockets.length > 0 ? JSON.stringify(this.views.leftMessage(record)) : "";
    for (const ws of sockets) {
      sendText(ws, left);
      closeQuietly(ws, 1000, "left the stream");
    }
    if (record.phase === "running") await this.afterPresenceChange(clock.now());
    return { ok: true, snapshot: this.views.snapshot(this.s.store.get()!) };
  }

  /** Stops the stream now (operators). Idempotent. */
  async forceStop(): Promise<Result<{ snapshot: StreamSnapshot }>> {
    if (this.creating) await this.creating;
    if (!this.s.store.get()) return streamNotFound();
    await this.shutdown.stop("Stream stopped by an operator");
    return { ok: true, snapshot: this.views.snapshot(this.s.store.get()!) };
  }

  async issueTicket(packageName: string): Promise<Result<{ ticket: string; expiresAt: number }>> {
    const record = this.s.store.get();
    if (!record || !this.s.store.isParticipant(packageName)) return streamNotFound();
    if (record.phase !== "running") return fail(409, "STREAM_ENDED", `Stream is ${record.phase}`);
    return { ok: true, ...this.presence.issueTicket(packageName, clock.now()) };
  }

  /** What the user's device needs to start streaming: the ingest credentials. Device-only. */
  async deviceInfo(userId: string): Promise<Result<{ info: DeviceStreamInfo }>> {
    if (this.creating) await this.creating;
    const record = this.s.store.get();
    if (!record || record.userId !== userId) return streamNotFound();
    const start = record.phase === "running" && record.ingest ? startMessage(record) : null;
    return { ok: true, info: { streamId: record.streamId, status: record.status, start } };
  }

  /** A call on the stream's Realtime SFU room by an authenticated app or device (realtime-calls.ts). */
  async realtime(caller: Owner, call: RealtimeCall): Promise<Result<{ answer: RealtimeAnswer }>> {
    if (this.creating) await this.creating;
    return this.room.handle(caller, call);
  }

  // ── RPC: restream outputs (seed 002) ──────────────────────────────────────────────────────────

  async addOutput(
    packageName: string,
    url: ParsedRtmpUrl,
    name: string | null,
    idempotencyKey: string | null,
  ): Promise<Result<AddedOutput>> {
    if (this.creating) await this.creating;
    const result = await this.outputs.addIdempotent(packageName, url, name, idempotencyKey);
    this.pushIfChanged();
    if (result.ok && this.s.store.get()?.phase === "running") {
      this.sync.reschedule(clock.now());
      await this.s.schedule.arm();
    }
    return result;
  }

  async removeOutput(packageName: string, outputId: string): Promise<Result<Removal>> {
    const result = await this.outputs.remove(packageName, outputId);
    this.pushIfChanged();
    return result;
  }

  async setOutputEnabled(packageName: string, outputId: string, enabled: boolean): Promise<Result<object>> {
    const result = await this.outputs.setEnabled(packageName, outputId, enabled);
    this.pushIfChanged();
    return result;
  }

  /** GET outputs: viewers only; the stream key is shown only to the app that added each output. */
  async listOutputs(packageName: string): Promise<Result<{ outputs: OutputView[] }>> {
    if (this.creating) await this.creating;
    const record = this.s.store.get();
    if (!record || record.phase === "initializing") return streamNotFound();
    if (!this.presence.presentApps(clock.now()).has(packageName)) return fail(403, "NOT_A_VIEWER", "App is not viewing the stream");
    return { ok: true, outputs: this.views.outputViews(record, packageName) };
  }

  /** For the per-app ledger's reconciliation. */
  async hasOutput(outputId: string): Promise<"yes" | "no" | "pending"> {
    return this.outputs.hasOutput(outputId);
  }

  // ── WebSockets ─────────────────────────────────────────────────────────────────────────────────

  /** Accepts an upgrade the Worker has already authenticated (role headers) — or refuses it with JSON. */
  override async fetch(request: Request): Promise<Response> {
    if (this.creating) await this.creating;
    const record = this.s.store.get();
    if (!record) return jsonFailure(streamNotFound());
    if (record.phase !== "running") return jsonFailure(fail(410, "STREAM_ENDED", `Stream is ${record.phase}`));

    const now = clock.now();
    const role = request.headers.get(ROLE_HEADER);
    let identity: SocketIdentity;
    if (role === "device") {
      if (request.headers.get(USER_HEADER) !== record.userId) {
        return jsonFailure(fail(403, "FORBIDDEN", "This device token belongs to another user"));
      }
      identity = { role: "device", userId: record.userId, connectedAt: now };
    } else if (role === "app") {
      const ticket = request.headers.get(TICKET_HEADER);
      const packageName = ticket ? this.presence.redeemTicket(ticket, now) : request.headers.get(PACKAGE_HEADER);
      if (!packageName) return jsonFailure(fail(401, "UNAUTHORIZED", "Ticket is invalid, expired or already used"));
      if (request.headers.get(JOINED_ONLY_HEADER) && !this.s.store.isParticipant(packageName)) {
        return jsonFailure(fail(403, "NOT_A_PARTICIPANT", "Join the stream with POST /api/streams first"));
      }
      identity = { role: "app", packageName, connectedAt: now };
      // With REQUIRE_USER_GRANT=false a socket makes its app a participant, as a join would.
      if (this.s.store.addParticipant(packageName, now)) {
        this.participation.joined(packageName, now);
        void this.participation.flush();
      }
    } else {
      return jsonFailure(fail(400, "INVALID_REQUEST", "Unknown connection role"));
    }

    const pair = new WebSocketPair();
    const [client, server] = [pair[0], pair[1]];
    this.ctx.acceptWebSocket(server, tagsFor(identity));
    this.presence.identities.attach(server, identity);

    if (identity.role === "app") {
      this.presence.onConnect(server, identity.packageName);
      this.presence.releaseHold(identity.packageName);
      this.presence.evaluate(now);
      // The current status goes to every (re)connecting viewer at once, never de-duplicated away.
      this.publisher.welcome(server, identity.packageName);
      this.room.store.welcome(server);
    } else {
      this.device.onConnect(server, record, now);
      // The glasses are back: whatever they reported before (lost, error) no longer holds.
      if (record.device !== "ok") this.applyDevice("ok", null);
    }
    this.sync.reschedule(now);
    await this.s.schedule.arm();
    return new Response(null, { status: 101, webSocket: client });
  }

  override async webSocketMessage(ws: WebSocket, raw: string | ArrayBuffer): Promise<void> {
    const identity = this.presence.identities.of(ws);
    if (!identity) return closeQuietly(ws, 1011, "Unknown connection");
    const inbound = this.inbound.screen(ws, raw, identity.role);
    if (inbound.kind === "close") return closeQuietly(ws, inbound.code, inbound.reason);
    if (inbound.kind === "reply") {
      return void send(ws, { type: "error", error: inbound.error, message: inbound.message } satisfies ProtocolError);
    }

    const record = this.s.store.get();
    if (!record) return;
    if (inbound.kind === "app" && identity.role === "app") return this.appRequests.handle(ws, identity.packageName, inbound.message);
    if (inbound.kind === "device") {
      const change = this.device.onMessage(inbound.message, record);
      if (change) this.applyDevice(change.device, change.detail);
      await this.s.schedule.arm();
    }
  }

  override async webSocketClose(ws: WebSocket, code: number, reason: string): Promise<void> {
    closeQuietly(ws, code === 1005 || code === 1006 ? 1000 : code, reason);
    await this.onSocketGone(ws);
  }

  override async webSocketError(ws: WebSocket): Promise<void> {
    await this.onSocketGone(ws);
  }

  private async onSocketGone(ws: WebSocket): Promise<void> {
    const identity = this.presence.identities.of(ws);
    if (identity?.role === "app") this.presence.onClose(ws);
    const record = this.s.store.get();
    if (!identity || !record || record.phase !== "running") return;
    if (identity.role === "device") this.device.onDisconnect(ws);
    await this.afterPresenceChange(clock.now(), ws);
  }

  private async afterPresenceChange(now: number, closing?: WebSocket): Promise<void> {
    this.presence.evaluate(now);
    this.sync.reschedule(now);
    this.pushIfChanged(undefined, closing);
    await this.s.schedule.arm();
  }

  // ── Alarm: every timer of this stream ──────────────────────────────────────────────────────────

  override async alarm(): Promise<void> {
    this.s.schedule.alarmFired();
    await this.s.schedule.runDue((name, now) => this.onTimer(name, now), clock.now());
    await this.s.schedule.arm();
  }

  private async onTimer(name: string, now: number): Promise<void> {
    // Tombstones outlive the stream they watch for.
    if (name === TOMBSTONE_TIMER) return this.tombstones.check(() => this.claims());
    // So do the recordings' timers (the compact record keeps who may read and delete them).
    if (name === RECORDING_CAPTURE_TIMER) {
      await this.recordings.capture();
      // A recording that became ready since (a reconnect past the window) shows in the status at once.
      if (this.s.store.get()?.phase === "running") this.pushIfChanged();
      return;
    }
    if (name === RECORDING_SETTLE_TIMER) return this.recordings.settle();
    if (name === RECORDING_EXPIRE_TIMER) return this.recordings.expire();
    const record = this.s.store.get();
    if (!record) return;
    const heldApp = this.presence.isHoldTimer(name);
    if (heldApp !== null) {
      this.presence.releaseHold(heldApp);
      this.presence.evaluate(now);
      this.pushIfChanged();
      return;
    }
    switch (name) {
      case GRACE_TIMER:
        if (record.phase === "running" && this.presence.presentApps(now).size === 0) {
          await this.shutdown.stop("No app is watching any more");
        }
        return;
      case PRESENCE_AUDIT_TIMER:
        if (record.phase !== "running") return;
        this.presence.audit(now);
        this.pushIfChanged();
        return;
      case KEEPALIVE_TIMER: {
        const change = this.device.tick(record, now);
        if (change) this.applyDevice(change, null);
        return;
      }
      case INPUT_POLL_TIMER:
        await this.sync.pollInput();
        return;
      case OUTPUTS_POLL_TIMER:
        await this.sync.pollOutputs();
        return;
      case INGEST_STABLE_TIMER:
        this.pushIfChanged();
        return;
      case OUTPUT_RECONCILE_TIMER:
        await this.outputs.reconcile();
        this.pushIfChanged();
        return;
      case LEDGER_OUTBOX_TIMER:
        await this.outputs.flushLedger();
        return;
      case REALTIME_AUDIT_TIMER:
        if (record.phase === "running") await this.room.audit(now);
        return;
      case REALTIME_CLOSE_TIMER:
        await this.room.flushClosing();
        return;
      case PARTICIPATION_OUTBOX_TIMER:
        await this.participation.flush();
        return;
      case NOTIFY_USER_TIMER:
        if (record.phase === "stopped") await this.shutdown.notifyUserStreamEnded(record);
        return;
      case PURGE_TIMER:
        if (record.phase === "stopped") await this.shutdown.purge();
        return;
      case CLEANUP_TIMER:
        await this.shutdown.stop(record.message);
        return;
      case CREATE_WATCHDOG_TIMER:
        if (record.phase !== "initializing") return;
        if (this.creating) {
          // Still in flight (a slow Cloudflare): look again later rather than drop the watchdog.
          this.s.schedule.set(CREATE_WATCHDOG_TIMER, now + CREATE_WATCHDOG_MS);
          return;
        }
        // The create died with a previous instance: give the stream up, and let a tombstone delete
        // any input Cloudflare made (or still makes) for it.
        this.tombstones.add({ kind: "live_input", streamId: record.streamId });
        this.shutdown.wipe();
        await this.tombstones.check(() => this.claims());
        return;
    }
  }

  // ── State changes ──────────────────────────────────────────────────────────────────────────────

  /** A Cloudflare Notifications webhook for this stream's live input (already authenticated). */
  async applyWebhook(event: WebhookEvent): Promise<{ applied: boolean; reason?: string }> {
    return this.facts.applyWebhook(event);
  }

  // ── RPC: recordings ────────────────────────────────────────────────────────────────────────────

  /** GET .../recordings: for an app that took part (packageName) or the admin (null), while any is kept. */
  async listRecordings(packageName: string | null): Promise<Result<{ recordings: RecordingView[] }>> {
    const denied = this.recordingAccess(packageName, false);
    if (denied) return denied;
    return { ok: true, recordings: this.recordings.list() };
  }

  /** DELETE .../recordings/:id: the app that started the stream, or the admin (null). */
  async deleteRecording(packageName: string | null, recordingId: string): Promise<Result<{ pending: boolean }>> {
    const denied = this.recordingAccess(packageName, true);
    if (denied) return denied;
    const result = await this.recordings.delete(recordingId);
    if (!result.found) return fail(404, "RECORDING_NOT_FOUND", "No such recording of this stream");
    return { ok: true, pending: result.pending };
  }

  /** The newest ready recording of this stream, or null: for the watch link and the stream's view. */
  async latestRecording(): Promise<RecordingView | null> {
    return this.recordings.latest();
  }

  /** The signed video webhook (already verified by the Worker): a recording of this stream became ready or failed. */
  async applyVideoWebhook(video: RemoteVideo): Promise<{ applied: boolean; reason?: string }> {
    const result = this.recordings.applyWebhook(video);
    await this.s.schedule.arm();
    return result;
  }

  /**
   * For the leak sweep, about a video whose creator names this stream: the stream adopts it if it did not know
   * it yet (a crash before the capture), and says whether to keep it. `delete`: the stream is unknown here (or
   * purged with all its recordings), or the recording is past its retention or deleted by us.
   */
  async sweepRecording(video: RemoteVideo): Promise<"keep" | "delete"> {
    const verdict = this.recordings.sweep(video);
    await this.s.schedule.arm();
    return verdict;
  }

  /** Who may read (participants) or delete (the starting app) recordings; null: allowed. Admin: packageName null. */
  private recordingAccess(packageName: string | null, toDelete: boolean): Failure | null {
    const record = this.s.store.get();
    const owner = this.recordings.owner();
    if (!record && !owner) return streamNotFound();
    if (packageName === null) return null;
    const participant = record ? this.s.store.isParticipant(packageName) : owner!.participants.includes(packageName);
    if (!participant) return streamNotFound();
    const createdBy = record?.createdBy ?? owner!.createdBy;
    if (toDelete && packageName !== createdBy) return fail(403, "FORBIDDEN", "Only the app that started the stream may delete its recordings");
    return null;
  }

  /** For the leak sweep: is this stream still using its live input? */
  async sweepInfo(): Promise<{ phase: string; liveInputUid: string | null; stoppedAt: number | null } | null> {
    const record = this.s.store.get();
    return record ? { phase: record.phase, liveInputUid: record.liveInputUid, stoppedAt: record.stoppedAt } : null;
  }

  private applyDevice(device: DeviceCondition, detail: string | null): void {
    this.s.store.update({ device, deviceDetail: detail });
    this.refresh();
  }

  private refresh(): void {
    this.publisher.refresh();
  }

  private pushIfChanged(fresh?: WebSocket, closing?: WebSocket): void {
    this.publisher.pushIfChanged(fresh, closing);
  }

  /** What tombstones must leave alone: the input and outputs this stream uses, and work in flight. */
  private claims(): Claims {
    const record = this.s.store.get();
    return {
      liveInputUid: record && record.phase !== "stopped" ? record.liveInputUid : null,
      creatingInput: this.creating !== null,
      ...this.outputs.claims(),
    };
  }
}

export type StreamAnalyticsReport = { streamId: string; state: StreamRecord["status"] } & ReturnType<StreamAnalytics["report"]>;

/** A stream list entry as the stream object gives it; the Worker keeps what its list shows. */
export type StreamListView = AdminStreamListItem;

function streamNotFound(): Failure {
  return fail(404, "STREAM_NOT_FOUND", "Managed stream not found");
}

function jsonFailure(failure: Failure): Response {
  return new Response(JSON.stringify({ error: failure.error, message: failure.message }), {
    status: failure.status,
    headers: { "content-type": "application/json; charset=utf-8" },
  });
}
