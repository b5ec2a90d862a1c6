import { DurableObject } from "cloudflare:workers";
import type { IngestState, RemoteOutput } from "../cloudflare/stream-api";
import { streamApiFor } from "../budget/budgeted-api";
import { loadConfig } from "../config";
import type { Env } from "../env";
import { fail, type Failure, type Result } from "../http/errors";
import type { ProtocolError } from "../schemas/protocol";
import { InboundGuard } from "./inbound";
import { StreamViews, type DeviceStreamInfo, type StreamSnapshot } from "./views";
import { StreamMeta, type StreamContext } from "./context";
import { DeviceChannel, KEEPALIVE_TIMER, startMessage } from "./device";
import { INGEST_STABLE_TIMER, INPUT_POLL_TIMER, OUTPUTS_POLL_TIMER, StatusSync } from "./status-sync";
import type { PollSituation } from "../sync/poll-policy";
import { LEDGER_OUTBOX_TIMER, OUTPUT_RECONCILE_TIMER, Outputs, type AddedOutput, type OutputView } from "./outputs";
import type { ParsedRtmpUrl } from "../outputs/rtmp-url";
import { CLEANUP_TIMER, CREATE_WATCHDOG_TIMER, Lifecycle, type CreateInput } from "./lifecycle";
import { GRACE_TIMER, Presence } from "./presence";
import { Schedule } from "./schedule";
import { appTag, attach, closeQuietly, identityOf, send, tagsFor, type SocketIdentity } from "./sockets";
import { Sql } from "./sql";
import { deriveStatus, type DeviceCondition } from "./status";
import { StreamStore, type StreamRecord } from "./store";
import { clock } from "../clock";

/** Headers the Worker sets after authenticating a WebSocket upgrade; never trusted from outside. */
export const ROLE_HEADER = "x-sc-role";
export const PACKAGE_HEADER = "x-sc-package";
export const USER_HEADER = "x-sc-user";
export const TICKET_HEADER = "x-sc-ticket";
/** Set when user grants are required: only apps that joined through POST /api/streams may view. */
export const JOINED_ONLY_HEADER = "x-sc-joined-only";

