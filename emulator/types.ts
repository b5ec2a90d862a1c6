// Shared types of the Cloudflare Stream emulator. Web-API only (runs in Node and workerd).

export type RelayState = "idle" | "connecting" | "active" | "error";
export type StatusShape = "object" | "string";

/** What a relay driver needs to restream one output. */
export interface RelaySpec {
  outputUid: string;
  inputUid: string;
  /** The input's RTMP ingest stream key (the driver pulls the input from the local RTMP server). */
  inputStreamKey: string;
  /** Output destination as configured through the API. */
  url: string;
  streamKey: string;
}

/** Reports a relay's state; reports after stop() or a restart are ignored by the emulator. */
export type RelayReport = (state: RelayState, lastError: string | null) => void;

/** Real restreaming (Node only). Without one, relays are simulated (active at once). */
export interface RelayDriver {
  start(spec: RelaySpec, report: RelayReport): void;
  stop(outputUid: string): void;
}

/** A playback file of one live input, as the driver names it: `video.m3u8`, `video.mpd`, a segment, `thumbnail.jpg`. */
export type PlaybackFile = string;

/** What a playback driver says about one live input (GET /__emulator/state). */
export interface PlaybackStatus {
  state: "starting" | "live" | "failed";
  lastError: string | null;
}

/**
 * Real playback (Node with ffmpeg: playback.ts): packages a live input's ingest into HLS, DASH and a
 * thumbnail. The emulator routes `/playback/<uid>/…` (playback-http.ts) and asks the driver only for an
 * input that exists and is connected; the driver answers with the file or a JSON error.
 */
export interface PlaybackDriver {
  serve(inputUid: string, file: PlaybackFile, request: Request): Promise<Response>;
  status(inputUid: string): PlaybackStatus | null;
  /** A video's recording (`/playback/<videoUid>/…`), asked only for a video that exists. */
  serveRecording?(videoUid: string, file: PlaybackFile, request: Request): Promise<Response>;
}

/** WHIP/WHEP sessions with real media (Node: webrtc-ingest.ts). Refusals are thrown as WebRtcRefusal. */
export interface WebRtcDriver {
  /** Terminates a WHIP publish for this input; the input connects when its media connects. */
  publish(input: { uid: string; streamKey: string }, offerSdp: string): Promise<{ sessionId: string; answerSdp: string }>;
  /** A WHEP viewer of the input's WHIP publish. */
  play(inputUid: string, offerSdp: string): Promise<{ sessionId: string; answerSdp: string }>;
  /** DELETE of a session's resource: false if the input has no such session. */
  end(inputUid: string, sessionId: string): boolean;
}

export interface EmulatorOptions {
  /** The Realtime SFU and TURN service (realtime/sfu.ts): app id/secret, TURN key/token, media engine. */
  realtime?: import("./realtime/sfu.ts").RealtimeOptions;
  apiToken?: string;
  accountId?: string;
  rtmpIngestUrl?: string;
  srtIngestUrl?: string;
  publicBaseUrl?: string;
  rateLimit?: { requests: number; windowSeconds: number; blockSeconds?: number };
  maxLiveInputs?: number;
  webhook?: { url: string; secret: string } | null;
  sendWebhook?: (url: string, init: RequestInit) => Promise<Response>;
  relay?: RelayDriver;
  now?: () => number;
  statusShape?: StatusShape;
  /** Seconds from a video's end to `ready`. Default 10. */
  videoReadyDelaySeconds?: number;
  /** Reconnect window for `recording.timeoutSeconds: 0`. Default 0 (the video ends at the disconnect). */
  defaultRecordingTimeoutSeconds?: number;
  /** Storage quota reported by `GET /stream/storage-usage`, in minutes. Default 100000. */
  storageMinutesLimit?: number;
  /** POST Cloudflare's test message to a webhook destination on create/update and refuse it without a 2xx. Default true. */
  verifyWebhookDestinations?: boolean;
  /** Called when the emulator ends a live broadcast itself (input deleted or disabled), so an ingest server can drop the publisher. */
  kickIngest?: (streamKey: string) => void;
  /** Serves `/playback/<uid>/…` media. Without one, media requests get 503 with `playbackUnavailable`. */
  playback?: PlaybackDriver;
  /** Why this host serves no media (the 503's message). Default: the workerd host's reason. */
  playbackUnavailable?: string;
  /** Terminates WHIP/WHEP at the inputs' `webRTC`/`webRTCPlayback` URLs. Without one they answer 503. */
  webrtc?: WebRtcDriver;
  /** The Node host's live ingest sessions by protocol (SRT, WHIP, WHEP), for GET /__emulator/ingest. */
  ingestSessions?: () => Record<string, unknown[]>;
}

/** Mutable runtime configuration (what POST /__emulator/config can change). */
export interface EmulatorConfig {
  apiToken: string;
  accountId: string;
  rtmpIngestUrl: string;
  srtIngestUrl: string;
  publicBaseUrl: string;
  rateLimitRequests: number;
  rateLimitWindowSeconds: number;
  rateLimitBlockSeconds: number;
  maxLiveInputs: number;
  webhookUrl: string | null;
  webhookSecret: string;
  statusShape: StatusShape;
  verifyWebhookDestinations: boolean;
  /** Seconds from a video's end (the reconnect window passed) to `ready` (Cloudflare: "within about a minute"). */
  videoReadyDelaySeconds: number;
  /** The reconnect window of an input whose `recording.timeoutSeconds` is 0 ("the platform default"). */
  defaultRecordingTimeoutSeconds: number;
  /** `totalStorageMinutesLimit` of `GET /stream/storage-usage`. */
  storageMinutesLimit: number;
}

