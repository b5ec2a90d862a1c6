// Cloudflare v4 response envelope and the error codes the emulator uses.

/** Error codes. 10000 and 971 are Cloudflare's own; the others are the emulator's documented choices. */
export const ErrorCode = {
  Authentication: 10000, // Cloudflare: "Authentication error" (bad/missing token, foreign account)
  RateLimited: 971, // Cloudflare: "Please wait and consider throttling your request speed"
  Internal: 10002, // injected 5xx faults
  NotFound: 10003, // unknown live input / output
  Validation: 10005, // bad field or malformed JSON
  Limit: 10006, // 1000 live inputs per account, 10 outputs per input
  IdempotencyConflict: 10014, // Idempotency-Key reused after its input was deleted (409)
  NoRoute: 7003, // Cloudflare: "Could not route to ..."
  MethodNotAllowed: 10405,
  DestinationTestFailed: 10020, // a webhook destination did not answer Cloudflare's test message with a 2xx (400)
} as const;

export interface CfError {
  code: number;
  message: string;
}

/** Thrown by handlers; rendered as a Cloudflare error envelope. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: number,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

export function json(body: unknown, status = 200, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json", ...headers },
  });
}

export function ok(result: unknown, status = 200): Response {
  return json({ success: true, errors: [], messages: [], result }, status);
}

export function errorBody(errors: CfError[]): unknown {
  return { success: false, errors, messages: [], result: null };
}

export function fail(status: number, code: number, message: string, headers: Record<string, string> = {}): Response {
  return json(errorBody([{ code, message }]), status, headers);
}

export function fromApiError(e: ApiError): Response {
  return fail(e.status, e.code, e.message, e.headers);
}

/** The code an injected fault of this HTTP status carries. */
export function codeForStatus(status: number): number {
  if (status === 429) return ErrorCode.RateLimited;
  if (status === 401 || status === 403) return ErrorCode.Authentication;
  if (status === 404) return ErrorCode.NotFound;
  if (status >= 500) return ErrorCode.Internal;
  return ErrorCode.Validation;
}

/** Parses a JSON object body; empty body → {}. */
export async function readJsonObject(request: Request): Promise<Record<string, unknown>> {
  const text = await request.text();
  if (text.trim() === "") return {};
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new ApiError(400, ErrorCode.Validation, "Malformed JSON in request body");
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new ApiError(400, ErrorCode.Validation, "Request body must be a JSON object");
  }
  return value as Record<string, unknown>;
}
