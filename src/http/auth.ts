import { jwtVerify, SignJWT } from "jose";
import { secretsEqual } from "../apps/credentials";
import type { Env } from "../env";
import { PackageName } from "../schemas/api";
import { ApiError, type Result } from "./errors";
import { clock } from "../clock";

/** An authenticated app: identity comes from verified headers only, never from a body. */
export interface AppIdentity {
  packageName: string;
}

/** `X-API-Key` + `X-Package-Name` (seed 002). Missing or wrong → 401 UNAUTHORIZED, same message either way. */
export async function authenticateApp(request: Request, env: Env): Promise<AppIdentity> {
  const { packageName, apiKey } = appCredentials(request);
  if (await verifiedRecently(packageName, apiKey)) return { packageName };
  const valid = await env.APPS.getByName(packageName).verifyKey(apiKey);
  if (!valid) throw unauthorized("Invalid API key or package name");
  await rememberVerified(packageName, apiKey);
  return { packageName };
}

/**
 * Authenticates the app and counts one stream start (seed 004's per-app limit) in a single round trip
 * to its AppAccount. `countStart` false: authenticate only (the request is refused for another reason,
 * and a refused request must not use up a start).
 */
export async function authenticateAppStart(
  request: Request,
  env: Env,
  streamStartsPerMinute: number,
  countStart: boolean,
): Promise<AppIdentity & { start: Result<object> | null }> {
  const { packageName, apiKey } = appCredentials(request);
  const account = env.APPS.getByName(packageName);
  if (await verifiedRecently(packageName, apiKey)) {
    return { packageName, start: countStart ? await account.consumeStreamStart(streamStartsPerMinute) : null };
  }
  const { valid, start } = await account.authorize(apiKey, countStart ? streamStartsPerMinute : null);
  if (!valid) throw unauthorized("Invalid API key or package name");
  await rememberVerified(packageName, apiKey);
  return { packageName, start };
}

function appCredentials(request: Request): { packageName: string; apiKey: string } {
  const packageName = request.headers.get("x-package-name");
  const apiKey = request.headers.get("x-api-key");
  if (!packageName || !apiKey) throw unauthorized("X-API-Key and X-Package-Name headers are required");
  if (!PackageName.safeParse(packageName).success || apiKey.length > 256) throw unauthorized("Invalid API key or package name");
  return { packageName, apiKey };
}

/**
 * Keys verified by AppAccount are remembered in this isolate for KEY_CACHE_MS, so a burst of calls
 * from one app does not ask its AppAccount every time. Only valid keys are remembered, by a hash of
 * package name and key (never the key itself). Bound on rotation and removal: the isolate that handles
 * the rotate or remove forgets the app at once; any other isolate may accept the old key for at most
 * KEY_CACHE_MS after it last verified it.
 */
export const KEY_CACHE_MS = 5_000;
const KEY_CACHE_MAX = 1_000;
const verifiedKeys = new Map<string, { packageName: string; until: number }>();

async function cacheKey(packageName: string, apiKey: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(`${packageName}\n${apiKey}`));
  return btoa(String.fromCharCode(...new Uint8Array(digest)));
}

async function verifiedRecently(packageName: string, apiKey: string): Promise<boolean> {
  const key = await cacheKey(packageName, apiKey);
  const entry = verifiedKeys.get(key);
  if (!entry) return false;
  if (entry.until > clock.now()) return true;
  verifiedKeys.delete(key);
  return false;
}

async function rememberVerified(packageName: string, apiKey: string): Promise<void> {
  if (verifiedKeys.size >= KEY_CACHE_MAX) verifiedKeys.clear();
  verifiedKeys.set(await cacheKey(packageName, apiKey), { packageName, until: clock.now() + KEY_CACHE_MS });
}

/** The app's key was rotated or the app removed: this isolate stops accepting its old key at once. */
export function forgetVerifiedKeys(packageName: string): void {
  for (const [key, entry] of verifiedKeys) if (entry.packageName === packageName) verifiedKeys.delete(key);
}

/** Admin calls need `Authorization: Bearer $ADMIN_TOKEN`; without ADMIN_TOKEN configured they are refused. */
export async function authenticateAdmin(request: Request, env: Env): Promise<void> {
  if (!env.ADMIN_TOKEN) throw new ApiError(403, "ADMIN_DISABLED", "Admin API is disabled: ADMIN_TOKEN is not configured");
  const token = bearer(request);
  if (!token || !(await secretsEqual(token, env.ADMIN_TOKEN))) throw unauthorized("Invalid admin token");
}

