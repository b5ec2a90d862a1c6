// Stream videos: the recordings a live input makes, as Cloudflare Stream keeps them (BRIEF §5).
//
// A live input with `recording.mode: "automatic"` gets a video when it connects (`status.state`
// `live-inprogress`, `liveInput`, `creator` = the input's `defaultCreator`). A reconnect within the input's
// `recording.timeoutSeconds` continues the same video (a new session); once the window passes without one, the
// video ends: `inprogress`, then `ready` after `videoReadyDelaySeconds` with `duration`, `readyToStream`,
// `playback`, `thumbnail`, `preview` and `scheduledDeletion` (from the input's `deleteRecordingAfterDays`, at
// which time the emulator deletes it). Videos survive their input's deletion. The account's video webhook
// (`PUT /stream/webhook`) gets the whole video object when a video is ready or fails, signed
// `Webhook-Signature: time=<unix s>,sig1=hex(HMAC-SHA256(secret, time + "." + body))`.
//
// Time comes from the emulator's clock (its `now`, which `/__emulator/clock` can move). Transitions that fall
// due happen in `tick()`: the hosts call it before every request and after the clock moves, and the Node host
// every half second too, so webhooks fire on time without anyone asking. Web APIs only (Node and workerd).

import { ApiError, ErrorCode, readJsonObject } from "./envelope.ts";
import { randomHex, uid as newUid } from "./ids.ts";
import type { EmulatorConfig, LiveInputRecord, VideoEvent, VideoListener, VideoMedia, VideoRecord, VideoWebhookRecord } from "./types.ts";
import { filterVideos, iso, renderVideo, signWebhook } from "./video-render.ts";

export { signWebhook } from "./video-render.ts";
export type { VideoEvent, VideoListener, VideoMedia, VideoRecord, VideoSession, VideoState, VideoWebhookRecord } from "./types.ts";

export interface VideoLibraryDeps {
  now(): number;
  config: EmulatorConfig;
  input(uid: string): LiveInputRecord | undefined;
  changed(): void;
  /** POSTs a signed webhook (fire and forget, logged). */
  deliver(url: string, event: string, ids: { inputId: string; videoId: string }, body: string, headers: Record<string, string>): void;
  /** Background work the host must wait for (workerd: waitUntil). */
  track(p: Promise<unknown>): void;
}

function invalid(message: string): never {
  throw new ApiError(400, ErrorCode.Validation, message);
}

const DAY_MS = 86_400_000;
/** Longest a recording driver may hold a video's readiness (a stuck finisher must not keep it inprogress). */
const MAX_PROCESSING_MS = 60_000;

export class VideoLibrary {
  videos = new Map<string, VideoRecord>();
  /** The video each input is feeding (live or within its reconnect window). */
  private current = new Map<string, string>();
  webhook: VideoWebhookRecord | null = null;
  private listeners = new Set<VideoListener>();
  /** Videos a recording driver is still finishing (uid → since when): not ready before it says so. */
  private processing = new Map<string, number>();
  /** When a driver finished a video's media: it is not ready earlier. */
  private processedAt = new Map<string, number>();

  constructor(private readonly deps: VideoLibraryDeps) {}

