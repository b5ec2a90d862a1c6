// Errors the client throws: one class per kind, with `kind` as the discriminant of the `ClientError` union.
// API errors carry our stable `error` code (docs/api.md), typed per route below; a code this client does
// not know yet still surfaces as a string (forward-compatible).

import type { ErrorCodeFromSchema } from "./types.js";

/** Every `error` code the REST API and the socket upgrade answer with: the server's `ApiErrorCode` enum. */
export type ErrorCode = ErrorCodeFromSchema;

/** Codes of `{"type":"error"}` frames on the viewer socket (docs/websocket-protocol.md). */
export type SocketErrorCode = "INVALID_JSON" | "UNKNOWN_MESSAGE_TYPE" | "INVALID_MESSAGE" | "RATE_LIMITED" | "STREAM_ENDED" | "SERVICE_UNAVAILABLE";

/** A code newer than this client: still a string, without losing autocompletion of the known ones. */
export type UnknownCode = string & {};

/** What any route may answer besides its own codes. */
type Common = "INTERNAL_ERROR" | "SERVICE_UNAVAILABLE" | "PAYLOAD_TOO_LARGE" | "NOT_FOUND";
type AdminAuth = "UNAUTHORIZED" | "ADMIN_DISABLED";
type AppAuth = "UNAUTHORIZED";
type Body = "INVALID_JSON" | "INVALID_REQUEST";

/** The codes each call can fail with, per docs/api.md. */
export interface RouteErrors {
  health: Common;
  spec: Common;
  adminStats: Common | AdminAuth;
  registerApp: Common | AdminAuth | Body | "APP_EXISTS";
  rotateKey: Common | AdminAuth | "APP_NOT_FOUND";
  deleteApp: Common | AdminAuth | "APP_NOT_FOUND";
  mintDeviceToken: Common | AdminAuth | Body | "DEVICE_TOKENS_DISABLED";
  mintUserGrant: Common | AdminAuth | Body | "DEVICE_TOKENS_DISABLED";
  stopStream: Common | AdminAuth | "STREAM_NOT_FOUND";
  startStream: Common | AppAuth | Body | "USER_NOT_GRANTED" | "RATE_LIMITED" | "CLOUDFLARE_ERROR" | "BUSY";
  getStream: Common | AppAuth | "STREAM_NOT_FOUND";
  leaveStream: Common | AppAuth | "STREAM_NOT_FOUND";
  createTicket: Common | AppAuth | "STREAM_NOT_FOUND" | "STREAM_ENDED";
  addOutput:
    | Common
    | AppAuth
    | "INVALID_URL"
    | "INVALID_REQUEST"
    | "IDEMPOTENCY_KEY_REUSED"
    | "STREAM_NOT_FOUND"
    | "NOT_A_VIEWER"
    | "MAX_OUTPUTS_REACHED"
    | "MAX_APP_OUTPUTS_REACHED"
    | "DUPLICATE_URL"
    | "CLOUDFLARE_ERROR";
  listOutputs: Common | AppAuth | "STREAM_NOT_FOUND" | "NOT_A_VIEWER";
  listStreams: Common | AppAuth | "INVALID_REQUEST";
  listAllStreams: Common | AdminAuth | "INVALID_REQUEST";
  removeOutput: Common | AppAuth | "STREAM_NOT_FOUND" | "OUTPUT_NOT_FOUND" | "NOT_AUTHORIZED" | "CLOUDFLARE_ERROR";
  setOutputEnabled: Common | AppAuth | Body | "STREAM_NOT_FOUND" | "OUTPUT_NOT_FOUND" | "NOT_AUTHORIZED" | "CLOUDFLARE_ERROR";
  deviceStream: Common | "UNAUTHORIZED" | "DEVICE_TOKENS_DISABLED" | "NO_ACTIVE_STREAM";
  streamAnalytics: Common | AppAuth | AdminAuth | "STREAM_NOT_FOUND";
  watchLink: Common | AppAuth | AdminAuth | "INVALID_REQUEST" | "USER_NOT_GRANTED" | "FORBIDDEN" | "DEVICE_TOKENS_DISABLED";
  /** Refusals of the viewer socket's upgrade (instead of 101). */
  viewerUpgrade: Common | "UPGRADE_REQUIRED" | "STREAM_NOT_FOUND" | "UNAUTHORIZED" | "FORBIDDEN" | "NOT_A_PARTICIPANT" | "STREAM_ENDED";
}
export type Route = keyof RouteErrors;
/** Compile-time check: every code listed per route is one the server's schema knows. */
type KnownCodes<T extends { [R in Route]: ErrorCode }> = T;
export type CheckedRouteErrors = KnownCodes<RouteErrors>;

