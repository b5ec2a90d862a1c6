// StreamEmulator: an in-memory Cloudflare Stream live-input API (+ control API) behind one fetch().
// Web APIs only, so the same code runs in Node 20 and in workerd. This file routes and owns the clock;
// each concept is its own module: live-inputs.ts, outputs.ts (relays), videos.ts, notifications.ts
// (alerting v3 + where live-input webhooks go), call-log.ts, faults.ts, snapshot.ts (what survives a restart).

import { routeApi, type ApiParts } from "./api-routes.ts";
import { CallLog } from "./call-log.ts";
import { configFrom } from "./config.ts";
import { handleControl } from "./control.ts";
import { ApiError, fromApiError, json } from "./envelope.ts";
import { FaultTable, answerUnderFault } from "./faults.ts";
import { LiveInputs, MAX_STATUS_HISTORY } from "./live-inputs.ts";
import { LiveViewers } from "./live-viewers.ts";
import { Notifications } from "./notifications.ts";
import { Outputs } from "./outputs.ts";
import { PLAYBACK_PREFIX, WORKERD_PLAYBACK_UNAVAILABLE, handlePlayback } from "./playback-http.ts";
import { RateLimiter } from "./rate-limit.ts";
import { RealtimeSfu } from "./realtime/sfu.ts";
import { restoreSnapshot, takeSnapshot, type Snapshot } from "./snapshot.ts";
import type { CallRecord, EmulatorConfig, EmulatorOptions, PlaybackDriver, RelayState, WebRtcDriver } from "./types.ts";
import { VideoLibrary } from "./videos.ts";
import { WebhookSender, type InputError } from "./webhooks.ts";

export { DroppedConnectionError } from "./faults.ts";
export { WHIP_NO_OUTPUTS } from "./outputs.ts";
export type * from "./types.ts";

/** `customer-<CODE>.cloudflarestream.com`: where playback URLs, `/views` and `/lifecycle` live. */
const DELIVERY_HOST = /^customer-[a-z0-9]+\.cloudflarestream\.com$/i;

/** Told about every durable change and every logged API call (the Node server persists them). */
export interface EmulatorObserver {
  changed(): void;
  called(call: CallRecord): void;
  callsCleared(): void;
}

export class StreamEmulator {
  readonly config: EmulatorConfig;
  private readonly initialConfig: EmulatorConfig;
  private readonly now: () => number;
  /** Added to the host's clock: `/__emulator/clock` moves the emulator's time (videos, retention, rate limit). */
  private clockOffsetMs = 0;
  private readonly playbackDriver: PlaybackDriver | undefined;
  private readonly playbackUnavailable: string;
  readonly ingestSessions: () => Record<string, unknown[]>;
  private readonly webrtcDriver: WebRtcDriver | undefined;

  /** The live inputs and their broadcasts (live-inputs.ts). */
  private readonly inputs: LiveInputs;
  /** The inputs' outputs and relays (outputs.ts). */
  private readonly outputs: Outputs;
  /** Webhook destinations and policies (notifications.ts). */
  private readonly notifications: Notifications;
  private readonly calls: CallLog;
  /** What the Cloudflare API's routes reach (api-routes.ts). */
  private readonly api: ApiParts;
  private pending = new Set<Promise<unknown>>();
  readonly faults = new FaultTable();
  readonly rateLimiter: RateLimiter;
  readonly webhooks: WebhookSender;
  /** The account's videos (recordings of live inputs) and its video webhook (videos.ts). */
  readonly videos: VideoLibrary;
  /** The Realtime SFU API under /v1 (realtime/sfu.ts): logged and faulted like the Stream API, own auth and limits. */
  readonly realtime: RealtimeSfu;
  /** Live manifest clients per input: the delivery host's `/views` (live-viewers.ts). */
  readonly liveViewers = new LiveViewers();
  observer: EmulatorObserver | null = null;

