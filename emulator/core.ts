// StreamEmulator: an in-memory Cloudflare Stream live-input API (+ control API) behind one fetch().
// Web APIs only, so the same code runs in Node 20 and in workerd.

import {
  DESTINATION_TEST_BODY,
  STREAM_LIVE_ALERT_TYPE,
  applyPolicyPatch,
  checkStreamLiveFilters,
  emptyAlerting,
  newDestination,
  newPolicy,
  parseDestinationBody,
  parsePolicyBody,
  policyMatches,
  renderDestination,
  renderPolicy,
  type AlertingState,
} from "./alerting.ts";
import { handleControl } from "./control.ts";
import { ApiError, ErrorCode, codeForStatus, errorBody, fromApiError, json, ok, readJsonObject } from "./envelope.ts";
import { DroppedConnectionError, FaultTable, type Fault } from "./faults.ts";
import { uid as newUid } from "./ids.ts";
import { PLAYBACK_PREFIX, WORKERD_PLAYBACK_UNAVAILABLE, handlePlayback } from "./playback-http.ts";
import { RateLimiter } from "./rate-limit.ts";
import { RealtimeSfu } from "./realtime/sfu.ts";
import { restoreSnapshot, takeSnapshot, type Snapshot } from "./snapshot.ts";
import {
  applyPatch,
  newLiveInput,
  parseLiveInputBody,
  parseOutputCreate,
  parseOutputUpdate,
  renderListItem,
  renderLiveInput,
  renderOutput,
  rotateKeys,
} from "./state.ts";
import type {
  CallRecord,
  EmulatorConfig,
  EmulatorOptions,
  LiveInputRecord,
  OutputRecord,
  PlaybackDriver,
  RelayDriver,
  RelayState,
  WebRtcDriver,
} from "./types.ts";
import { NO_METHOD, VideoLibrary } from "./videos.ts";
import { LiveViewers } from "./live-viewers.ts";

/** `customer-<CODE>.cloudflarestream.com`: where playback URLs, `/views` and `/lifecycle` live. */
const DELIVERY_HOST = /^customer-[a-z0-9]+\.cloudflarestream\.com$/i;
import { WebhookSender, type InputError, type LiveInputEvent, type WebhookTarget } from "./webhooks.ts";

export { DroppedConnectionError } from "./faults.ts";
export type * from "./types.ts";
export type { VideoEvent, VideoListener, VideoMedia } from "./videos.ts";

const MAX_OUTPUTS_PER_INPUT = 10;
const MAX_CALL_LOG = 50_000;
const MAX_STATUS_HISTORY = 50;
const IDEMPOTENCY_TTL_MS = 6 * 3600 * 1000; // Cloudflare keeps keys six hours
/** What an output of a WHIP-connected input reports (Cloudflare does not simulcast WebRTC inputs). */
export const WHIP_NO_OUTPUTS = "Simulcast is not supported for WebRTC (WHIP) inputs: the output does not relay";
const RELAY_STATES: readonly RelayState[] = ["idle", "connecting", "active", "error"];

