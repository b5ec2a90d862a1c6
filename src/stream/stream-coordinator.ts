import { DurableObject } from "cloudflare:workers";
import { clock } from "../clock";
import type { Env } from "../env";
import type { Result } from "../http/errors";
import type { RemoteVideo } from "../cloudflare/video-api";
import type { ParsedRtmpUrl } from "../outputs/rtmp-url";
import type { WebhookEvent } from "./cloudflare-facts";
import { StreamMeta } from "./context";
import { streamNotFound } from "./failures";
import type { CreateInput } from "./lifecycle";
import type { AddedOutput, OutputView, Removal } from "./outputs";
import { assembleStream, type StreamParts } from "./parts";
import type { RealtimeAnswer, RealtimeCall } from "./realtime-calls";
import type { Owner } from "./realtime-room";
import type { RecordingView } from "./recording-store";
import { closeQuietly } from "./sockets";
import type { StreamAnalyticsReport, StreamListView } from "./stream-reads";
import { runTimer } from "./timers";
import type { DeviceStreamInfo, StreamSnapshot } from "./views";
import { reconcileOnWake } from "./wake";
import { WATCH_URL_KEY, type WatchHit, type WatchView } from "./watch-view";

/**
 * One object per stream. A thin shell: it owns the storage and the sockets, and each method hands its
 * call to the module of its concept (parts.ts builds and wires them): creation, connections (sockets),
 * reads, output requests, recordings, the Realtime room, Cloudflare's facts, and the timers (timers.ts).
 */