  constructor(options: EmulatorOptions = {}) {
    this.config = configFrom(options);
    this.initialConfig = { ...this.config };
    const hostNow = options.now ?? Date.now;
    this.now = () => hostNow() + this.clockOffsetMs;
    this.playbackDriver = options.playback;
    this.playbackUnavailable = options.playbackUnavailable ?? WORKERD_PLAYBACK_UNAVAILABLE;
    this.ingestSessions = options.ingestSessions ?? (() => ({}));
    this.webrtcDriver = options.webrtc;
    this.rateLimiter = new RateLimiter(
      this.config.rateLimitRequests,
      this.config.rateLimitWindowSeconds,
      this.config.rateLimitBlockSeconds,
      this.now,
    );
    this.calls = new CallLog((call) => this.observer?.called(call));
    // Look up globalThis.fetch lazily: tests and workerd may replace it after construction.
    const send = options.sendWebhook ?? ((url: string, init: RequestInit) => globalThis.fetch(url, init));
    this.webhooks = new WebhookSender(send, (p) => this.track(p), this.now);
    this.realtime = new RealtimeSfu({ now: this.now, ...options.realtime });
    this.videos = new VideoLibrary({
      now: this.now,
      config: this.config,
      input: (uid) => this.inputs.get(uid),
      changed: () => this.markChanged(),
      deliver: (url, event, ids, body, headers) => this.webhooks.dispatchRaw(url, event, ids, body, headers),
      track: (p) => this.track(p),
    });
    this.notifications = new Notifications({ config: this.config, webhooks: this.webhooks, iso: () => this.iso(), changed: () => this.markChanged() });
    this.outputs = new Outputs({
      relayDriver: options.relay,
      input: (uid) => this.inputs.get(uid),
      overWhip: (uid) => this.inputs.overWhip(uid),
      changed: () => this.markChanged(),
    });
    this.inputs = new LiveInputs({
      config: this.config,
      now: this.now,
      changed: () => this.markChanged(),
      notify: (uid, event, error) => this.notifications.notify(uid, event, error),
      videos: this.videos,
      outputs: this.outputs,
      kickIngest: options.kickIngest,
    });
    const { realtime, rateLimiter, inputs, outputs, videos, notifications } = this;
    this.api = { config: this.config, realtime, rateLimiter, inputs, outputs, videos, notifications };
  }

  /** The emulator's clock (epoch ms): the host's plus what `/__emulator/clock` added. */
  clockNow(): number {
    return this.now();
  }

  /** Moves the emulator's clock forward (never back), then performs what fell due (videos ready, deletions). */
  advanceClock(ms: number): void {
    if (ms > 0) this.clockOffsetMs += ms;
    this.tick();
  }

  get clockOffset(): number {
    return this.clockOffsetMs;
  }

  /** Performs the video transitions that are due; the Node host calls it on a timer, every request does too. */
  tick(): void {
    this.videos.tick();
  }

  // ---------------------------------------------------------------- HTTP entry

  async fetch(request: Request): Promise<Response> {
    try {
      return await this.dispatch(request);
    } finally {
      // Consume bodies we answered without reading (e.g. 403s): workerd complains about unread request streams.
      if (request.body && !request.bodyUsed) await request.arrayBuffer().catch(() => undefined);
    }
  }

  private async dispatch(request: Request): Promise<Response> {
    const url = new URL(request.url);
    const path = url.pathname;
    if (path === "/healthz") return json({ ok: true });
    this.tick();
    // Cloudflare's delivery host by its own name (workerd routes every outbound fetch here, whatever the
    // host): the same as `/playback/…`.
    const deliveryHost = DELIVERY_HOST.test(url.hostname);
    if (deliveryHost || path === PLAYBACK_PREFIX || path.startsWith(`${PLAYBACK_PREFIX}/`)) {
      return handlePlayback(request, deliveryHost ? `${PLAYBACK_PREFIX}${path}` : path, {
        lookup: (uid) => {
          const input = this.inputs.get(uid);
          if (!input) return null;
          // Over for good: no video open (connected or within its window), and it has recorded one.
          const ended = !input.connected && this.videos.currentVideo(uid) === null && [...this.videos.videos.values()].some((v) => v.liveInput === uid);
          return { enabled: input.enabled, connected: input.connected, overWhip: this.inputs.overWhip(uid), ended };
        },
        video: (uid) => this.videos.videos.has(uid),
        driver: this.playbackDriver,
        unavailable: this.playbackUnavailable,
        viewers: this.liveViewers,
        currentVideo: (uid) => this.videos.currentVideo(uid)?.videoUid ?? null,
        now: () => this.now(),
        webrtc: {
          driver: this.webrtcDriver,
          whipTarget: (secret) => this.whipPublisher(secret),
          input: (uid) => {
            const input = this.inputs.get(uid);
            return input ? { connected: input.connected, overWhip: this.inputs.overWhip(uid) } : null;
          },
        },
      });
    }
    if (path === "/__emulator" || path.startsWith("/__emulator/")) {
      try {
        return await handleControl(this, request, url);
      } catch (e) {
        if (e instanceof ApiError) return fromApiError(e);
        throw e;
      }
    }
    return this.handleApiCall(request, path);
  }