/** Base of every error the client throws. Narrow with `isClientError()` and `switch (error.kind)`. */
export abstract class CoordinatorError extends Error {
  abstract readonly kind: "api" | "network" | "timeout" | "aborted";
  /** `GET /api/streams/…`: what was being called. */
  readonly request: string;
  constructor(message: string, request: string, options?: { cause?: unknown }) {
    super(message, options);
    this.request = request;
  }
}

/** The server answered with an `{error, message}` body (any non-2xx status). */
export class ApiError<C extends string = ErrorCode> extends CoordinatorError {
  readonly kind = "api" as const;
  override readonly name = "ApiError";
  constructor(
    request: string,
    readonly status: number,
    readonly code: C | UnknownCode,
    message: string,
    /** Seconds, from the `Retry-After` header (every 503, 429, and rate-limit 502s) or a body field. */
    readonly retryAfter: number | undefined,
    /** The parsed body as received (for fields a newer server may add). */
    readonly body: unknown,
  ) {
    super(`${request}: ${status} ${code}: ${message}`, request);
  }
  /** Whether a retry may succeed as is: 503 (BUSY, SERVICE_UNAVAILABLE, …), 429, 502 with Retry-After. */
  get retryable(): boolean {
    return this.status === 503 || this.status === 429 || (this.status === 502 && this.retryAfter !== undefined);
  }
}

/** No answer: connection refused or reset, DNS failure, CORS, … (`cause` is the platform's error). */
export class NetworkError extends CoordinatorError {
  readonly kind = "network" as const;
  override readonly name = "NetworkError";
  constructor(request: string, cause: unknown) {
    super(`${request}: network failure: ${describe(cause)}`, request, { cause });
  }
}

/** No answer within the call's `timeoutMs`. */
export class TimeoutError extends CoordinatorError {
  readonly kind = "timeout" as const;
  override readonly name = "TimeoutError";
  constructor(
    request: string,
    readonly timeoutMs: number,
  ) {
    super(`${request}: no answer within ${timeoutMs} ms`, request);
  }
}

/** The caller's `signal` aborted the call. */
export class AbortedError extends CoordinatorError {
  readonly kind = "aborted" as const;
  override readonly name = "AbortedError";
  constructor(request: string, cause: unknown) {
    super(`${request}: aborted`, request, { cause });
  }
}

/** Everything the client throws, as a union discriminated by `kind`. */
export type ClientError<C extends string = ErrorCode> = ApiError<C> | NetworkError | TimeoutError | AbortedError;

export function isClientError(error: unknown): error is ClientError {
  return error instanceof CoordinatorError;
}

/**
 * Whether `error` is an API error, optionally with one of `codes`; narrows `error.code`.
 * `if (isApiError(e, "DUPLICATE_URL")) …`, `isApiError(e, ["STREAM_NOT_FOUND", "STREAM_ENDED"])`.
 */
export function isApiError<C extends ErrorCode>(error: unknown, codes?: C | readonly C[]): error is ApiError<C> & { code: C } {
  if (!(error instanceof ApiError)) return false;
  if (codes === undefined) return true;
  return (typeof codes === "string" ? [codes] : codes).includes(error.code as C);
}

/** Seconds from a `Retry-After` header: delta-seconds or an HTTP date. */
export function parseRetryAfter(value: string | null, now = Date.now()): number | undefined {
  if (value === null || value.trim() === "") return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds);
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, Math.ceil((at - now) / 1000));
}

export function describe(cause: unknown): string {
  if (cause instanceof Error) {
    const code = (cause.cause as { code?: unknown } | undefined)?.code ?? (cause as { code?: unknown }).code;
    return typeof code === "string" ? `${cause.message} (${code})` : cause.message;
  }
  return String(cause);
}
