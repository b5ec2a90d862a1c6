import { jwtVerify, SignJWT } from "jose";
import { secretsEqual } from "../apps/credentials";
import type { Env } from "../env";
import { PackageName } from "../schemas/api";
import { ApiError } from "./errors";
import { clock } from "../clock";

/** An authenticated app: identity comes from verified headers only, never from a body. */
export interface AppIdentity {
  packageName: string;
}

/** `X-API-Key` + `X-Package-Name` (seed 002). Missing or wrong → 401 UNAUTHORIZED, same message either way. */
export async function authenticateApp(request: Request, env: Env): Promise<AppIdentity> {
  const packageName = request.headers.get("x-package-name");
  const apiKey = request.headers.get("x-api-key");
  if (!packageName || !apiKey) throw unauthorized("X-API-Key and X-Package-Name headers are required");
  if (!PackageName.safeParse(packageName).success || apiKey.length > 256) throw unauthorized("Invalid API key or package name");
  const valid = await env.APPS.getByName(packageName).verifyKey(apiKey);
  if (!valid) throw unauthorized("Invalid API key or package name");
  return { packageName };
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