  /** Resolves when background work started so far (webhook deliveries) has settled. */
  async settled(): Promise<void> {
    while (this.pending.size > 0) await Promise.allSettled([...this.pending]);
  }

  private track(p: Promise<unknown>): void {
    this.pending.add(p);
    void p.finally(() => this.pending.delete(p));
  }

  // ---------------------------------------------------------------- Cloudflare API

  /** Every API call is logged, and answered under the fault it draws (faults.ts). */
  private async handleApiCall(request: Request, path: string): Promise<Response> {
    const started = Date.now();
    const time = new Date(this.now()).toISOString();
    const method = request.method.toUpperCase();
    const fault = this.faults.take(method, path);
    return answerUnderFault(fault, () => routeApi(this.api, request, path), (status) => {
      const call: CallRecord = { method, path, status, time, durationMs: Date.now() - started };
      const query = new URL(request.url).search;
      if (query) call.query = query;
      if (fault) call.fault = fault.id;
      this.calls.add(call);
    });
  }

  // ---------------------------------------------------------------- ingest (live-inputs.ts)

  /** Marks a live input connected (RTMP publish started). False if unknown or disabled. */
  connect(uid: string, via: "rtmp" | "whip" = "rtmp"): boolean {
    return this.inputs.connect(uid, via);
  }

  /** Marks a live input disconnected. False if unknown; no-op (true) if not connected. */
  disconnect(uid: string, reason = "client_disconnect"): boolean {
    return this.inputs.disconnect(uid, reason);
  }

  /** Returns the live input uid the publish was accepted for, or null (unknown key or disabled input). */
  connectByStreamKey(streamKey: string): string | null {
    return this.inputs.connectByStreamKey(streamKey);
  }

  /** The input a WHIP publish to `<host>/<secret>/webRTC/publish` is for, or null for no such secret. */
  whipPublisher(secret: string): { uid: string; streamKey: string; enabled: boolean } | null {
    return this.inputs.whipPublisher(secret);
  }

  /** Who an SRT publish with this `streamid` is for (Node SRT ingest), or null for none. */
  srtPublisher(srtStreamId: string): { uid: string; streamKey: string; passphrase: string; enabled: boolean } | null {
    return this.inputs.srtPublisher(srtStreamId);
  }

  disconnectByStreamKey(streamKey: string): boolean {
    return this.inputs.disconnectByStreamKey(streamKey);
  }

  /** Fires live_input.errored (the connection state is left as is). False if unknown. */
  erroredInput(uid: string, error: InputError): boolean {
    if (!this.inputs.get(uid)) return false;
    this.notifications.notify(uid, "live_input.errored", error);
    return true;
  }

  /** Injects or reports a relay state. "idle"/"error" stop a running driver relay. False if unknown. */
  setRelayState(outputUid: string, state: RelayState, lastError: string | null = null): boolean {
    return this.outputs.setRelayState(outputUid, state, lastError);
  }

