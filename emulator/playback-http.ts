// The playback routes, `/playback/<uid>/…`: where a live input's `playback.hls`/`playback.dash` (and the
// coordinator's hlsUrl, dashUrl, thumbnailUrl, previewUrl with STREAM_PLAYBACK_BASE_URL=<emulator>/playback)
// point. Web APIs only: the routing, CORS and JSON errors are the same in both hosts; the media itself comes
// from a PlaybackDriver (Node with ffmpeg, playback.ts). Not API calls: not authenticated, logged, rate
// limited or faulted (Cloudflare's playback hosts are public too).

import type { LiveViewers } from "./live-viewers.ts";
import type { PlaybackDriver } from "./types.ts";
import { handleWebRtc, webRtcPath, type WebRtcContext } from "./webrtc-http.ts";

/** Path prefix of the emulator's stand-in for `https://customer-<CODE>.cloudflarestream.com`. */
export const PLAYBACK_PREFIX = "/playback";

/** Why the workerd host (vitest) serves no media. */
export const WORKERD_PLAYBACK_UNAVAILABLE =
  "This emulator host (workerd, used by vitest) has no RTMP ingest and no ffmpeg, so it serves no media. " +
  "Playback is served by the Node emulator (npm start, emulator/server.ts) with ffmpeg on PATH.";

export const CORS_HEADERS: Readonly<Record<string, string>> = {
  "access-control-allow-origin": "*",
  "access-control-allow-methods": "GET, HEAD, OPTIONS",
  "access-control-allow-headers": "*",
  "access-control-expose-headers": "content-length, content-type",
};

/** Playlists and thumbnails change every few seconds: never cached. Segments are named per session, so they may be. */
export function cacheControlFor(file: string): string {
  return /\.(ts|m4s)$/.test(file) ? "public, max-age=60" : "no-store";
}

export function contentTypeFor(file: string): string {
  if (file.endsWith(".m3u8")) return "application/vnd.apple.mpegurl";
  if (file.endsWith(".mpd")) return "application/dash+xml";
  if (file.endsWith(".ts")) return "video/mp2t";
  if (file.endsWith(".m4s")) return file.includes("init-") ? "video/mp4" : "video/iso.segment";
  if (file.endsWith(".jpg")) return "image/jpeg";
  return "application/octet-stream";
}

/** `{error, message}` with CORS, never cached (a 404 before the first segment must not stick). */
export function playbackError(status: number, error: string, message: string, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify({ error, message }), {
    status,
    headers: { "content-type": "application/json", "cache-control": "no-store", ...CORS_HEADERS, ...headers },
  });
}

/** Media file names the driver may be asked for: one path segment, no traversal. */
const SAFE_NAME = /^[A-Za-z0-9][A-Za-z0-9_-]*\.(ts|m4s)$/;

/** `manifest/…` or `thumbnails/…` under an input's root → the driver's file name, or null. */
export function playbackFile(rest: string): string | null {
  if (rest === "manifest/video.m3u8") return "video.m3u8";
  if (rest === "manifest/video.mpd") return "video.mpd";
  if (rest === "thumbnails/thumbnail.jpg") return "thumbnail.jpg";
  const segment = /^manifest\/([^/]+)$/.exec(rest)?.[1];
  return segment !== undefined && SAFE_NAME.test(segment) ? segment : null;
}

export interface PlaybackContext {
  /**
   * The input's state, or null if there is no such live input. `ended`: not connected and its last video
   * has ended (the reconnect window passed): its live manifest answers 204, as Cloudflare's does.
   */
  lookup(uid: string): { enabled: boolean; connected: boolean; overWhip: boolean; ended?: boolean } | null;
  /** Whether a video (a live input's recording) has this uid. */
  video?(uid: string): boolean;
  driver: PlaybackDriver | undefined;
  unavailable: string;
  /** Who fetched each input's live manifest lately (`/views`). */
  viewers: LiveViewers;
  /** The input's video while it records (`/lifecycle`'s videoUID), or null. */
  currentVideo(uid: string): string | null;
  now(): number;
  webrtc: WebRtcContext;
}

/** `/views` and `/lifecycle` change from second to second: JSON, CORS, never cached. */
function playbackJson(body: unknown): Response {
  return new Response(JSON.stringify(body), { headers: { "content-type": "application/json", "cache-control": "no-store", ...CORS_HEADERS } });
}

export async function handlePlayback(request: Request, path: string, ctx: PlaybackContext): Promise<Response> {
  const webrtc = webRtcPath(path);
  if (webrtc) return handleWebRtc(request, webrtc, ctx.webrtc);
  const method = request.method.toUpperCase();
  if (method === "OPTIONS") return new Response(null, { status: 204, headers: { ...CORS_HEADERS, "access-control-max-age": "600" } });
  if (method !== "GET" && method !== "HEAD") {
    return playbackError(405, "METHOD_NOT_ALLOWED", `Playback URLs answer GET and HEAD, not ${method}`, { allow: "GET, HEAD, OPTIONS" });
  }
  const response = await route(request, path, ctx);
  return method === "HEAD" ? new Response(null, { status: response.status, headers: response.headers }) : response;
}