const DEVICE_AUDIENCE = "stream-coordinator:device";

/** Device tokens are HS256 JWTs (via `jose`): subject = userId, short expiry, our audience. */
export async function mintDeviceToken(env: Env, userId: string, ttlSeconds: number): Promise<{ token: string; expiresAt: string }> {
  const key = deviceKey(env);
  const expiresAt = Math.floor(clock.now() / 1000) + ttlSeconds;
  const token = await new SignJWT({})
    .setProtectedHeader({ alg: "HS256" })
    .setSubject(userId)
    .setAudience(DEVICE_AUDIENCE)
    .setIssuedAt(Math.floor(clock.now() / 1000))
    .setExpirationTime(expiresAt)
    .sign(key);
  return { token, expiresAt: new Date(expiresAt * 1000).toISOString() };
}

/** Verifies a device token from `Authorization: Bearer` or `?token=`; returns the user id. */
export async function authenticateDevice(request: Request, env: Env): Promise<string> {
  const token = bearer(request) ?? new URL(request.url).searchParams.get("token");
  if (!token) throw unauthorized("A device token is required");
  try {
    const { payload } = await jwtVerify(token, deviceKey(env), { audience: DEVICE_AUDIENCE, algorithms: ["HS256"], currentDate: new Date(clock.now()) });
    if (typeof payload.sub !== "string" || payload.sub === "") throw new Error("no subject");
    return payload.sub;
  } catch (error) {
    if (error instanceof ApiError) throw error;
    throw unauthorized("Invalid or expired device token");
  }
}

const GRANT_AUDIENCE = "stream-coordinator:user-grant";

/**
 * User grants: the platform's proof that a user lets an app use their stream (HS256 JWT, subject =
 * userId, `pkg` = package name). Required by default on `POST /api/streams` (REQUIRE_USER_GRANT=false
 * opts out), so an app cannot start or join the stream of a user who never opened it. The grant admits
 * the app into one stream; viewing and restreaming then need that participation, not the grant again.
 */
export async function mintUserGrant(env: Env, userId: string, packageName: string, ttlSeconds: number): Promise<{ token: string; expiresAt: string }> {
  const expiresAt = Math.floor(clock.now() / 1000) + ttlSeconds;
  const token = await new SignJWT({ pkg: packageName })
    .setProtectedHeader({ alg: "HS256" })
    .setSubject(userId)
    .setAudience(GRANT_AUDIENCE)
    .setIssuedAt(Math.floor(clock.now() / 1000))
    .setExpirationTime(expiresAt)
    .sign(deviceKey(env));
  return { token, expiresAt: new Date(expiresAt * 1000).toISOString() };
}

/** Checks `X-User-Grant` for this app and user; 403 USER_NOT_GRANTED otherwise. */
export async function requireUserGrant(request: Request, env: Env, userId: string, packageName: string): Promise<void> {
  const token = request.headers.get("x-user-grant");
  const refused = new ApiError(403, "USER_NOT_GRANTED", "A valid X-User-Grant for this user and app is required");
  if (!token) throw refused;
  try {
    const { payload } = await jwtVerify(token, deviceKey(env), { audience: GRANT_AUDIENCE, algorithms: ["HS256"], currentDate: new Date(clock.now()) });
    if (payload.sub !== userId || payload.pkg !== packageName) throw refused;
  } catch (error) {
    if (error instanceof ApiError && error !== refused) throw error;
    throw refused;
  }
}

function deviceKey(env: Env): Uint8Array {
  if (!env.DEVICE_TOKEN_SECRET || env.DEVICE_TOKEN_SECRET.length < 16) {
    throw new ApiError(503, "DEVICE_TOKENS_DISABLED", "Device tokens are disabled: DEVICE_TOKEN_SECRET (16+ characters) is not configured");
  }
  return new TextEncoder().encode(env.DEVICE_TOKEN_SECRET);
}

function bearer(request: Request): string | null {
  const header = request.headers.get("authorization");
  const match = header?.match(/^Bearer\s+(.+)$/i);
  return match?.[1]?.trim() ?? null;
}

function unauthorized(message: string): ApiError {
  return new ApiError(401, "UNAUTHORIZED", message);
}