  /** Clears inputs, outputs, calls, faults, rate-limit counters and webhook log; config too if asked. */
  reset(options: { config?: boolean } = {}): void {
    this.outputs.stopAll();
    this.inputs.clear();
    this.outputs.records.clear();
    this.notifications.clear();
    this.videos.clear();
    this.liveViewers.clear();
    this.clockOffsetMs = 0;
    this.calls.clear();
    this.faults.clear();
    this.webhooks.clear();
    this.realtime.reset();
    if (options.config) Object.assign(this.config, this.initialConfig);
    this.applyRateLimitConfig();
    this.observer?.callsCleared();
    this.markChanged();
  }

  // ---------------------------------------------------------------- persistence (snapshot.ts)

  /** Call after any durable change (inputs, outputs, idempotency keys, config). */
  markChanged(): void {
    this.observer?.changed();
  }

  /** The durable state, to be serialized at once. */
  snapshotForDisk(): Snapshot {
    const parts = {
      config: this.config,
      startupConfig: this.initialConfig,
      inputs: this.inputs.records,
      outputs: this.outputs.records,
      idempotency: this.inputs.idempotency,
      alerting: this.notifications.state,
      videos: this.videos,
    };
    return takeSnapshot(parts, this.iso());
  }

  /**
   * Replaces all state with what an earlier process saved (before any request is served). Inputs that
   * were connected come back disconnected, since their ingest sessions died with that process; their uids
   * are returned, for announceDisconnected() once the server is up.
   */
  restore(snapshot: Snapshot, calls: CallRecord[]): string[] {
    const restored = restoreSnapshot(snapshot, calls, this.iso(), this.now(), MAX_STATUS_HISTORY);
    this.inputs.records = restored.inputs;
    this.outputs.records = restored.outputs;
    this.inputs.byStreamKey = restored.byStreamKey;
    this.inputs.idempotency = restored.idempotency;
    this.notifications.state = restored.alerting;
    this.videos.restore(restored.videos, restored.videoWebhook);
    this.videos.closeOpenSessions(this.now());
    this.calls.restore(restored.calls);
    Object.assign(this.config, restored.overrides);
    this.applyRateLimitConfig();
    return restored.disconnected;
  }

  /** Sends live_input.disconnected for inputs restore() disconnected, retrying until the receiver is up. */
  announceDisconnected(uids: string[], retryForMs: number): void {
    this.notifications.announceDisconnected(uids, retryForMs, (uid) => this.inputs.get(uid)?.connected === true);
  }

  // ---------------------------------------------------------------- control-API helpers

  /** Snapshot for GET /__emulator/state. */
  snapshot(): unknown {
    return {
      inputs: [...this.inputs.records.values()].map((input) => ({
        ...this.inputs.render(input),
        connected: input.connected,
        outputs: this.outputs.rendered(input),
        // Emulator-only: whether ffmpeg is packaging this input's ingest (null: not, or no playback driver).
        playback: this.playbackDriver?.status(input.uid) ?? null,
      })),
      webhook: this.config.webhookUrl ? { url: this.config.webhookUrl } : null,
      alerting: this.notifications.view(),
      rateLimit: this.rateLimiter.snapshot(),
      // Every video, rendered as the API does, with the emulator's view: which input is recording into which.
      videos: [...this.videos.videos.values()].map((v) => this.videos.render(v)),
      webhookVideo: this.videos.webhook ? { notificationUrl: this.videos.webhook.notificationUrl, secret: this.videos.webhook.secret } : null,
      clock: { now: this.iso(), offsetMs: this.clockOffsetMs },
    };
  }

  callLog(sinceMs?: number): CallRecord[] {
    return this.calls.list(sinceMs);
  }

  clearCalls(): void {
    this.calls.clear();
    this.observer?.callsCleared();
  }

  hasInput(uid: string): boolean {
    return this.inputs.get(uid) !== undefined;
  }

  /** Re-reads rate-limit numbers from config (after POST /__emulator/config or reset). */
  applyRateLimitConfig(): void {
    this.rateLimiter.requests = this.config.rateLimitRequests;
    this.rateLimiter.windowSeconds = this.config.rateLimitWindowSeconds;
    this.rateLimiter.blockSeconds = this.config.rateLimitBlockSeconds;
    this.rateLimiter.reset();
  }

  private iso(): string {
    return new Date(this.now()).toISOString();
  }
}
