import type { Env } from "../env";
import { loadConfig } from "../config";
import { secretsEqual } from "../apps/credentials";
import { streamIdForInput } from "../cloudflare/live-input-index";
import { BUDGET_OBJECT_NAME } from "../budget/api-budget";
import { STAT, type WebhookOutcome } from "../ops/counters";
import { countLocally, flushStats } from "../ops/stats-buffer";
import { LiveInputWebhook } from "../schemas/webhook";
import { clock } from "../clock";
import { describeIssues, readBody } from "./body";
import { ApiError, json } from "./errors";

/**
 * POST /api/webhooks/cloudflare-stream: Cloudflare Notifications (`stream_live_notifications`), authenticated
 * by the shared secret Cloudflare sends back as `cf-webhook-auth` (scripts/setup-cloudflare.ts configures it).
 *
 * Cloudflare POSTs a test message (`{"text": "Hello World! This is a test message …"}`, no `data`) when the
 * webhook destination is created or updated, and keeps the destination only if it gets a 2xx: an
 * authenticated message without `data` is answered 200 `{ok: true, test: true}` and changes nothing.
 *
 * Every outcome is counted for GET /api/admin/stats (accepted, test, unauthorized, invalid_payload,
 * unknown_input, disabled, failed), written after the answer through waitUntil.
 */
export async function handleStreamWebhook(request: Request, env: Env, ctx: ExecutionContext): Promise<Response> {
  let outcome: WebhookOutcome = "failed";
  try {
    const response = await apply(request, env, (o) => (outcome = o));
    return response;
  } catch (error) {
    if (error instanceof ApiError) outcome = outcomeOf(error, outcome);
    throw error;
  } finally {
    countLocally(STAT.webhook(outcome));
    // After the answer; a caller without waitUntil (a test's bare context) just lets the write run.
    const write = flushStats(env.BUDGET.getByName(BUDGET_OBJECT_NAME));
    if (typeof ctx?.waitUntil === "function") ctx.waitUntil(write);
  }
}

function outcomeOf(error: ApiError, current: WebhookOutcome): WebhookOutcome {
  if (current !== "failed") return current;
  if (error.code === "WEBHOOKS_DISABLED") return "disabled";
  if (error.code === "UNAUTHORIZED") return "unauthorized";
  if (error.code === "INVALID_PAYLOAD" || error.code === "PAYLOAD_TOO_LARGE") return "invalid_payload";
  if (error.code === "UNKNOWN_LIVE_INPUT") return "unknown_input";
  return "failed";
}

async function apply(request: Request, env: Env, settle: (o: WebhookOutcome) => void): Promise<Response> {
  const secret = loadConfig(env).webhookSecret;
  if (!secret) throw new ApiError(503, "WEBHOOKS_DISABLED", "Webhooks are disabled: WEBHOOK_SECRET is not configured");
  const provided = request.headers.get("cf-webhook-auth");
  if (!provided || !(await secretsEqual(provided, secret))) throw new ApiError(401, "UNAUTHORIZED", "Invalid webhook secret");
  const text = await readBody(request);
  let value: unknown = {};
  try {
    if (text.trim() !== "") value = JSON.parse(text);
  } catch {
    throw new ApiError(400, "INVALID_PAYLOAD", "Request body is not valid JSON");
  }
  if (isTestMessage(value)) {
    settle("test");
    return json({ ok: true, test: true });
  }
  const parsed = LiveInputWebhook.safeParse(value);
  if (!parsed.success) throw new ApiError(400, "INVALID_PAYLOAD", describeIssues(parsed.error));
  const event = parsed.data;
  const uid = event.data.input_id.toLowerCase();
  const streamId = await streamIdForInput(env, uid);
  if (!streamId) throw new ApiError(404, "UNKNOWN_LIVE_INPUT", "No stream owns this live input");
  const failure = event.data.live_input_errored?.error;
  const eventAt = Date.parse(event.data.updated_at ?? "") || (event.ts ? event.ts * 1000 : clock.now());
  const result = await env.STREAMS.getByName(streamId).applyWebhook({
    type: event.data.event_type,
    liveInputUid: uid,
    eventAt,
    error: failure ? [failure.code, failure.message].filter(Boolean).join(": ") || "unknown error" : null,
  });
  settle("accepted");
  return json({ ok: true, streamId, ...result });
}

/** Cloudflare's destination test: a JSON object with a `text` and no `data` (a notification always has `data`). */
function isTestMessage(value: unknown): boolean {
  return typeof value === "object" && value !== null && !Array.isArray(value) && !("data" in value) && typeof (value as { text?: unknown }).text === "string";
}
