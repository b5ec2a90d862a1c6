// Live input / output records: body validation and rendering in Cloudflare's JSON shapes.

import { ApiError, ErrorCode } from "./envelope.ts";
import { randomHex, streamKey, uid } from "./ids.ts";
import type { EmulatorConfig, LiveInputRecord, OutputRecord, Recording, StatusShape } from "./types.ts";

const DEFAULT_RECORDING: Recording = {
  mode: "off",
  timeoutSeconds: 0,
  requireSignedURLs: false,
  allowedOrigins: null,
  hideLiveViewerCount: false,
};

function invalid(message: string): never {
  throw new ApiError(400, ErrorCode.Validation, message);
}

/** Fields accepted by create and update; absent = not given. */
export interface LiveInputPatch {
  meta?: Record<string, unknown>;
  recording?: Partial<Recording>;
  deleteRecordingAfterDays?: number | null;
  enabled?: boolean;
  preferLowLatency?: boolean;
  defaultCreator?: string | null;
}

export function parseLiveInputBody(body: Record<string, unknown>): LiveInputPatch {
  const patch: LiveInputPatch = {};
  if (body.meta !== undefined && body.meta !== null) {
    if (typeof body.meta !== "object" || Array.isArray(body.meta)) invalid("meta must be an object");
    patch.meta = body.meta as Record<string, unknown>;
  } else if (body.meta === null) {
    patch.meta = {};
  }
  if (body.recording !== undefined && body.recording !== null) {
    patch.recording = parseRecording(body.recording);
  }
  if (body.deleteRecordingAfterDays !== undefined) {
    const days = body.deleteRecordingAfterDays;
    if (days !== null && (typeof days !== "number" || !Number.isInteger(days) || days < 30 || days > 1096)) {
      invalid("deleteRecordingAfterDays must be an integer between 30 and 1096, or null");
    }
    patch.deleteRecordingAfterDays = days;
  }
  if (body.enabled !== undefined) {
    if (typeof body.enabled !== "boolean") invalid("enabled must be a boolean");
    patch.enabled = body.enabled;
  }
  if (body.preferLowLatency !== undefined) {
    if (typeof body.preferLowLatency !== "boolean") invalid("preferLowLatency must be a boolean");
    patch.preferLowLatency = body.preferLowLatency;
  }
  if (body.defaultCreator !== undefined) {
    if (body.defaultCreator !== null && typeof body.defaultCreator !== "string") invalid("defaultCreator must be a string");
    patch.defaultCreator = body.defaultCreator;
  }
  return patch;
}

function parseRecording(value: unknown): Partial<Recording> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) invalid("recording must be an object");
  const r = value as Record<string, unknown>;
  const out: Partial<Recording> = {};
  if (r.mode !== undefined) {
    if (r.mode !== "off" && r.mode !== "automatic") invalid("recording.mode must be 'off' or 'automatic'");
    out.mode = r.mode;
  }
  if (r.timeoutSeconds !== undefined) {
    const t = r.timeoutSeconds;
    if (typeof t !== "number" || !Number.isInteger(t) || t < 0) invalid("recording.timeoutSeconds must be a non-negative integer");
    out.timeoutSeconds = t;
  }
  if (r.requireSignedURLs !== undefined) {
    if (typeof r.requireSignedURLs !== "boolean") invalid("recording.requireSignedURLs must be a boolean");
    out.requireSignedURLs = r.requireSignedURLs;
  }
  if (r.allowedOrigins !== undefined) {
    const o = r.allowedOrigins;
    if (o !== null && (!Array.isArray(o) || o.some((x) => typeof x !== "string"))) {
      invalid("recording.allowedOrigins must be an array of strings or null");
    }
    out.allowedOrigins = o === null ? null : [...(o as string[])];
  }
  if (r.hideLiveViewerCount !== undefined) {
    if (typeof r.hideLiveViewerCount !== "boolean") invalid("recording.hideLiveViewerCount must be a boolean");
    out.hideLiveViewerCount = r.hideLiveViewerCount;
  }
  return out;
}

export function newLiveInput(patch: LiveInputPatch, nowIso: string): LiveInputRecord {
  return {
    uid: uid(),
    streamKey: streamKey(),
    playbackStreamKey: streamKey(),
    srtStreamId: uid(),
    srtPassphrase: randomHex(16),
    srtPlaybackStreamId: `play${uid()}`,
    srtPlaybackPassphrase: randomHex(16),
    webRtcSecret: webRtcSecret(),
    meta: patch.meta ?? {},
    recording: { ...DEFAULT_RECORDING, ...patch.recording },
    deleteRecordingAfterDays: patch.deleteRecordingAfterDays ?? null,
    enabled: patch.enabled ?? true,
    preferLowLatency: patch.preferLowLatency ?? false,
    defaultCreator: patch.defaultCreator ?? null,
    created: nowIso,
    modified: nowIso,
    keysRotatedAt: null,
    connected: false,
    statusHistory: [],
    outputs: [],
  };
}

/** Applies an update in place (absent fields unchanged; recording merged field by field). */
export function applyPatch(input: LiveInputRecord, patch: LiveInputPatch, nowIso: string): void {
  if (patch.meta !== undefined) input.meta = patch.meta;
  if (patch.recording !== undefined) input.recording = { ...input.recording, ...patch.recording };
  if (patch.deleteRecordingAfterDays !== undefined) input.deleteRecordingAfterDays = patch.deleteRecordingAfterDays;
  if (patch.enabled !== undefined) input.enabled = patch.enabled;
  if (patch.preferLowLatency !== undefined) input.preferLowLatency = patch.preferLowLatency;
  if (patch.defaultCreator !== undefined) input.defaultCreator = patch.defaultCreator;
  input.modified = nowIso;
}