  onEvent(listener: VideoListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** The video an input is recording into now (connected, or within its reconnect window), or null. */
  currentVideo(inputUid: string): { videoUid: string; session: number } | null {
    const id = this.current.get(inputUid);
    const video = id === undefined ? undefined : this.videos.get(id);
    return video ? { videoUid: video.uid, session: video.sessions.length - 1 } : null;
  }

  /** A recording driver's measurements of the real media; used for `duration`, `size` and `input` once ready. */
  reportMedia(videoUid: string, media: VideoMedia, opts: { final?: boolean } = {}): boolean {
    const video = this.videos.get(videoUid);
    if (!video) return false;
    video.media = { ...video.media, ...media };
    this.deps.changed();
    if (opts.final) this.mediaFinished(videoUid);
    return true;
  }

  /**
   * A recording driver is finishing this video's media (its playlist's end, DASH, thumbnail): the video stays
   * `inprogress` until `mediaFinished` (or reportMedia with `final`), or MAX_PROCESSING_MS, so `ready` means
   * playable. Call it from the `ended` event.
   */
  holdReady(videoUid: string): void {
    if (this.videos.get(videoUid)?.state === "inprogress") this.processing.set(videoUid, this.deps.now());
  }

  mediaFinished(videoUid: string): void {
    if (!this.processing.delete(videoUid)) return;
    this.processedAt.set(videoUid, this.deps.now());
    this.tick();
  }

  // ---------------------------------------------------------------- ingest

  connected(input: LiveInputRecord): void {
    this.tick();
    if (input.recording.mode !== "automatic") return;
    const now = this.deps.now();
    const existing = this.videos.get(this.current.get(input.uid) ?? "");
    if (existing && existing.state === "live-inprogress") {
      existing.sessions.push({ start: now, end: null });
      existing.timeoutSeconds = this.timeoutOf(input);
      existing.deleteAfterDays = input.deleteRecordingAfterDays;
      existing.modified = now;
      this.deps.changed();
      this.emit({ type: "continued", videoUid: existing.uid, inputUid: input.uid, session: existing.sessions.length - 1, at: now });
      return;
    }
    const video: VideoRecord = {
      uid: newUid(),
      liveInput: input.uid,
      creator: input.defaultCreator,
      meta: structuredClone(input.meta),
      created: now,
      modified: now,
      state: "live-inprogress",
      sessions: [{ start: now, end: null }],
      timeoutSeconds: this.timeoutOf(input),
      deleteAfterDays: input.deleteRecordingAfterDays,
      requireSignedURLs: input.recording.requireSignedURLs,
      allowedOrigins: input.recording.allowedOrigins ? [...input.recording.allowedOrigins] : [],
      endedAt: null,
      readyAt: null,
      scheduledDeletion: null,
      error: null,
      media: null,
    };
    this.videos.set(video.uid, video);
    this.current.set(input.uid, video.uid);
    this.deps.changed();
    this.emit({ type: "started", videoUid: video.uid, inputUid: input.uid, session: 0, at: now });
  }

  disconnected(inputUid: string): void {
    const video = this.videos.get(this.current.get(inputUid) ?? "");
    if (!video || video.state !== "live-inprogress") return;
    const last = video.sessions[video.sessions.length - 1];
    if (!last || last.end !== null) return;
    const now = this.deps.now();
    last.end = now;
    video.modified = now;
    this.deps.changed();
    this.emit({ type: "paused", videoUid: video.uid, inputUid, session: video.sessions.length - 1, at: now, until: now + video.timeoutSeconds * 1000 });
    this.tick();
  }

  /** The input is gone: its video can no longer continue, so it ends now. */
  inputDeleted(inputUid: string): void {
    const video = this.videos.get(this.current.get(inputUid) ?? "");
    this.current.delete(inputUid);
    if (video && video.state === "live-inprogress") this.end(video, this.deps.now());
  }

  private timeoutOf(input: LiveInputRecord): number {
    return input.recording.timeoutSeconds > 0 ? input.recording.timeoutSeconds : this.deps.config.defaultRecordingTimeoutSeconds;
  }

  // ---------------------------------------------------------------- time

  /** Performs every transition that is due: live → inprogress → ready, and scheduled deletions. */
  tick(): void {
    const now = this.deps.now();
    for (const video of [...this.videos.values()]) {
      if (video.state === "live-inprogress") {
        const last = video.sessions[video.sessions.length - 1];
        if (last?.end != null && now >= last.end + video.timeoutSeconds * 1000) this.end(video, last.end + video.timeoutSeconds * 1000);
      }
      if (video.state === "inprogress" && video.endedAt !== null) {
        const due = Math.max(video.endedAt + this.deps.config.videoReadyDelaySeconds * 1000, this.processedAt.get(video.uid) ?? 0);
        const held = this.processing.get(video.uid);
        if (now >= due && (held === undefined || now >= held + MAX_PROCESSING_MS)) this.ready(video, held === undefined ? due : now);
      }
      if (video.scheduledDeletion !== null && now >= video.scheduledDeletion) this.remove(video, now);
    }
  }

  private end(video: VideoRecord, at: number): void {
    const last = video.sessions[video.sessions.length - 1];
    if (last && last.end === null) last.end = at;
    video.state = "inprogress";
    video.endedAt = at;
    video.modified = at;
    if (this.current.get(video.liveInput) === video.uid) this.current.delete(video.liveInput);
    this.deps.changed();
    this.emit({ type: "ended", videoUid: video.uid, inputUid: video.liveInput, at });
  }

  private ready(video: VideoRecord, at: number): void {
    this.processing.delete(video.uid);
    this.processedAt.delete(video.uid);
    video.state = "ready";
    video.readyAt = at;
    video.modified = at;
    if (video.deleteAfterDays !== null) video.scheduledDeletion = at + video.deleteAfterDays * DAY_MS;
    this.deps.changed();
    this.emit({ type: "ready", videoUid: video.uid, inputUid: video.liveInput, at });
    this.notify(video);
  }

  /** Fails a video (control API): `error` with the reason; the webhook is told, as for a ready one. */
  fail(videoUid: string, code: string, text: string): boolean {
    const video = this.videos.get(videoUid);
    if (!video) return false;
    const now = this.deps.now();
    if (video.state === "live-inprogress") this.end(video, now);
    video.state = "error";
    video.error = { code, text };
    video.modified = now;
    this.deps.changed();
    this.emit({ type: "errored", videoUid: video.uid, inputUid: video.liveInput, at: now });
    this.notify(video);
    return true;
  }

  private remove(video: VideoRecord, at: number): void {
    this.videos.delete(video.uid);
    if (this.current.get(video.liveInput) === video.uid) this.current.delete(video.liveInput);
    this.deps.changed();
    this.emit({ type: "deleted", videoUid: video.uid, inputUid: video.liveInput, at });
  }

  private emit(event: VideoEvent): void {
    for (const listener of this.listeners) {
      try {
        listener(event);
      } catch {
        // a driver's trouble is its own: the API answer stands
      }
    }
  }

  // ---------------------------------------------------------------- webhook

  private notify(video: VideoRecord): void {
    const hook = this.webhook;
    if (!hook) return;
    const body = JSON.stringify(this.render(video));
    const time = String(Math.floor(this.deps.now() / 1000));
    const event = `video.${video.state}`;
    const ids = { inputId: video.liveInput, videoId: video.uid };
    this.deps.track(
      signWebhook(hook.secret, time, body).then((sig1) => {
        this.deps.deliver(hook.notificationUrl, event, ids, body, { "webhook-signature": `time=${time},sig1=${sig1}` });
      }),
    );
  }

  // ---------------------------------------------------------------- API (/accounts/:a/stream…)

  /** Routes `rest` = the path after `/accounts/:a/stream` (`""`, `/webhook`, `/storage-usage`, `/:uid`). Null: wrong method. */
  async route(method: string, rest: string, url: URL, request: Request): Promise<unknown | typeof NO_METHOD> {
    this.tick();
    if (rest === "" || rest === "/") {
      if (method === "GET") return this.list(url.searchParams, null);
      return NO_METHOD;
    }
    if (rest === "/webhook") {
      if (method === "PUT") return this.putWebhook(await readJsonObject(request));
      if (method === "GET") {
        if (!this.webhook) throw new ApiError(404, ErrorCode.NotFound, "No webhook is configured for this account");
        return this.renderWebhook(this.webhook);
      }
      if (method === "DELETE") {
        if (!this.webhook) throw new ApiError(404, ErrorCode.NotFound, "No webhook is configured for this account");
        this.webhook = null;
        this.deps.changed();
        return "ok";
      }
      return NO_METHOD;
    }
    if (rest === "/storage-usage") {
      if (method === "GET") return this.storageUsage(url.searchParams.get("creator"));
      return NO_METHOD;
    }
    const id = /^\/([^/]+)\/?$/.exec(rest)?.[1];
    if (id === undefined) throw new ApiError(404, ErrorCode.NoRoute, `Could not route to /stream${rest}`);
    if (method === "GET") return this.render(this.require(id));
    if (method === "DELETE") {
      this.remove(this.require(id), this.deps.now());
      return null;
    }
    return NO_METHOD;
  }

  /** `GET /live_inputs/:uid/videos` (the caller checks the input exists). */
  listForInput(inputUid: string, params: URLSearchParams): unknown[] {
    this.tick();
    return this.list(params, inputUid);
  }

  private require(id: string): VideoRecord {
    const video = this.videos.get(id);
    if (!video) throw new ApiError(404, ErrorCode.NotFound, `Video not found: ${id}`);
    return video;
  }

  /** GET /stream (video-render.ts: filterVideos). */
  private list(params: URLSearchParams, inputUid: string | null): unknown[] {
    return filterVideos([...this.videos.values()], params, inputUid).map((v) => this.render(v));
  }

  private storageUsage(creator: string | null): unknown {
    const videos = [...this.videos.values()].filter((v) => creator === null || v.creator === creator);
    const seconds = videos.reduce((sum, v) => sum + Math.max(0, this.durationOf(v)), 0);
    return {
      ...(creator !== null ? { creator } : {}),
      totalStorageMinutes: Math.ceil(seconds / 60),
      totalStorageMinutesLimit: this.deps.config.storageMinutesLimit,
      videoCount: videos.length,
    };
  }

  /** Minutes of video stored, all creators (what the quota counts). */
  totalStorageMinutes(): number {
    return Math.ceil([...this.videos.values()].reduce((sum, v) => sum + Math.max(0, this.durationOf(v)), 0) / 60);
  }

  private putWebhook(body: Record<string, unknown>): unknown {
    const url = body.notificationUrl ?? body.notification_url;
    if (typeof url !== "string" || url === "") invalid("notificationUrl is required and must be a string");
    try {
      const parsed = new URL(url);
      if (parsed.protocol !== "http:" && parsed.protocol !== "https:") throw new Error("scheme");
    } catch {
      invalid("notificationUrl must be an http(s) URL");
    }
    // The secret stays the same across updates (it is what receivers verify with); a new one after a delete.
    this.webhook = { notificationUrl: url, secret: this.webhook?.secret ?? randomHex(32), modified: this.deps.now() };
    this.deps.changed();
    return this.renderWebhook(this.webhook);
  }

  private renderWebhook(hook: VideoWebhookRecord): unknown {
    return { notificationUrl: hook.notificationUrl, modified: iso(hook.modified), secret: hook.secret };
  }

  // ---------------------------------------------------------------- rendering

  /** Seconds of media: sum of the sessions (the open one up to now); a driver's measurement once ended. */
  durationOf(video: VideoRecord): number {
    if (video.state !== "live-inprogress" && video.media?.durationSeconds !== undefined) return video.media.durationSeconds;
    const now = this.deps.now();
    return video.sessions.reduce((sum, s) => sum + ((s.end ?? now) - s.start) / 1000, 0);
  }

  /** A video as Cloudflare returns it (video-render.ts). */
  render(video: VideoRecord): Record<string, unknown> {
    return renderVideo(video, this.deps.config.publicBaseUrl, this.durationOf(video));
  }

  // ---------------------------------------------------------------- persistence

  restore(videos: VideoRecord[], webhook: VideoWebhookRecord | null): void {
    this.videos = new Map(videos.map((v) => [v.uid, v]));
    this.current.clear();
    for (const v of videos) if (v.state === "live-inprogress") this.current.set(v.liveInput, v.uid);
    this.webhook = webhook;
  }

  /** The emulator restarted under a connected input: its open session ends now. */
  closeOpenSessions(at: number): void {
    for (const v of this.videos.values()) {
      const last = v.sessions[v.sessions.length - 1];
      if (v.state === "live-inprogress" && last && last.end === null) last.end = at;
    }
  }

  /** Forgets every video (the emulator's reset); a recording driver is told each is deleted, to drop its media. */
  clear(): void {
    const gone = [...this.videos.values()];
    this.videos.clear();
    this.processing.clear();
    this.processedAt.clear();
    this.current.clear();
    this.webhook = null;
    const at = this.deps.now();
    for (const v of gone) this.emit({ type: "deleted", videoUid: v.uid, inputUid: v.liveInput, at });
  }
}

/** Returned by route() for a known path with a method it does not have (405). */
export const NO_METHOD = Symbol("no-method");