const CREATE_WATCHDOG_MS = 60_000;
const PUSH_FINGERPRINT_KEY = "lastPushed";
const OUTPUTS_CHECK_AFTER_CONNECT_MS = 10_000;
const PURGE_TIMER = "purge";
const NOTIFY_USER_TIMER = "notify-user";
const STOPPED_RETENTION_MS = 24 * 3_600_000;

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
  private readonly meta: StreamMeta;
  /** In-flight create/stop, so concurrent callers wait for the same work instead of repeating it. */
  private creating: Promise<Failure | null> | null = null;
  private stopping: Promise<void> | null = null;
  private readonly inbound = new InboundGuard();
  private readonly views: StreamViews;

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
    this.meta = new StreamMeta(sql);
    this.presence = new Presence(this.s);
    this.device = new DeviceChannel(this.s);
    this.lifecycle = new Lifecycle(this.s);
    this.sync = new StatusSync(this.s, {
      situation: (now) => this.pollSituation(now),
      applyIngest: (state) => this.applyIngest(state),
      applyRemoteOutputs: (outputs) => this.applyRemoteOutputs(outputs),
    });
    this.outputs = new Outputs(this.s, (packageName) => this.presence.presentApps(clock.now()).has(packageName));
    this.views = new StreamViews(this.s, this.presence, this.device, this.outputs, this.sync);
    // Ping/pong without waking the object.
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair('{"type":"ping"}', '{"type":"pong"}'));
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
    // If this object dies mid-create, the watchdog cleans up what Cloudflare may hold.
    this.s.schedule.set(CREATE_WATCHDOG_TIMER, now + CREATE_WATCHDOG_MS);
    // Marked in flight before the first await, so nothing interleaving sees a half-made stream.
    this.creating = this.s.schedule.arm().then(() => this.lifecycle.createLiveInput(input));
    const failure = await this.creating.finally(() => {
      this.creating = null;
    });
    if (failure) {
      this.wipe();
      await this.s.schedule.arm();
      return failure;
    }
    this.s.schedule.cancel(CREATE_WATCHDOG_TIMER);
    this.presence.hold(input.packageName, clock.now());
    this.refresh();
    this.sync.reschedule(clock.now());
    await this.s.schedule.arm();
    // A device that connected during creation gets its credentials now.
    const record = this.s.store.get()!;
    for (const ws of this.device.sockets()) send(ws, startMessage(record));
    return { ok: true, snapshot: this.views.snapshot(record) };
  }

  /** An app joins a running stream. Fails with STREAM_ENDED when it is stopping or gone. */
  async join(packageName: string): Promise<Result<{ snapshot: StreamSnapshot }>> {
    if (this.creating) await this.creating;
    const record = this.s.store.get();
    if (!record) return fail(404, "STREAM_ENDED", "Stream does not exist");
    return this.joinExisting(record, packageName);
  }

  private async joinExisting(record: StreamRecord, packageName: string): Promise<Result<{ snapshot: StreamSnapshot }>> {
    if (record.phase !== "running") return fail(409, "STREAM_ENDED", `Stream is ${record.phase}`);
    const now = clock.now();
    this.s.store.addParticipant(packageName, now);
    if (!this.presence.isViewing(packageName)) this.presence.hold(packageName, now);
    this.presence.evaluate(now);
    this.pushIfChanged();
    await this.s.schedule.arm();
    return { ok: true, snapshot: this.views.snapshot(record) };
  }

  async getSnapshot(packageName: string): Promise<Result<{ snapshot: StreamSnapshot }>> {
    if (this.creating) await this.creating;
    const record = this.s.store.get();
    if (!record || !this.s.store.isParticipant(packageName)) return streamNotFound();
    return { ok: true, snapshot: this.views.snapshot(record) };
  }

  /** The app leaves (REST or `managed_stream_stop`): its hold and sockets go; others are unaffected. */
  async leave(packageName: string): Promise<Result<{ snapshot: StreamSnapshot }>> {
    const record = this.s.store.get();
    if (!record || !this.s.store.isParticipant(packageName)) return streamNotFound();
    this.presence.releaseHold(packageName);
    for (const ws of this.ctx.getWebSockets(appTag(packageName))) closeQuietly(ws, 1000, "left the stream");
    if (record.phase === "running") await this.afterPresenceChange(clock.now());
    return { ok: true, snapshot: this.views.snapshot(this.s.store.get()!) };
  }

  /** Stops the stream now (operators). Idempotent. */
  async forceStop(): Promise<Result<{ snapshot: StreamSnapshot }>> {
    if (this.creating) await this.creating;
    if (!this.s.store.get()) return streamNotFound();
    await this.stop("Stream stopped by an operator");
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

  async removeOutput(packageName: string, outputId: string): Promise<Result<object>> {
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
      this.s.store.addParticipant(packageName, now);
    } else {
      return jsonFailure(fail(400, "INVALID_REQUEST", "Unknown connection role"));
    }

    const pair = new WebSocketPair();
    const [client, server] = [pair[0], pair[1]];
    this.ctx.acceptWebSocket(server, tagsFor(identity));
    attach(server, identity);

    if (identity.role === "app") {
      this.presence.releaseHold(identity.packageName);
      this.presence.evaluate(now);
      // The current status goes to every (re)connecting viewer at once, never de-duplicated away.
      send(server, this.views.statusMessage(record, identity.packageName));
      this.pushIfChanged(server);
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
    const identity = identityOf(ws);
    if (!identity) return closeQuietly(ws, 1011, "Unknown connection");
    const inbound = this.inbound.screen(ws, raw, identity.role);
    if (inbound.kind === "close") return closeQuietly(ws, inbound.code, inbound.reason);
    if (inbound.kind === "reply") {
      return void send(ws, { type: "error", error: inbound.error, message: inbound.message } satisfies ProtocolError);
    }

    const record = this.s.store.get();
    if (!record) return;
    if (inbound.kind === "app" && identity.role === "app") {
      if (inbound.message.type === "stream_status_check") send(ws, this.views.statusMessage(record, identity.packageName));
      else await this.leave(identity.packageName);
      return;
    }
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
    const identity = identityOf(ws);
    const record = this.s.store.get();
    if (!identity || !record || record.phase !== "running") return;
    if (identity.role === "device") this.device.onDisconnect(ws);
    await this.afterPresenceChange(clock.now(), ws);
  }

  private async afterPresenceChange(now: number, closing?: WebSocket): Promise<void> {
    this.presence.evaluate(now, closing);
    this.sync.reschedule(now);
    this.pushIfChanged(undefined, closing);
    await this.s.schedule.arm();
  }

  // ── Alarm: every timer of this stream ──────────────────────────────────────────────────────────

  override async alarm(): Promise<void> {
    await this.s.schedule.runDue((name, now) => this.onTimer(name, now), clock.now());
    await this.s.schedule.arm();
  }

  private async onTimer(name: string, now: number): Promise<void> {
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
          await this.stop("No app is watching any more");
        }
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
        await this.outputs.reconcilePending();
        this.pushIfChanged();
        return;
      case LEDGER_OUTBOX_TIMER:
        await this.outputs.flushLedger();
        return;
      case NOTIFY_USER_TIMER:
        if (record.phase === "stopped") await this.notifyUserStreamEnded(record);
        return;
      case PURGE_TIMER:
        if (record.phase === "stopped") await this.purge();
        return;
      case CLEANUP_TIMER:
        await this.stop(record.message);
        return;
      case CREATE_WATCHDOG_TIMER:
        if (record.phase !== "initializing") return;
        if (this.creating) {
          // Still in flight (a slow Cloudflare): look again later rather than drop the watchdog.
          this.s.schedule.set(CREATE_WATCHDOG_TIMER, now + CREATE_WATCHDOG_MS);
          return;
        }
        await this.lifecycle.deleteInputsOf(record.streamId);
        this.wipe();
        return;
    }
  }

  // ── State changes ──────────────────────────────────────────────────────────────────────────────

  /** Applies an ingest state observed at Cloudflare (poll or webhook). */
  private applyIngest(state: IngestState): void {
    const record = this.s.store.get();
    if (!record || record.phase !== "running") return;
    if (record.ingestState === state) return this.pushIfChanged();
    const connected = state === "connected";
    this.s.store.update({
      ingestState: state,
      everConnected: record.everConnected || connected,
      ...(connected ? { inputError: null } : {}),
    });
    this.sync.ingestChanged(state, clock.now());
    this.sync.reschedule(clock.now());
    // Relays start when ingest connects; look at the outputs soon rather than a full interval later.
    if (connected && this.outputs.rows().length > 0) this.s.schedule.setEarliest(OUTPUTS_POLL_TIMER, clock.now() + OUTPUTS_CHECK_AFTER_CONNECT_MS);
    this.refresh();
  }

  /** Output facts only Cloudflare knows: an output gone missing, or (emulator) a relay error. */
  private applyRemoteOutputs(remote: RemoteOutput[]): void {
    const byUid = new Map(remote.map((o) => [o.uid, o]));
    for (const row of this.outputs.rows()) {
      if (row.state !== "ready" || !row.cf_uid) continue;
      const found = byUid.get(row.cf_uid);
      const error = !found
        ? "Output no longer exists at Cloudflare"
        : found.relay?.state === "error"
          ? `Relay error: ${found.relay.lastError ?? "unknown error"}`
          : null;
      this.outputs.setError(row.output_id, error);
      // Cloudflare's enabled flag is the truth (two PATCHes may have crossed on the way).
      if (found && found.enabled !== (row.enabled === 1)) this.outputs.setEnabledFlag(row.output_id, found.enabled);
    }
    this.pushIfChanged();
  }

  /** A Cloudflare Notifications webhook for this stream's live input (already authenticated). */
  async applyWebhook(event: {
    type: "live_input.connected" | "live_input.disconnected" | "live_input.errored";
    liveInputUid: string;
    eventAt: number;
    error: string | null;
  }): Promise<{ applied: boolean; reason?: string }> {
    const record = this.s.store.get();
    if (!record || record.liveInputUid !== event.liveInputUid) return { applied: false, reason: "unknown live input" };
    if (record.phase !== "running") return { applied: false, reason: `stream is ${record.phase}` };
    if (!this.sync.acceptWebhook(event.eventAt, clock.now())) return { applied: false, reason: "older than an event already applied" };
    if (event.type === "live_input.errored") {
      this.s.store.update({ inputError: event.error ?? "unknown error" });
      this.refresh();
    } else {
      this.applyIngest(event.type === "live_input.connected" ? "connected" : "disconnected");
    }
    this.sync.reschedule(clock.now());
    await this.s.schedule.arm();
    return { applied: true };
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

  /** Re-derives the status from the facts, persists it if it changed, and pushes to clients. */
  private refresh(): void {
    const record = this.s.store.get();
    if (!record) return;
    const derived = deriveStatus(record);
    if (derived.status !== record.status || derived.message !== record.message) this.s.store.update(derived);
    this.pushIfChanged();
  }

  /**
   * Pushes the status to every viewer when anything they see changed since the last push.
   * `fresh` was just sent the status directly; `closing` is leaving.
   */
  private pushIfChanged(fresh?: WebSocket, closing?: WebSocket): void {
    const record = this.s.store.get();
    if (!record) return;
    // Fingerprint the unmasked view: what any viewer could see changed.
    const { timestamp: _ignored, ...visible } = this.views.statusMessage(record, null, closing);
    const fingerprint = JSON.stringify(visible);
    if (this.meta.get(PUSH_FINGERPRINT_KEY) === fingerprint) return;
    this.meta.set(PUSH_FINGERPRINT_KEY, fingerprint);
    for (const ws of this.ctx.getWebSockets("app")) {
      if (ws === fresh || ws === closing || ws.readyState !== WebSocket.OPEN) continue;
      const identity = identityOf(ws);
      send(ws, this.views.statusMessage(record, identity?.role === "app" ? identity.packageName : null, closing));
    }
  }

  private async stop(reason: string): Promise<void> {
    if (this.stopping) return this.stopping;
    this.stopping = this.runStop(reason).finally(() => {
      this.stopping = null;
    });
    return this.stopping;
  }

  private async runStop(reason: string): Promise<void> {
    const record = this.s.store.get();
    if (!record || record.phase === "stopped") return;
    if (record.phase !== "stopping") {
      this.meta.set("stopReason", reason);
      this.s.store.update({ phase: "stopping" });
      this.refresh();
      this.device.sendStop(record.streamId);
      this.presence.clearAll();
      for (const name of [INPUT_POLL_TIMER, OUTPUTS_POLL_TIMER, INGEST_STABLE_TIMER, KEEPALIVE_TIMER, CREATE_WATCHDOG_TIMER]) {
        this.s.schedule.cancel(name);
      }
    }
    // Armed before the Cloudflare calls: if this object dies mid-cleanup, the stop resumes from the alarm.
    const attempts = Number(this.meta.get("stopAttempts") ?? "0");
    this.meta.set("stopAttempts", String(attempts + 1));
    const retryIn = Math.min(5 * 60_000, 5_000 * 2 ** attempts) * (0.8 + Math.random() * 0.4);
    this.s.schedule.set(CLEANUP_TIMER, clock.now() + Math.max(retryIn, this.s.config.cloudflareTimeoutMs * 4));
    await this.s.schedule.arm();
    try {
      if (record.liveInputUid) await this.s.api.deleteLiveInputWithOutputs(record.liveInputUid);
    } catch (error) {
      // Keep `stopping`; the cleanup timer retries with backoff until Cloudflare confirms the deletion.
      console.error("stream cleanup failed; will retry", error instanceof Error ? error.message : error);
      this.s.schedule.set(CLEANUP_TIMER, clock.now() + retryIn);
      await this.s.schedule.arm();
      return;
    }
    this.s.schedule.clear();
    // A stopped stream stays readable for a day, then its storage is emptied.
    this.s.schedule.set(PURGE_TIMER, clock.now() + STOPPED_RETENTION_MS);
    this.s.store.update({ phase: "stopped", ingest: null, ingestState: "idle", stoppedAt: clock.now() });
    await this.outputs.releaseAll();
    const derived = deriveStatus({ ...this.s.store.get()!, phase: "stopped" });
    this.s.store.update({ ...derived, message: `${derived.message}: ${this.meta.get("stopReason") ?? reason}` });
    this.pushIfChanged();
    for (const ws of this.ctx.getWebSockets()) closeQuietly(ws, 1000, "Stream stopped");
    await this.s.schedule.arm();
    await this.notifyUserStreamEnded(record);
    // The input is gone: its webhook index entry is no longer needed (the sweep reads the meta).
    if (record.liveInputUid) {
      await this.env.INPUT_INDEX.getByName(record.liveInputUid)
        .forget()
        .catch((error: unknown) => console.error("could not drop the input index entry", error instanceof Error ? error.message : error));
    }
  }

  /** Tells the user's index this stream is over; retried from the alarm until it lands. */
  private async notifyUserStreamEnded(record: StreamRecord): Promise<void> {
    try {
      await this.env.USERS.getByName(record.userId).streamEnded(record.streamId);
    } catch (error) {
      console.error("could not release the user's stream; will retry", error instanceof Error ? error.message : error);
      this.s.schedule.set(NOTIFY_USER_TIMER, clock.now() + 30_000);
      await this.s.schedule.arm();
    }
  }

  /** Empties a long-stopped stream's storage, once its ledger changes have been delivered. */
  private async purge(): Promise<void> {
    await this.outputs.flushLedger();
    if (this.s.sql.one(`SELECT 1 AS y FROM ledger_outbox LIMIT 1`)) {
      this.s.schedule.set(PURGE_TIMER, clock.now() + 3_600_000);
      return;
    }
    this.wipe();
  }

  /** Removes all state (after a failed create, or when a stopped stream is purged). */
  private wipe(): void {
    for (const table of ["stream", "participants", "join_holds", "tickets", "meta", "schedule", "outputs", "idempotent_adds", "ledger_outbox"]) {
      this.s.sql.run(`DELETE FROM ${table}`);
    }
  }

  // ── Views ──────────────────────────────────────────────────────────────────────────────────────

  private hasClients(): boolean {
    return this.ctx.getWebSockets().length > 0;
  }

  private pollSituation(now: number): PollSituation {
    const record = this.s.store.get();
    return {
      now,
      createdAt: record?.createdAt ?? now,
      everConnected: record?.everConnected ?? false,
      ingestConnected: record?.ingestState === "connected",
      hasClients: this.hasClients(),
      hasOutputs: this.outputs.rows().length > 0,
      webhooksConfigured: Boolean(this.s.config.webhookSecret),
      webhooksSeen: this.sync.webhooksSeen(),
      slowPollMs: this.s.config.pollSlowSeconds * 1000,
    };
  }
}

function streamNotFound(): Failure {
  return fail(404, "STREAM_NOT_FOUND", "Managed stream not found");
}

function jsonFailure(failure: Failure): Response {
  return new Response(JSON.stringify({ error: failure.error, message: failure.message }), {
    status: failure.status,
    headers: { "content-type": "application/json; charset=utf-8" },
  });
}