export interface Recording {
  mode: "off" | "automatic";
  timeoutSeconds: number;
  requireSignedURLs: boolean;
  allowedOrigins: string[] | null;
  hideLiveViewerCount: boolean;
}

export interface StatusEntry {
  state: "connected" | "disconnected";
  reason: string | null;
  statusEnteredAt: string;
  statusLastSeen: string;
}

export interface LiveInputRecord {
  uid: string;
  streamKey: string;
  playbackStreamKey: string;
  srtStreamId: string;
  srtPassphrase: string;
  srtPlaybackStreamId: string;
  srtPlaybackPassphrase: string;
  webRtcSecret: string;
  meta: Record<string, unknown>;
  recording: Recording;
  deleteRecordingAfterDays: number | null;
  enabled: boolean;
  preferLowLatency: boolean;
  /** Accepted on create/update and kept, but not returned: Cloudflare's live input has no such field. */
  defaultCreator: string | null;
  created: string;
  modified: string;
  /** Set by POST .../rotate_keys; null (and omitted from responses) until the keys are first rotated. */
  keysRotatedAt: string | null;
  connected: boolean;
  /** Newest last; empty when never connected. */
  statusHistory: StatusEntry[];
  /** Output uids in creation order. */
  outputs: string[];
}

export interface OutputRecord {
  uid: string;
  inputUid: string;
  url: string;
  streamKey: string;
  enabled: boolean;
  relay: { state: RelayState; lastError: string | null };
  /** Bumped on every relay (re)start/stop so late driver reports can be ignored. */
  relayGeneration: number;
  /** True while a driver relay has been started and not stopped. */
  driverRunning: boolean;
}

export interface CallRecord {
  method: string;
  path: string;
  /** The query string (`?creator=…`), when there is one: tests tell apart calls that share a path. */
  query?: string;
  status: number;
  time: string;
  durationMs: number;
  fault?: string;
}

export interface WebhookDelivery {
  id: number;
  time: string;
  url: string;
  event: string;
  /** null for a destination's test message. */
  inputId: string | null;
  /** The video a video webhook (`video.ready` / `video.error`) is about. */
  videoId?: string;
  /** The JSON body that was (or was to be) POSTed, so tests can replay it into the coordinator. */
  payload: unknown;
  status: number | null;
  error: string | null;
  pending: boolean;
  /** Request headers that matter to the receiver (the video webhook's `webhook-signature`), for replaying. */
  headers?: Record<string, string>;
  /** The exact body string sent, when it is signed (replay it byte for byte). */
  body?: string;
  /** Only on deliveries that retry (restart announcements): attempts made so far. */
  attempts?: number;
}

// ---------------------------------------------------------------- videos (videos.ts)

export type VideoState = "live-inprogress" | "inprogress" | "ready" | "error";

/** One connection of the input that fed the video: a reconnect within the window adds one. */
export interface VideoSession {
  start: number;
  /** null while the input is still connected. */
  end: number | null;
}

export interface VideoRecord {
  uid: string;
  liveInput: string;
  creator: string | null;
  meta: Record<string, unknown>;
  created: number;
  modified: number;
  state: VideoState;
  sessions: VideoSession[];
  /** The window a reconnect must fall within, in seconds (from the input when the last session started). */
  timeoutSeconds: number;
  /** deleteRecordingAfterDays of the input at the last connect: scheduledDeletion is counted from readiness. */
  deleteAfterDays: number | null;
  requireSignedURLs: boolean;
  allowedOrigins: string[];
  /** When the video left live-inprogress (the window passed); null before. */
  endedAt: number | null;
  readyAt: number | null;
  scheduledDeletion: number | null;
  error: { code: string; text: string } | null;
  /** What a media driver reported about the real recording (Node, ffmpeg); null: computed from the sessions. */
  media: VideoMedia | null;
}

/** Facts about the recorded media, as a recording driver measures them. */
export interface VideoMedia {
  durationSeconds?: number;
  sizeBytes?: number;
  width?: number;
  height?: number;
}

/**
 * What happened to a video, for a recording driver (emulator/README.md#recordings):
 * - `started`: a new video for a connect of `inputUid` (session 0);
 * - `continued`: a reconnect within the window: the same video, a new session (`session` ≥ 1);
 * - `paused`: the input disconnected; the video waits for a reconnect until `until` (epoch ms);
 * - `ended`: the window passed (or the input is gone for good): the recording is final (`inprogress`);
 * - `ready` / `errored`: processing finished; `deleted`: the video is gone (API delete or scheduledDeletion).
 * Delivered synchronously, in order, inside the emulator call that caused it.
 */
export type VideoEvent =
  | { type: "started" | "continued"; videoUid: string; inputUid: string; session: number; at: number }
  | { type: "paused"; videoUid: string; inputUid: string; session: number; at: number; until: number }
  | { type: "ended" | "ready" | "errored" | "deleted"; videoUid: string; inputUid: string; at: number };

export type VideoListener = (event: VideoEvent) => void;

/** The account's video webhook (`PUT /stream/webhook`). */
export interface VideoWebhookRecord {
  notificationUrl: string;
  secret: string;
  modified: number;
}
