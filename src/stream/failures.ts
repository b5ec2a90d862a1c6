import { fail, type Failure } from "../http/errors";

/** The answer for a stream this object does not hold, or that the caller may not see (never which of the two). */
export function streamNotFound(): Failure {
  return fail(404, "STREAM_NOT_FOUND", "Managed stream not found");
}

/** A refused WebSocket upgrade: the same `{error, message}` JSON as every REST refusal. */
export function jsonFailure(failure: Failure): Response {
  return new Response(JSON.stringify({ error: failure.error, message: failure.message }), {
    status: failure.status,
    headers: { "content-type": "application/json; charset=utf-8" },
  });
}