function configFrom(o: EmulatorOptions): EmulatorConfig {
  const windowSeconds = o.rateLimit?.windowSeconds ?? 300;
  return {
    apiToken: o.apiToken ?? "local-dev-token",
    accountId: o.accountId ?? "local-account",
    rtmpIngestUrl: o.rtmpIngestUrl ?? "rtmp://127.0.0.1:1935/live/",
    srtIngestUrl: o.srtIngestUrl ?? "srt://127.0.0.1:8890",
    // The customer host's stand-in: playback-http.ts serves it under /playback.
    publicBaseUrl: o.publicBaseUrl ?? `http://127.0.0.1:8788${PLAYBACK_PREFIX}`,
    rateLimitRequests: o.rateLimit?.requests ?? 1200,
    rateLimitWindowSeconds: windowSeconds,
    rateLimitBlockSeconds: o.rateLimit?.blockSeconds ?? windowSeconds,
    maxLiveInputs: o.maxLiveInputs ?? 1000,
    webhookUrl: o.webhook?.url ?? null,
    webhookSecret: o.webhook?.secret ?? "",
    statusShape: o.statusShape ?? "object",
    verifyWebhookDestinations: o.verifyWebhookDestinations ?? true,
    videoReadyDelaySeconds: o.videoReadyDelaySeconds ?? 10,
    defaultRecordingTimeoutSeconds: o.defaultRecordingTimeoutSeconds ?? 0,
    storageMinutesLimit: o.storageMinutesLimit ?? 100_000,
  };
}

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
  private readonly relayDriver: RelayDriver | undefined;
  private readonly kickIngest: ((streamKey: string) => void) | undefined;
  private readonly playbackDriver: PlaybackDriver | undefined;
  private readonly playbackUnavailable: string;
  readonly ingestSessions: () => Record<string, unknown[]>;
  private readonly webrtcDriver: WebRtcDriver | undefined;

  private inputs = new Map<string, LiveInputRecord>();
  private outputs = new Map<string, OutputRecord>();
  private byStreamKey = new Map<string, string>();
  /** Inputs whose current broadcast came over WHIP (not persisted: no broadcast survives a restart). */
  private whipConnected = new Set<string>();
  private idempotency = new Map<string, { uid: string; expiresAt: number }>();
  private alerting: AlertingState = emptyAlerting();
  private calls: CallRecord[] = [];
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
    this.relayDriver = options.relay;
    this.kickIngest = options.kickIngest;
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
          return { enabled: input.enabled, connected: input.connected, overWhip: this.whipConnected.has(uid), ended };
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
            return input ? { connected: input.connected, overWhip: this.whipConnected.has(uid) } : null;
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

  private async handleApiCall(request: Request, path: string): Promise<Response> {
    const started = Date.now();
    const time = new Date(this.now()).toISOString();
    const method = request.method.toUpperCase();
    const fault = this.faults.take(method, path);
    const record = (status: number) => {
      const call: CallRecord = { method, path, status, time, durationMs: Date.now() - started };
      const query = new URL(request.url).search;
      if (query) call.query = query;
      if (fault) call.fault = fault.id;
      this.calls.push(call);
      if (this.calls.length > MAX_CALL_LOG) this.calls.splice(0, this.calls.length - MAX_CALL_LOG);
      this.observer?.called(call);
    };

    if (fault && fault.delayMs > 0) await sleep(fault.delayMs);
    const replaces = fault !== null && (fault.status !== null || fault.drop);
    let response: Response | null = null;
    // A faulted status/drop skips the operation, unless afterEffect asks to perform it first.
    if (!replaces || fault.afterEffect) response = await this.routeApi(request, path);
    if (fault && fault.answerDelayMs > 0) await sleep(fault.answerDelayMs);
    if (replaces) {
      if (fault.drop) {
        record(0);
        throw new DroppedConnectionError();
      }
      response = faultResponse(fault);
    }
    record(response!.status);
    return response!;
  }

  private async routeApi(request: Request, path: string): Promise<Response> {
    const realtime = await this.realtime.handle(request, path);
    if (realtime) return realtime;
    try {
      if (!path.startsWith("/client/v4/")) throw new ApiError(404, ErrorCode.NoRoute, `Could not route to ${path}`);
      this.authenticate(request);
      const m = /^\/client\/v4\/accounts\/([^/]+)\/stream\/live_inputs(?:\/([^/]+)(?:\/(outputs|rotate_keys|videos)(?:\/([^/]+))?)?)?\/?$/.exec(path);
      // Videos: /stream, /stream/:uid, /stream/webhook, /stream/storage-usage (anything under /stream but live_inputs).
      const video = m ? null : /^\/client\/v4\/accounts\/([^/]+)\/stream(\/.*)?$/.exec(path);
      const alerting = /^\/client\/v4\/accounts\/([^/]+)\/alerting\/v3\/(destinations\/webhooks|policies)(?:\/([^/]+))?\/?$/.exec(path);
      const account = m?.[1] ?? alerting?.[1] ?? video?.[1];
      if (account !== undefined && account !== this.config.accountId) throw new ApiError(403, ErrorCode.Authentication, "Authentication error");
      const retryAfter = this.rateLimiter.take();
      if (retryAfter !== null) {
        throw new ApiError(429, ErrorCode.RateLimited, "Please wait and consider throttling your request speed", {
          "retry-after": String(retryAfter),
        });
      }
      const noRoute = () => new ApiError(404, ErrorCode.NoRoute, `Could not route to ${path}, perhaps your object identifier is invalid?`);
      const method = request.method.toUpperCase();
      if (alerting) {
        const [, , kind, id] = alerting;
        const answer = kind === "policies" ? await this.routePolicies(method, id, request) : await this.routeDestinations(method, id, request);
        if (answer) return answer;
        throw new ApiError(405, ErrorCode.MethodNotAllowed, `Method ${method} not allowed on ${path}`);
      }
      if (video) {
        const result = await this.videos.route(method, video[2] ?? "", new URL(request.url), request);
        if (result !== NO_METHOD) return ok(result);
        throw new ApiError(405, ErrorCode.MethodNotAllowed, `Method ${method} not allowed on ${path}`);
      }
      if (!m) throw noRoute();
      const [, , inputId, sub, outputId] = m;
      const outputs = sub === "outputs";
      if (sub === "videos") {
        if (outputId) throw noRoute();
        // The input's own listing: gone with the input (its videos are not: GET /stream?live_input_id= finds them).
        if (method === "GET") return ok(this.videos.listForInput(this.requireInput(inputId!).uid, new URL(request.url).searchParams));
      } else if (sub === "rotate_keys") {
        if (outputId) throw noRoute();
        if (method === "POST") return this.rotateInputKeys(inputId!);
      } else if (!inputId) {
        if (method === "POST") return await this.createInput(request);
        if (method === "GET") return this.listInputs();
      } else if (!outputs) {
        if (method === "GET") return ok(this.renderInput(this.requireInput(inputId)));
        if (method === "PUT") return await this.updateInput(inputId, request);
        if (method === "DELETE") return this.deleteInput(inputId);
      } else if (!outputId) {
        if (method === "POST") return await this.createOutput(inputId, request);
        if (method === "GET") return ok(this.requireInput(inputId).outputs.map((o) => renderOutput(this.outputs.get(o)!)));
      } else {
        if (method === "PUT") return await this.updateOutput(inputId, outputId, request);
        if (method === "DELETE") return this.deleteOutput(inputId, outputId);
      }
      throw new ApiError(405, ErrorCode.MethodNotAllowed, `Method ${method} not allowed on ${path}`);
    } catch (e) {
      if (e instanceof ApiError) return fromApiError(e);
      throw e;
    }
  }

  private authenticate(request: Request): void {
    const header = request.headers.get("authorization") ?? "";
    const match = /^Bearer\s+(.+)$/i.exec(header.trim());
    if (!match || match[1] !== this.config.apiToken) {
      throw new ApiError(403, ErrorCode.Authentication, "Authentication error");
    }
  }

  private requireInput(id: string): LiveInputRecord {
    const input = this.inputs.get(id);
    if (!input) throw new ApiError(404, ErrorCode.NotFound, `Live input not found: ${id}`);
    return input;
  }

  private requireOutput(inputId: string, outputId: string): OutputRecord {
    this.requireInput(inputId);
    const output = this.outputs.get(outputId);
    if (!output || output.inputUid !== inputId) throw new ApiError(404, ErrorCode.NotFound, `Output not found: ${outputId}`);
    return output;
  }

  private renderInput(input: LiveInputRecord): Record<string, unknown> {
    const last = input.statusHistory[input.statusHistory.length - 1];
    if (input.connected && last) last.statusLastSeen = this.iso();
    return renderLiveInput(input, this.config);
  }

  private async createInput(request: Request): Promise<Response> {
    const key = request.headers.get("idempotency-key");
    const patch = parseLiveInputBody(await readJsonObject(request));
    if (key !== null) {
      if (new TextEncoder().encode(key).length > 255) throw new ApiError(400, ErrorCode.Validation, "Idempotency-Key must be at most 255 bytes");
      const seen = this.idempotency.get(key);
      if (seen && seen.expiresAt > this.now()) {
        const existing = this.inputs.get(seen.uid);
        if (!existing) throw new ApiError(409, ErrorCode.IdempotencyConflict, "Idempotency-Key was used for a live input that has been deleted");
        return ok(this.renderInput(existing));
      }
    }
    if (this.inputs.size >= this.config.maxLiveInputs) {
      throw new ApiError(400, ErrorCode.Limit, `Live input limit reached: an account may have at most ${this.config.maxLiveInputs} live inputs`);
    }
    const input = newLiveInput(patch, this.iso());
    this.inputs.set(input.uid, input);
    this.byStreamKey.set(input.streamKey, input.uid);
    if (key !== null) this.idempotency.set(key, { uid: input.uid, expiresAt: this.now() + IDEMPOTENCY_TTL_MS });
    this.markChanged();
    return ok(this.renderInput(input));
  }

  private listInputs(): Response {
    const items = [...this.inputs.values()].map(renderListItem);
    return ok({ liveInputs: items, range: items.length, total: items.length });
  }

  private async updateInput(id: string, request: Request): Promise<Response> {
    const input = this.requireInput(id);
    const patch = parseLiveInputBody(await readJsonObject(request));
    applyPatch(input, patch, this.iso());
    // A disabled input refuses broadcasts, so an ongoing one ends.
    if (!input.enabled && input.connected) this.endBroadcast(input);
    this.markChanged();
    return ok(this.renderInput(input));
  }

  /**
   * POST .../rotate_keys: new RTMPS stream key, SRT passphrase and WebRTC secret; the old ones stop working
   * at once, and a broadcast using them is ended (Cloudflare: "shortly after rotation").
   */
  private rotateInputKeys(id: string): Response {
    const input = this.requireInput(id);
    if (input.connected) this.endBroadcast(input);
    const oldKey = rotateKeys(input, this.iso());
    this.byStreamKey.delete(oldKey);
    this.byStreamKey.set(input.streamKey, input.uid);
    this.markChanged();
    return ok(this.renderInput(input));
  }

  private deleteInput(id: string): Response {
    const input = this.requireInput(id);
    if (input.connected) this.endBroadcast(input);
    for (const oid of input.outputs) this.removeOutput(oid);
    this.inputs.delete(id);
    this.videos.inputDeleted(id);
    this.byStreamKey.delete(input.streamKey);
    this.markChanged();
    return ok(null);
  }

  private async createOutput(inputId: string, request: Request): Promise<Response> {
    const input = this.requireInput(inputId);
    const body = parseOutputCreate(await readJsonObject(request));
    if (input.outputs.length >= MAX_OUTPUTS_PER_INPUT) {
      throw new ApiError(400, ErrorCode.Limit, `Output limit reached: a live input may have at most ${MAX_OUTPUTS_PER_INPUT} outputs`);
    }
    const output: OutputRecord = {
      uid: newUid(),
      inputUid: inputId,
      url: body.url,
      streamKey: body.streamKey,
      enabled: body.enabled,
      relay: { state: "idle", lastError: null },
      relayGeneration: 0,
      driverRunning: false,
    };
    this.outputs.set(output.uid, output);
    input.outputs.push(output.uid);
    this.syncRelay(output, true);
    this.markChanged();
    return ok(renderOutput(output));
  }

  private async updateOutput(inputId: string, outputId: string, request: Request): Promise<Response> {
    const output = this.requireOutput(inputId, outputId);
    const { enabled } = parseOutputUpdate(await readJsonObject(request));
    output.enabled = enabled;
    this.syncRelay(output, enabled);
    this.markChanged();
    return ok(renderOutput(output));
  }

  private deleteOutput(inputId: string, outputId: string): Response {
    const input = this.requireInput(inputId);
    this.requireOutput(inputId, outputId);
    this.removeOutput(outputId);
    input.outputs = input.outputs.filter((o) => o !== outputId);
    this.markChanged();
    return ok(null);
  }

  private removeOutput(outputId: string): void {
    const output = this.outputs.get(outputId);
    if (!output) return;
    this.stopDriverRelay(output);
    this.outputs.delete(outputId);
  }

  // ---------------------------------------------------------------- Notifications (alerting v3, alerting.ts)

  private async routeDestinations(method: string, id: string | undefined, request: Request): Promise<Response | null> {
    const { destinations, policies } = this.alerting;
    if (id === undefined) {
      if (method === "GET") return ok([...destinations.values()].map(renderDestination));
      if (method !== "POST") return null;
      const fields = parseDestinationBody(await readJsonObject(request));
      await this.testDestination(fields.url, fields.secret);
      const created = newDestination(fields, this.iso());
      destinations.set(created.id, created);
      this.markChanged();
      return ok({ id: created.id });
    }
    const existing = destinations.get(id);
    if (!existing) throw new ApiError(404, ErrorCode.NotFound, `Webhook destination not found: ${id}`);
    if (method === "GET") return ok(renderDestination(existing));
    if (method === "PUT") {
      // The SDK's WebhookUpdateParams: name and url required, secret optional (absent: unchanged).
      const body = await readJsonObject(request);
      const fields = parseDestinationBody(body);
      const secret = body.secret === undefined ? existing.secret : fields.secret;
      await this.testDestination(fields.url, secret);
      destinations.set(id, { ...existing, name: fields.name, url: fields.url, secret });
      this.markChanged();
      return ok({ id });
    }
    if (method === "DELETE") {
      destinations.delete(id);
      // A policy keeps no reference to a destination that is gone.
      for (const [pid, p] of policies) {
        if (p.mechanisms.webhooks?.some((w) => w.id === id)) {
          policies.set(pid, { ...p, mechanisms: { ...p.mechanisms, webhooks: p.mechanisms.webhooks.filter((w) => w.id !== id) } });
        }
      }
      this.markChanged();
      return ok(null);
    }
    return null;
  }

  /** Cloudflare tests a generic webhook on create and update; the emulator does too, unless config turns it off. */
  private async testDestination(url: string, secret: string | null): Promise<void> {
    if (!this.config.verifyWebhookDestinations) return;
    const result = await this.webhooks.testDestination(url, secret, DESTINATION_TEST_BODY);
    if (!result.ok) {
      throw new ApiError(400, ErrorCode.DestinationTestFailed, `Webhook test failed: ${url} answered the test message with ${result.detail} (a 2xx is required)`);
    }
  }

  private async routePolicies(method: string, id: string | undefined, request: Request): Promise<Response | null> {
    const { destinations, policies } = this.alerting;
    if (id === undefined) {
      if (method === "GET") return ok([...policies.values()].map(renderPolicy));
      if (method !== "POST") return null;
      const created = newPolicy(parsePolicyBody(await readJsonObject(request), true, destinations), this.iso());
      checkStreamLiveFilters(created);
      policies.set(created.id, created);
      this.markChanged();
      return ok({ id: created.id });
    }
    const existing = policies.get(id);
    if (!existing) throw new ApiError(404, ErrorCode.NotFound, `Notification policy not found: ${id}`);
    if (method === "GET") return ok(renderPolicy(existing));
    if (method === "PUT") {
      const updated = applyPolicyPatch(existing, parsePolicyBody(await readJsonObject(request), false, destinations), this.iso());
      checkStreamLiveFilters(updated);
      policies.set(id, updated);
      this.markChanged();
      return ok({ id });
    }
    if (method === "DELETE") {
      policies.delete(id);
      this.markChanged();
      return ok(null);
    }
    return null;
  }

  /**
   * Where a live-input event goes. With at least one stream_live_notifications policy configured, exactly
   * where the policies say (each matching, enabled policy → each of its webhook destinations, with that
   * destination's secret), as at Cloudflare. With none, the built-in policy: the configured webhookUrl.
   */
  private webhookTargets(uid: string, event: LiveInputEvent): WebhookTarget[] {
    const livePolicies = [...this.alerting.policies.values()].filter((p) => p.alertType === STREAM_LIVE_ALERT_TYPE);
    if (livePolicies.length === 0) return this.config.webhookUrl ? [{ url: this.config.webhookUrl, secret: this.config.webhookSecret }] : [];
    const targets: WebhookTarget[] = [];
    for (const policy of livePolicies) {
      if (!policyMatches(policy, uid, event)) continue;
      for (const { id } of policy.mechanisms.webhooks ?? []) {
        const destination = this.alerting.destinations.get(id);
        if (!destination) continue;
        targets.push({
          url: destination.url,
          secret: destination.secret,
          policy: { id: policy.id, name: policy.name, accountId: this.config.accountId },
          onResult: (delivered, at) => {
            if (delivered) destination.lastSuccess = at;
            else destination.lastFailure = at;
          },
        });
      }
    }
    return targets;
  }

  // ---------------------------------------------------------------- ingest simulation

  /** Marks a live input connected (RTMP publish started). False if unknown or disabled. */
  connect(uid: string, via: "rtmp" | "whip" = "rtmp"): boolean {
    const input = this.inputs.get(uid);
    if (!input || !input.enabled) return false;
    if (via === "whip") this.whipConnected.add(uid);
    else this.whipConnected.delete(uid);
    const nowIso = this.iso();
    if (input.connected) {
      const last = input.statusHistory[input.statusHistory.length - 1];
      if (last) last.statusLastSeen = nowIso;
      return true;
    }
    input.connected = true;
    this.pushStatus(input, { state: "connected", reason: null, statusEnteredAt: nowIso, statusLastSeen: nowIso });
    this.markChanged();
    this.notify(input.uid, "live_input.connected");
    this.videos.connected(input);
    // A new broadcast restarts every enabled relay, clearing sticky errors.
    for (const oid of input.outputs) this.syncRelay(this.outputs.get(oid)!, true);
    return true;
  }

  /** Marks a live input disconnected. False if unknown; no-op (true) if not connected. */
  disconnect(uid: string, reason = "client_disconnect"): boolean {
    const input = this.inputs.get(uid);
    if (!input) return false;
    this.whipConnected.delete(uid);
    if (!input.connected) return true;
    input.connected = false;
    const nowIso = this.iso();
    this.pushStatus(input, { state: "disconnected", reason, statusEnteredAt: nowIso, statusLastSeen: nowIso });
    for (const oid of input.outputs) this.syncRelay(this.outputs.get(oid)!, false);
    this.markChanged();
    this.notify(input.uid, "live_input.disconnected");
    this.videos.disconnected(input.uid);
    return true;
  }

  /** Returns the live input uid the publish was accepted for, or null (unknown key or disabled input). */
  connectByStreamKey(streamKey: string): string | null {
    const uid = this.byStreamKey.get(streamKey);
    return uid !== undefined && this.connect(uid) ? uid : null;
  }

  /** The input a WHIP publish to `<host>/<secret>/webRTC/publish` is for, or null for no such secret. */
  whipPublisher(secret: string): { uid: string; streamKey: string; enabled: boolean } | null {
    for (const input of this.inputs.values()) {
      if (input.webRtcSecret === secret) return { uid: input.uid, streamKey: input.streamKey, enabled: input.enabled };
    }
    return null;
  }

  /** Who an SRT publish with this `streamid` is for (Node SRT ingest), or null for none. */
  srtPublisher(srtStreamId: string): { uid: string; streamKey: string; passphrase: string; enabled: boolean } | null {
    for (const input of this.inputs.values()) {
      if (input.srtStreamId === srtStreamId) return { uid: input.uid, streamKey: input.streamKey, passphrase: input.srtPassphrase, enabled: input.enabled };
    }
    return null;
  }

  disconnectByStreamKey(streamKey: string): boolean {
    const uid = this.byStreamKey.get(streamKey);
    return uid !== undefined && this.disconnect(uid);
  }

  /** Fires live_input.errored (the connection state is left as is). False if unknown. */
  erroredInput(uid: string, error: InputError): boolean {
    if (!this.inputs.has(uid)) return false;
    this.notify(uid, "live_input.errored", error);
    return true;
  }

  /** Injects or reports a relay state. "idle"/"error" stop a running driver relay. False if unknown. */
  setRelayState(outputUid: string, state: RelayState, lastError: string | null = null): boolean {
    const output = this.outputs.get(outputUid);
    if (!output || !RELAY_STATES.includes(state)) return false;
    if (state === "idle" || state === "error") this.stopDriverRelay(output);
    output.relay = { state, lastError };
    return true;
  }

  /** Clears inputs, outputs, calls, faults, rate-limit counters and webhook log; config too if asked. */
  reset(options: { config?: boolean } = {}): void {
    for (const output of this.outputs.values()) this.stopDriverRelay(output);
    for (const input of this.inputs.values()) if (input.connected) this.kickIngest?.(input.streamKey);
    this.inputs.clear();
    this.outputs.clear();
    this.byStreamKey.clear();
    this.whipConnected.clear();
    this.idempotency.clear();
    this.alerting = emptyAlerting();
    this.videos.clear();
    this.liveViewers.clear();
    this.clockOffsetMs = 0;
    this.calls = [];
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
      inputs: this.inputs,
      outputs: this.outputs,
      idempotency: this.idempotency,
      alerting: this.alerting,
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
    this.inputs = restored.inputs;
    this.outputs = restored.outputs;
    this.byStreamKey = restored.byStreamKey;
    this.idempotency = restored.idempotency;
    this.alerting = restored.alerting;
    this.videos.restore(restored.videos, restored.videoWebhook);
    this.videos.closeOpenSessions(this.now());
    this.calls = restored.calls.slice(-MAX_CALL_LOG);
    Object.assign(this.config, restored.overrides);
    this.applyRateLimitConfig();
    return restored.disconnected;
  }

  /** Sends live_input.disconnected for inputs restore() disconnected, retrying until the receiver is up. */
  announceDisconnected(uids: string[], retryForMs: number): void {
    for (const uid of uids) {
      if (this.inputs.get(uid)?.connected) continue;
      for (const target of this.webhookTargets(uid, "live_input.disconnected")) this.webhooks.dispatch(target, uid, "live_input.disconnected", undefined, retryForMs);
    }
  }

  private endBroadcast(input: LiveInputRecord): void {
    this.disconnect(input.uid);
    this.kickIngest?.(input.streamKey);
  }

  private pushStatus(input: LiveInputRecord, entry: LiveInputRecord["statusHistory"][number]): void {
    const prev = input.statusHistory[input.statusHistory.length - 1];
    if (prev) prev.statusLastSeen = entry.statusEnteredAt;
    input.statusHistory.push(entry);
    if (input.statusHistory.length > MAX_STATUS_HISTORY) input.statusHistory.shift();
  }

  private notify(uid: string, event: LiveInputEvent, error?: InputError): void {
    for (const target of this.webhookTargets(uid, event)) this.webhooks.dispatch(target, uid, event, error);
  }

  // ---------------------------------------------------------------- relays

  /** Brings an output's relay in line with (input connected && output enabled). */
  private syncRelay(output: OutputRecord, clearError: boolean): void {
    const input = this.inputs.get(output.inputUid);
    if (!input?.connected || !output.enabled) {
      this.stopDriverRelay(output);
      if (output.relay.state !== "idle") output.relay = { state: "idle", lastError: output.relay.lastError };
      return;
    }
    const { state } = output.relay;
    if (state === "active" || state === "connecting") return;
    if (state === "error" && !clearError) return; // errors stick until the next connect/enable
    this.startRelay(input, output);
  }

  private startRelay(input: LiveInputRecord, output: OutputRecord): void {
    this.stopDriverRelay(output);
    if (this.whipConnected.has(input.uid)) {
      // Cloudflare: "Simulcast is not supported for WHIP inputs". The output exists and never relays.
      output.relay = { state: "error", lastError: WHIP_NO_OUTPUTS };
      return;
    }
    const driver = this.relayDriver;
    if (!driver) {
      output.relay = { state: "active", lastError: null };
      return;
    }
    const generation = ++output.relayGeneration;
    output.relay = { state: "connecting", lastError: null };
    output.driverRunning = true;
    driver.start(
      { outputUid: output.uid, inputUid: input.uid, inputStreamKey: input.streamKey, url: output.url, streamKey: output.streamKey },
      (state, lastError) => {
        // Ignore reports from a relay that has since been stopped or restarted.
        if (output.relayGeneration !== generation || this.outputs.get(output.uid) !== output) return;
        if (state === "idle" || state === "error") output.driverRunning = false;
        output.relay = { state, lastError };
      },
    );
  }

  private stopDriverRelay(output: OutputRecord): void {
    output.relayGeneration++;
    if (!output.driverRunning) return;
    output.driverRunning = false;
    this.relayDriver?.stop(output.uid);
  }

  // ---------------------------------------------------------------- control-API helpers

  /** Snapshot for GET /__emulator/state. */
  snapshot(): unknown {
    return {
      inputs: [...this.inputs.values()].map((input) => ({
        ...this.renderInput(input),
        connected: input.connected,
        outputs: input.outputs.map((o) => renderOutput(this.outputs.get(o)!)),
        // Emulator-only: whether ffmpeg is packaging this input's ingest (null: not, or no playback driver).
        playback: this.playbackDriver?.status(input.uid) ?? null,
      })),
      webhook: this.config.webhookUrl ? { url: this.config.webhookUrl } : null,
      // Emulator-only view: secrets included (the API never returns them).
      alerting: {
        destinations: [...this.alerting.destinations.values()].map((d) => ({ ...renderDestination(d), secret: d.secret })),
        policies: [...this.alerting.policies.values()].map(renderPolicy),
        // Which decides where live-input webhooks go: a configured policy, or the built-in one (webhookUrl).
        liveInputWebhooks: [...this.alerting.policies.values()].some((p) => p.alertType === STREAM_LIVE_ALERT_TYPE)
          ? "policies"
          : this.config.webhookUrl
            ? "webhookUrl"
            : "off",
      },
      rateLimit: this.rateLimiter.snapshot(),
      // Every video, rendered as the API does, with the emulator's view: which input is recording into which.
      videos: [...this.videos.videos.values()].map((v) => this.videos.render(v)),
      webhookVideo: this.videos.webhook ? { notificationUrl: this.videos.webhook.notificationUrl, secret: this.videos.webhook.secret } : null,
      clock: { now: this.iso(), offsetMs: this.clockOffsetMs },
    };
  }

  callLog(sinceMs?: number): CallRecord[] {
    const all = this.calls.map((c) => ({ ...c }));
    return sinceMs === undefined ? all : all.filter((c) => Date.parse(c.time) >= sinceMs);
  }

  clearCalls(): void {
    this.calls = [];
    this.observer?.callsCleared();
  }

  hasInput(uid: string): boolean {
    return this.inputs.has(uid);
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

function faultResponse(fault: Fault): Response {
  const status = fault.status ?? 500;
  const headers: Record<string, string> = {};
  if (fault.retryAfter !== null) headers["retry-after"] = String(fault.retryAfter);
  const body = fault.body ?? errorBody([{ code: codeForStatus(status), message: `Injected fault ${fault.id} (HTTP ${status})` }]);
  return json(body, status, headers);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
