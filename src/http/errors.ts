import type { z } from "zod";

/**
 * Every failure a caller can see is an ApiError: an HTTP status, a stable machine-readable `error`
 * code and a human `message`. Durable Object methods return them as plain data (`Failure`) because
 * custom error properties do not survive RPC.
 */
export interface Failure {
  ok: false;
  status: number;
  error: string;
  message: string;
  retryAfter?: number;
}
export type Result<T> = ({ ok: true } & T) | Failure;

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly retryAfter?: number,
  ) {
    super(message);
    this.name = "ApiError";
  }

  toFailure(): Failure {
    return { ok: false, status: this.status, error: this.code, message: this.message, retryAfter: this.retryAfter };
  }

  static from(failure: Failure): ApiError {
    return new ApiError(failure.status, failure.error, failure.message, failure.retryAfter);
  }
}

export function fail(status: number, error: string, message: string, retryAfter?: number): Failure {
  return { ok: false, status, error, message, ...(retryAfter !== undefined ? { retryAfter } : {}) };
}

/** Unwraps a DO result: returns the success value or throws the failure as an ApiError. */
export function unwrap<R extends { ok: boolean }>(result: R): Extract<R, { ok: true }> {
  if (!result.ok) throw ApiError.from(result as unknown as Failure);
  return result as Extract<R, { ok: true }>;
}

/**
 * A JSON answer written against its response schema (src/schemas/responses.ts), the one /openapi.json
 * gives for the route: the schema types the body at compile time (nothing is parsed at run time).
 */
export function reply<S extends z.ZodType>(_schema: S, body: z.output<S>, status = 200): Response {
  return json(body, status);
}

export function json(body: unknown, status = 200, headers: HeadersInit = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json; charset=utf-8", ...headers },
  });
}

export function errorResponse(error: unknown): Response {
  const known = error instanceof ApiError ? error : runtimeUnavailable(error);
  if (known) {
    const headers: Record<string, string> = {};
    // Every 503 says when to come back; 1 s unless the failure knows better.
    const retryAfter = known.retryAfter ?? (known.status === 503 ? 1 : undefined);
    if (retryAfter !== undefined) headers["retry-after"] = String(Math.max(1, Math.ceil(retryAfter)));
    return json({ error: known.code, message: known.message }, known.status, headers);
  }
  // Never leak internals (which may include URLs with keys); log the shape only.
  console.error("internal error", error instanceof Error ? `${error.name}: ${error.message}` : typeof error);
  return json({ error: "INTERNAL_ERROR", message: "Internal server error" }, 500);
}

/**
 * Failures of the runtime, not of the request: a Durable Object that is overloaded, being reset, or
 * unreachable ("Network connection lost."). Cloudflare marks them `.overloaded` or `.retryable`; the
 * local runtime does not always, so their messages are recognised too. They are 503 + Retry-After
 * (longer when overloaded: retrying at once worsens an overload), never a 500.
 */
export function runtimeUnavailable(error: unknown): ApiError | null {
  if (!(error instanceof Error)) return null;
  const flags = error as Error & { overloaded?: unknown; retryable?: unknown };
  if (flags.overloaded === true || OVERLOADED.test(error.message)) {
    return new ApiError(503, "SERVICE_UNAVAILABLE", "The service is overloaded; retry in a few seconds", 5);
  }
  if (flags.retryable === true || TRANSIENT.test(error.message)) {
    return new ApiError(503, "SERVICE_UNAVAILABLE", "The service is briefly unavailable; retry shortly", 1);
  }
  return null;
}

const OVERLOADED = /^(Durable Object is overloaded|Too many requests queued|Your account is generating too much load)/i;
const TRANSIENT =
  /^(Network connection lost|Durable Object reset|Durable Object storage operation exceeded timeout|Durable Object's isolate exceeded its memory limit|Internal error in Durable Object storage|Cannot resolve Durable Object)/i;