async function route(request: Request, path: string, ctx: PlaybackContext): Promise<Response> {
  const [uid = "", ...parts] = path.slice(PLAYBACK_PREFIX.length + 1).split("/");
  const rest = parts.join("/");
  const input = uid ? ctx.lookup(uid) : null;
  if (!input && uid && ctx.video?.(uid)) return routeVideo(request, uid, rest, ctx);
  if (!input) return playbackError(404, "NOT_FOUND", `No live input or video ${uid || "(missing uid)"}: playback URLs are ${PLAYBACK_PREFIX}/<liveInputUid or videoUid>/…`);
  if (rest === "iframe") return playerPage(`Live input ${uid}`);
  // Cloudflare's delivery host: live (human) viewers, and what the input is doing now.
  if (rest === "views") return playbackJson({ liveViewers: input.connected ? ctx.viewers.count(uid, ctx.now()) : 0 });
  if (rest === "lifecycle") return playbackJson({ isInput: true, videoUID: ctx.currentVideo(uid), live: input.connected });
  const file = playbackFile(rest);
  if (file === null) {
    return playbackError(404, "NOT_FOUND", `No playback resource ${rest}: the emulator serves manifest/video.m3u8, manifest/video.mpd, their segments, thumbnails/thumbnail.jpg, iframe, views and lifecycle`);
  }
  if (input.connected && input.overWhip) {
    return playbackError(404, "NO_MEDIA", `Live input ${uid} is published over WebRTC (WHIP), which Cloudflare plays over WHEP only (webRTCPlayback.url): no HLS, DASH or thumbnail`);
  }
  if (!ctx.driver) return playbackError(503, "PLAYBACK_UNAVAILABLE", ctx.unavailable, { "retry-after": "3600" });
  // The broadcast is over for good (its video ended past the reconnect window): no content, as at Cloudflare.
  if (!input.connected && input.ended && file === "video.m3u8") return new Response(null, { status: 204, headers: { "cache-control": "no-store", ...CORS_HEADERS } });
  if (!input.connected) {
    const why = input.enabled ? "nothing is publishing to its ingest" : "it is disabled and refuses broadcasts";
    return playbackError(404, "NOT_LIVE", `Live input ${uid} is not live: ${why}`);
  }
  const served = await ctx.driver.serve(uid, file, request);
  if (served.ok && (file === "video.m3u8" || file === "video.mpd")) ctx.viewers.fetched(uid, request, ctx.now());
  return served;
}

/** A video's URLs: its recording (HLS growing while live, then ended; DASH and the thumbnail once it ended). */
async function routeVideo(request: Request, uid: string, rest: string, ctx: PlaybackContext): Promise<Response> {
  if (rest === "iframe" || rest === "watch") return playerPage(`Video ${uid}`);
  const file = playbackFile(rest);
  if (file === null) {
    return playbackError(404, "NOT_FOUND", `No playback resource ${rest}: a video serves manifest/video.m3u8, manifest/video.mpd, their segments, thumbnails/thumbnail.jpg, watch and iframe`);
  }
  if (!ctx.driver?.serveRecording) return playbackError(503, "PLAYBACK_UNAVAILABLE", ctx.unavailable, { "retry-after": "3600" });
  return ctx.driver.serveRecording(uid, file, request);
}

/** previewUrl: a bare player page. Native HLS where the browser has it (Safari), else the thumbnail, refreshed. */
function playerPage(title: string): Response {
  const html = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title} (Stream emulator)</title>
<style>html,body{margin:0;height:100%;background:#000;color:#ddd;font:14px system-ui,sans-serif}
video,img{display:block;width:100%;height:calc(100% - 2em);object-fit:contain}p{margin:0;padding:.5em;height:1em}</style></head>
<body><video id="video" controls autoplay muted playsinline hidden></video><img id="thumb" alt="Latest thumbnail" hidden>
<p id="note" role="status">Waiting for the stream…</p>
<script>
const hls = new URL("manifest/video.m3u8", location.href).href;
const video = document.getElementById("video"), thumb = document.getElementById("thumb"), note = document.getElementById("note");
if (video.canPlayType("application/vnd.apple.mpegurl")) {
  video.hidden = false; video.src = hls; note.textContent = hls;
} else {
  thumb.hidden = false;
  const tick = async () => {
    const r = await fetch("thumbnails/thumbnail.jpg", { cache: "no-store" }).catch(() => null);
    if (r && r.ok) { URL.revokeObjectURL(thumb.src); thumb.src = URL.createObjectURL(await r.blob()); note.textContent = "No native HLS here: the latest thumbnail, refreshed. Play " + hls + " with ffplay, VLC or hls.js."; }
    else if (r) { const e = await r.json().catch(() => ({})); note.textContent = e.message || ("HTTP " + r.status); }
  };
  tick(); setInterval(tick, 3000);
}
</script></body></html>
`;
  return new Response(html, { headers: { "content-type": "text/html; charset=utf-8", "cache-control": "no-store", ...CORS_HEADERS } });
}
