// How a video looks in Cloudflare's answers (SDK `Video`), the GET /stream filters, and the video webhook's
// signature. Web APIs only (Node and workerd).

import { ApiError, ErrorCode } from "./envelope.ts";
import type { VideoRecord } from "./videos.ts";

const VIDEO_STATES = ["pendingupload", "downloading", "queued", "inprogress", "ready", "error", "live-inprogress"] as const;
const MAX_LIST = 1000;

function invalid(message: string): never {
  throw new ApiError(400, ErrorCode.Validation, message);
}

/** A video as Cloudflare returns it (SDK `Video`); fields Cloudflare omits until encoding completes are omitted. */
export function renderVideo(video: VideoRecord, publicBaseUrl: string, durationSeconds: number): Record<string, unknown> {
  const host = publicBaseUrl.replace(/\/+$/, "");
  const ready = video.state === "ready";
  const status: Record<string, unknown> = { state: video.state };
  if (video.state === "inprogress") status.pctComplete = "50.000000";
  if (ready) status.pctComplete = "100.000000";
  if (video.error) {
    status.errorReasonCode = video.error.code;
    status.errorReasonText = video.error.text;
  }
  const duration = video.state === "live-inprogress" ? -1 : round3(durationSeconds);
  const out: Record<string, unknown> = {
    uid: video.uid,
    ...(video.creator !== null ? { creator: video.creator } : {}),
    thumbnailTimestampPct: 0,
    readyToStream: ready,
    status,
    meta: structuredClone(video.meta),
    created: iso(video.created),
    modified: iso(video.modified),
    size: ready ? (video.media?.sizeBytes ?? Math.round(duration * 125_000)) : 0,
    allowedOrigins: [...video.allowedOrigins],
    requireSignedURLs: video.requireSignedURLs,
    uploaded: iso(video.created),
    duration,
    input: { width: ready ? (video.media?.width ?? 1280) : -1, height: ready ? (video.media?.height ?? 720) : -1 },
    liveInput: video.liveInput,
    // Live, the video plays from its own uid too (the live manifest); once ready, the recording.
    playback: { hls: `${host}/${video.uid}/manifest/video.m3u8`, dash: `${host}/${video.uid}/manifest/video.mpd` },
  };
  if (ready) {
    out.readyToStreamAt = iso(video.readyAt!);
    out.thumbnail = `${host}/${video.uid}/thumbnails/thumbnail.jpg`;
    out.preview = `${host}/${video.uid}/watch`;
  }
  if (video.scheduledDeletion !== null) out.scheduledDeletion = iso(video.scheduledDeletion);
  return out;
}

/** GET /stream: newest first (asc=true: oldest first), filters creator, live_input_id, status, start/after, end/before, limit ≤ 1000. */
export function filterVideos(videos: VideoRecord[], params: URLSearchParams, inputUid: string | null): VideoRecord[] {
  const creator = params.get("creator");
  const liveInput = inputUid ?? params.get("live_input_id");
  const status = params.get("status");
  if (status !== null && !(VIDEO_STATES as readonly string[]).includes(status)) invalid(`status must be one of ${VIDEO_STATES.join(", ")}`);
  const asc = params.get("asc");
  if (asc !== null && asc !== "true" && asc !== "false") invalid("asc must be true or false");
  const limitRaw = params.get("limit");
  const limit = limitRaw === null ? MAX_LIST : Number(limitRaw);
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIST) invalid(`limit must be an integer between 1 and ${MAX_LIST}`);
  const after = dateParam(params, "start") ?? dateParam(params, "after");
  const before = dateParam(params, "end") ?? dateParam(params, "before");
  return videos
    .filter((v) => (creator === null || v.creator === creator) && (liveInput === null || v.liveInput === liveInput))
    .filter((v) => (status === null || v.state === status) && (after === null || v.created > after) && (before === null || v.created < before))
    .sort((a, b) => (asc === "true" ? a.created - b.created : b.created - a.created))
    .slice(0, limit);
}

/** `sig1` of Cloudflare's video webhook signature: hex(HMAC-SHA256(secret, `${time}.${body}`)). */
export async function signWebhook(secret: string, time: string, body: string): Promise<string> {
  const enc = new TextEncoder();
  const key = await crypto.subtle.importKey("raw", enc.encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  const mac = new Uint8Array(await crypto.subtle.sign("HMAC", key, enc.encode(`${time}.${body}`)));
  return [...mac].map((b) => b.toString(16).padStart(2, "0")).join("");
}

function dateParam(params: URLSearchParams, name: string): number | null {
  const raw = params.get(name);
  if (raw === null) return null;
  const ms = Date.parse(raw);
  if (Number.isNaN(ms)) invalid(`${name} must be an RFC 3339 date-time`);
  return ms;
}

export function iso(ms: number): string {
  return new Date(ms).toISOString();
}

function round3(n: number): number {
  return Math.round(n * 1000) / 1000;
}