export class StreamCoordinator extends DurableObject<Env> {
  /** Rebuilt by every instance; only what the modules keep in storage outlives it. */
  private readonly parts: StreamParts;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.parts = assembleStream(ctx, env);
    // Ping/pong without waking the object.
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair('{"type":"ping"}', '{"type":"pong"}'));
    void ctx.blockConcurrencyWhile(() => reconcileOnWake(this.parts));
  }

  // ── RPC: lifecycle ─────────────────────────────────────────────────────────────────────────────

  /** Creates the stream and its live input; idempotent for the same streamId. */
  async create(input: CreateInput): Promise<Result<{ snapshot: StreamSnapshot }>> {
    return this.parts.creation.create(input);
  }

  /** An app joins a running stream. Fails with STREAM_ENDED when it is stopping or gone. */
  async join(packageName: string, watchUrl: string | null = null): Promise<Result<{ snapshot: StreamSnapshot }>> {
    return this.parts.creation.join(packageName, watchUrl);
  }

  async getSnapshot(packageName: string): Promise<Result<{ snapshot: StreamSnapshot }>> {
    return this.parts.reads.snapshot(packageName);
  }

  /**
   * One entry of a stream list (GET /api/streams for an app, `null`: GET /api/admin/streams). Not found
   * for an app that never joined. Does not wait for a create in flight: a list shows it `initializing`.
   */
  async listView(packageName: string | null): Promise<Result<{ view: StreamListView }>> {
    return this.parts.reads.listView(packageName);
  }

  /** The user's watch link changed (rotated): the SDK's `previewUrl` shows the new one from the next push. */
  async setWatchUrl(watchUrl: string): Promise<void> {
    const { s, publisher } = this.parts;
    if (!s.store.get()) return;
    new StreamMeta(s.sql).set(WATCH_URL_KEY, watchUrl);
    publisher.pushIfChanged();
  }

  /** `GET /w/:key` resolved to this stream (watch-view.ts); `hit` is counted in the analytics. Null once purged. */
  async watchView(hit: WatchHit | null): Promise<WatchView | null> {
    return this.parts.reads.watchView(hit);
  }

  /** `GET /api/streams/:id/analytics`: for the apps that took part (`null`: the admin). */
  async analyticsReport(packageName: string | null): Promise<Result<{ report: StreamAnalyticsReport }>> {
    return this.parts.reads.analyticsReport(packageName);
  }

  /** The app leaves (REST or `managed_stream_stop`): its hold and sockets go; others are unaffected. */
  async leave(packageName: string): Promise<Result<{ snapshot: StreamSnapshot }>> {
    return this.parts.connections.leave(packageName);
  }

  /** Stops the stream now (operators). Idempotent. */
  async forceStop(): Promise<Result<{ snapshot: StreamSnapshot }>> {
    const { s, creation, shutdown, views } = this.parts;
    if (creation.inFlight) await creation.inFlight;
    if (!s.store.get()) return streamNotFound();
    await shutdown.stop("Stream stopped by an operator");
    return { ok: true, snapshot: views.snapshot(s.store.get()!) };
  }

  async issueTicket(packageName: string): Promise<Result<{ ticket: string; expiresAt: number }>> {
    return this.parts.connections.issueTicket(packageName);
  }

  /** What the user's device needs to start streaming: the ingest credentials. Device-only. */
  async deviceInfo(userId: string): Promise<Result<{ info: DeviceStreamInfo }>> {
    return this.parts.reads.deviceInfo(userId);
  }

  /** A call on the stream's Realtime SFU room by an authenticated app or device (realtime-calls.ts). */
  async realtime(caller: Owner, call: RealtimeCall): Promise<Result<{ answer: RealtimeAnswer }>> {
    const { creation, room } = this.parts;
    if (creation.inFlight) await creation.inFlight;
    return room.handle(caller, call);
  }

  // ── RPC: restream outputs (seed 002) ──────────────────────────────────────────────────────────

  async addOutput(packageName: string, url: ParsedRtmpUrl, name: string | null, idempotencyKey: string | null): Promise<Result<AddedOutput>> {
    return this.parts.outputRequests.add(packageName, url, name, idempotencyKey);
  }

  async removeOutput(packageName: string, outputId: string): Promise<Result<Removal>> {
    return this.parts.outputRequests.remove(packageName, outputId);
  }

  async setOutputEnabled(packageName: string, outputId: string, enabled: boolean): Promise<Result<object>> {
    return this.parts.outputRequests.setEnabled(packageName, outputId, enabled);
  }

  /** GET outputs: viewers only; the stream key is shown only to the app that added each output. */
  async listOutputs(packageName: string): Promise<Result<{ outputs: OutputView[] }>> {
    return this.parts.outputRequests.list(packageName);
  }

  /** For the per-app ledger's reconciliation. */
  async hasOutput(outputId: string): Promise<"yes" | "no" | "pending"> {
    return this.parts.outputs.hasOutput(outputId);
  }

  // ── WebSockets (connections.ts) ────────────────────────────────────────────────────────────────

  /** Accepts an upgrade the Worker has already authenticated (role headers) — or refuses it with JSON. */
  override async fetch(request: Request): Promise<Response> {
    return this.parts.connections.accept(request);
  }

  override async webSocketMessage(ws: WebSocket, raw: string | ArrayBuffer): Promise<void> {
    return this.parts.connections.message(ws, raw);
  }

  override async webSocketClose(ws: WebSocket, code: number, reason: string): Promise<void> {
    closeQuietly(ws, code === 1005 || code === 1006 ? 1000 : code, reason);
    await this.parts.connections.gone(ws);
  }

  override async webSocketError(ws: WebSocket): Promise<void> {
    await this.parts.connections.gone(ws);
  }

  // ── Alarm: every timer of this stream (timers.ts) ──────────────────────────────────────────────

  override async alarm(): Promise<void> {
    const { schedule } = this.parts.s;
    schedule.alarmFired();
    await schedule.runDue((name, now) => runTimer(this.parts, name, now), clock.now());
    await schedule.arm();
  }

  // ── Cloudflare's facts ─────────────────────────────────────────────────────────────────────────

  /** A Cloudflare Notifications webhook for this stream's live input (already authenticated). */
  async applyWebhook(event: WebhookEvent): Promise<{ applied: boolean; reason?: string }> {
    return this.parts.facts.applyWebhook(event);
  }

  /** For the leak sweep: is this stream still using its live input? */
  async sweepInfo(): Promise<{ phase: string; liveInputUid: string | null; stoppedAt: number | null } | null> {
    return this.parts.reads.sweepInfo();
  }

  // ── RPC: recordings ────────────────────────────────────────────────────────────────────────────

  /** GET .../recordings: for an app that took part (packageName) or the admin (null), while any is kept. */
  async listRecordings(packageName: string | null): Promise<Result<{ recordings: RecordingView[] }>> {
    return this.parts.recordingAccess.list(packageName);
  }

  /** DELETE .../recordings/:id: the app that started the stream, or the admin (null). */
  async deleteRecording(packageName: string | null, recordingId: string): Promise<Result<{ pending: boolean }>> {
    return this.parts.recordingAccess.delete(packageName, recordingId);
  }

  /** The newest ready recording of this stream, or null: for the watch link and the stream's view. */
  async latestRecording(): Promise<RecordingView | null> {
    return this.parts.recordings.latest();
  }

  /** The signed video webhook (already verified by the Worker): a recording of this stream became ready or failed. */
  async applyVideoWebhook(video: RemoteVideo): Promise<{ applied: boolean; reason?: string }> {
    const result = this.parts.recordings.applyWebhook(video);
    await this.parts.s.schedule.arm();
    return result;
  }

  /**
   * For the leak sweep, about a video whose creator names this stream: the stream adopts it if it did not know
   * it yet (a crash before the capture), and says whether to keep it. `delete`: the stream is unknown here (or
   * purged with all its recordings), or the recording is past its retention or deleted by us.
   */
  async sweepRecording(video: RemoteVideo): Promise<"keep" | "delete"> {
    const verdict = this.parts.recordings.sweep(video);
    await this.parts.s.schedule.arm();
    return verdict;
  }
}
