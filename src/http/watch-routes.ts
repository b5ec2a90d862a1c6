import type { IRequest } from "itty-router";
import { secretsEqual } from "../apps/credentials";
import { loadConfig } from "../config";
import type { Env } from "../env";
import { UserId } from "../schemas/api";
import * as answers from "../schemas/responses";
import type { WatchHit, WatchView } from "../stream/watch-view";
import { watchLinkNotFound } from "../users/user-streams";
import { userForWatchKey } from "../users/watch-key-index";
import { WATCH_KEY_PATTERN, watchPath } from "../users/watch-link";
import { authenticateAdmin, authenticateApp, authenticateDevice, requireUserGrant } from "./auth";
import { ApiError, errorResponse, json, reply, runtimeUnavailable, unwrap } from "./errors";

/**
 * The user's watch link (`/w/<key>`) and who may manage it. Reading or rotating a user's key needs
 * what using that user's stream needs: the admin; the user's own device (its token's subject); or an
 * app — with `X-User-Grant` for this user and app while grants are required (the default), as
 * `POST /api/streams` does. The link itself is public, like Cloudflare's playback URLs: whoever has it
 * may watch, and rotating it is how it is taken back.
 */
const NO_STORE = { "cache-control": "no-store" };

type Who = { kind: "admin" } | { kind: "device" } | { kind: "app"; packageName: string };

export async function authorizeForUser(request: Request, env: Env, userId: string): Promise<Who> {
  if (request.headers.has("x-api-key") || request.headers.has("x-package-name")) {
    const app = await authenticateApp(request, env);
    if (loadConfig(env).requireUserGrant) await requireUserGrant(request, env, userId, app.packageName);
    return { kind: "app", packageName: app.packageName };
  }
  const token = /^Bearer\s+(.+)$/i.exec(request.headers.get("authorization") ?? "")?.[1]?.trim();
  if (token && env.ADMIN_TOKEN && (await secretsEqual(token, env.ADMIN_TOKEN))) return { kind: "admin" };
  if (!token) {
    // Neither kind of credential: say what is accepted (the admin's error when no token was sent at all).
    if (!env.ADMIN_TOKEN) await authenticateAdmin(request, env);
    throw new ApiError(401, "UNAUTHORIZED", "An app's X-API-Key and X-Package-Name, the user's device token, or the admin token is required");
  }
  const subject = await authenticateDevice(request, env);
  if (subject !== userId) throw new ApiError(403, "FORBIDDEN", "This device token belongs to another user");
  return { kind: "device" };
}

function pathUser(request: IRequest): string {
  let userId = "";
  try {
    userId = decodeURIComponent(request.params.userId ?? "");
  } catch {
    // malformed percent-encoding
  }
  if (!UserId.safeParse(userId).success) throw new ApiError(400, "INVALID_REQUEST", "userId must be 1 to 128 letters, digits or ._:@+-");
  return userId;
}

/** `<origin>/w/<key>`: PUBLIC_BASE_URL when set, else the origin this request reached. */
export function watchOrigin(request: Request, env: Env): string {
  return (env.PUBLIC_BASE_URL || new URL(request.url).origin).replace(/\/+$/, "");
}

const linkAnswer = (request: Request, env: Env, userId: string, watchKey: string) => ({
  userId,
  watchKey,
  watchUrl: watchOrigin(request, env) + watchPath(watchKey),
});

export async function handleGetWatchLink(request: IRequest, env: Env): Promise<Response> {
  const userId = pathUser(request);
  await authorizeForUser(request, env, userId);
  const { watchKey } = unwrap(await env.USERS.getByName(userId).watchLink(userId));
  return reply(answers.WatchLinkAnswer, linkAnswer(request, env, userId, watchKey));
}

export async function handleRotateWatchLink(request: IRequest, env: Env): Promise<Response> {
  const userId = pathUser(request);
  await authorizeForUser(request, env, userId);
  const { watchKey } = unwrap(await env.USERS.getByName(userId).rotateWatchKey(userId, watchOrigin(request, env)));
  return reply(answers.WatchLinkAnswer, linkAnswer(request, env, userId, watchKey));
}