export function renderStatus(input: LiveInputRecord, shape: StatusShape): unknown {
  const history = input.statusHistory;
  const current = history[history.length - 1];
  if (!current) return null;
  if (shape === "string") return current.state === "connected" ? "connected" : (current.reason ?? "client_disconnect");
  return {
    current: { ...current },
    history: history.slice(0, -1).reverse().map((h) => ({ ...h })),
  };
}

function joinPath(base: string, segment: string): string {
  return `${base.replace(/\/+$/, "")}/${segment}`;
}

/**
 * A live input as Cloudflare returns it. `publicBaseUrl` stands in for `https://customer-<CODE>.cloudflarestream.com`:
 * WHIP publishes to `<host>/<secret>/webRTC/publish`, and playback (WHEP, HLS, DASH) is addressed by the input
 * uid (`<host>/<uid>/webRTC/play`, `<host>/<uid>/manifest/video.m3u8|mpd`), per Stream's WebRTC and
 * watch-live-stream docs. `defaultCreator` is not returned (Cloudflare's live input has no such field), and
 * `keysRotatedAt` only once the keys have been rotated.
 */
export function renderLiveInput(input: LiveInputRecord, config: EmulatorConfig): Record<string, unknown> {
  const host = config.publicBaseUrl;
  const out: Record<string, unknown> = {
    uid: input.uid,
    rtmps: { url: config.rtmpIngestUrl, streamKey: input.streamKey },
    rtmpsPlayback: { url: config.rtmpIngestUrl, streamKey: input.playbackStreamKey },
    srt: { url: config.srtIngestUrl, streamId: input.srtStreamId, passphrase: input.srtPassphrase },
    srtPlayback: { url: config.srtIngestUrl, streamId: input.srtPlaybackStreamId, passphrase: input.srtPlaybackPassphrase },
    webRTC: { url: joinPath(host, `${input.webRtcSecret}/webRTC/publish`) },
    webRTCPlayback: { url: joinPath(host, `${input.uid}/webRTC/play`) },
    playback: { hls: joinPath(host, `${input.uid}/manifest/video.m3u8`), dash: joinPath(host, `${input.uid}/manifest/video.mpd`) },
    created: input.created,
    modified: input.modified,
    meta: structuredClone(input.meta),
    recording: { ...input.recording, allowedOrigins: input.recording.allowedOrigins ? [...input.recording.allowedOrigins] : null },
    deleteRecordingAfterDays: input.deleteRecordingAfterDays,
    enabled: input.enabled,
    preferLowLatency: input.preferLowLatency,
    status: renderStatus(input, config.statusShape),
  };
  if (input.keysRotatedAt) out.keysRotatedAt = input.keysRotatedAt; // absent in snapshots from before rotate_keys
  return out;
}

/**
 * New broadcast credentials, as POST .../rotate_keys does: RTMPS stream key, SRT passphrase and WebRTC
 * (WHIP) secret. The uid, the SRT stream id and the playback credentials stay. Returns the old stream key.
 */
export function rotateKeys(input: LiveInputRecord, nowIso: string): string {
  const old = input.streamKey;
  input.streamKey = streamKey();
  input.srtPassphrase = randomHex(16);
  input.webRtcSecret = webRtcSecret();
  input.keysRotatedAt = nowIso;
  input.modified = nowIso;
  return old;
}

/** WHIP secrets look like Cloudflare's (`<32 hex>k<32 hex>`, as in its schema's example URL). */
function webRtcSecret(): string {
  return streamKey();
}

export function renderListItem(input: LiveInputRecord): Record<string, unknown> {
  return {
    uid: input.uid,
    created: input.created,
    modified: input.modified,
    meta: structuredClone(input.meta),
    enabled: input.enabled,
    deleteRecordingAfterDays: input.deleteRecordingAfterDays,
  };
}

/** Cloudflare's Output plus the emulator-only `relay` field. */
export function renderOutput(output: OutputRecord): Record<string, unknown> {
  return {
    uid: output.uid,
    url: output.url,
    streamKey: output.streamKey,
    enabled: output.enabled,
    relay: { ...output.relay },
  };
}

export function parseOutputCreate(body: Record<string, unknown>): { url: string; streamKey: string; enabled: boolean } {
  const url = body.url;
  if (typeof url !== "string" || url === "") invalid("url is required and must be a string");
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    invalid("url must be a valid URL");
  }
  if (!["rtmp:", "rtmps:", "srt:"].includes(parsed.protocol.toLowerCase())) {
    invalid("url must use the rtmp://, rtmps:// or srt:// scheme");
  }
  const key = body.streamKey;
  if (typeof key !== "string") invalid("streamKey is required and must be a string");
  const enabled = body.enabled ?? true;
  if (typeof enabled !== "boolean") invalid("enabled must be a boolean");
  return { url, streamKey: key, enabled };
}

export function parseOutputUpdate(body: Record<string, unknown>): { enabled: boolean } {
  if (typeof body.enabled !== "boolean") invalid("enabled is required and must be a boolean");
  return { enabled: body.enabled };
}
