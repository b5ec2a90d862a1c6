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

export function json(body: unknown, status = 200, headers: HeadersInit = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json; charset=utf-8", ...headers },
  });
}

export function errorResponse(error: unknown): Response {
  if (error instanceof ApiError) {
    const headers: Record<string, string> = {};
    if (error.retryAfter !== undefined) headers["retry-after"] = String(Math.max(1, Math.ceil(error.retryAfter)));
    return json({ error: error.code, message: error.message }, error.status, headers);
  }
  // Never leak internals (which may include URLs with keys); log the shape only.
  console.error("internal error", error instanceof Error ? `${error.name}: ${error.message}` : typeof error);
  return json({ error: "INTERNAL_ERROR", message: "Internal server error" }, 500);
}