/**
 * A watch link, resolved now. Unknown, malformed and rotated-away keys all get the same 404
 * (WATCH_LINK_NOT_FOUND): nothing tells whether a user exists. Every answer is `no-store`.
 */
async function resolve(request: IRequest, env: Env, counted: boolean): Promise<WatchView> {
  const key = request.params.key ?? "";
  if (!WATCH_KEY_PATTERN.test(key)) throw ApiError.from(watchLinkNotFound());
  let userId: string | null;
  try {
    userId = await userForWatchKey(env, key);
  } catch (error) {
    throw runtimeUnavailable(error) ?? new ApiError(503, "SERVICE_UNAVAILABLE", "The watch link is briefly unavailable; retry shortly", 1);
  }
  if (userId === null) throw ApiError.from(watchLinkNotFound());
  const hit = counted ? await hitOf(request, env) : null;
  return unwrap(await env.USERS.getByName(userId).watch(key, hit)).view;
}

/** Cloudflare's country of the request and a keyed hash (HMAC-SHA256) of its address: the address itself goes nowhere. */
async function hitOf(request: Request, env: Env): Promise<WatchHit> {
  const cf = (request as Request & { cf?: { country?: unknown } }).cf;
  const country = typeof cf?.country === "string" && /^[A-Z0-9]{2}$/.test(cf.country) ? cf.country : "XX";
  const address = request.headers.get("cf-connecting-ip");
  const secret = env.WATCH_HIT_SECRET || env.DEVICE_TOKEN_SECRET;
  if (!address || !secret) return { country, visitor: null };
  const key = await crypto.subtle.importKey("raw", new TextEncoder().encode(`watch-visitor:${secret}`), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  const mac = new Uint8Array(await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(address)));
  return { country, visitor: [...mac.slice(0, 8)].map((b) => b.toString(16).padStart(2, "0")).join("") };
}

const wantsHtml = (request: Request) => /\btext\/html\b/i.test(request.headers.get("accept") ?? "");

/** `GET /w/:key`: JSON for programs; the watch page for a browser (Accept: text/html), counted as a hit. */
export const handleWatch = noStore(async function handleWatch(request: IRequest, env: Env): Promise<Response> {
  const html = wantsHtml(request);
  const view = await resolve(request, env, html);
  if (html) return watchPage();
  return reply(answers.WatchAnswer, view);
});

/** `GET /w/:key/video.m3u8`: 302 to the live manifest, or when offline to the newest ready recording; counted as a hit. */
export const handleWatchManifest = noStore(async function handleWatchManifest(request: IRequest, env: Env): Promise<Response> {
  const view = await resolve(request, env, true);
  const target = view.state !== "offline" ? view.hlsUrl : (view.latestRecording?.hlsUrl ?? null);
  if (!target) {
    const message = view.state !== "offline" && view.webrtcUrl
      ? "This stream is ingested over WebRTC and plays over WHEP only (webrtcUrl, or the watch page in a browser): it has no HLS manifest"
      : "The user is not streaming and has no ready recording";
    return json({ error: "NOTHING_TO_PLAY", message }, 404, NO_STORE);
  }
  return new Response(null, { status: 302, headers: { location: target, ...NO_STORE } });
});

/** Every answer of a watch link, errors included, is `no-store` (a 404 before the first stream must not stick). */
export function noStore(handler: (request: IRequest, env: Env) => Promise<Response>) {
  return async (request: IRequest, env: Env): Promise<Response> => {
    const response = await handler(request, env).catch(errorResponse);
    response.headers.set("cache-control", "no-store");
    return response;
  };
}

/** The watch page: the console's player (web/watch/, bundled by scripts/build-assets.mjs), following the link by itself. */
function watchPage(): Response {
  const html = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer"><meta name="robots" content="noindex">
<title>Live stream</title><link rel="stylesheet" href="/watch/watch.css"></head>
<body><main id="app"><p>Loading the player…</p></main>
<noscript>The player needs JavaScript; <a href="video.m3u8">video.m3u8</a> plays in VLC or ffplay.</noscript>
<script type="module" src="/watch/watch.js"></script></body></html>
`;
  return new Response(html, { headers: { "content-type": "text/html; charset=utf-8", ...NO_STORE } });
}
