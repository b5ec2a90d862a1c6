import type { Env } from "../env";
import { loadConfig } from "../config";
import { toRemoteVideo } from "../cloudflare/video-api";
import { StreamId } from "../schemas/api";
import { clock } from "../clock";
import { readBody } from "./body";
import { ApiError, json } from "./errors";

/**
 * POST /api/webhooks/cloudflare-stream-video: Cloudflare Stream's video webhook (one per account, set with
 * `PUT /stream/webhook`), POSTed when a video is ready or failed. The body is the whole video object, signed
 * `Webhook-Signature: time=<unix s>,sig1=hex(HMAC-SHA256(secret, time + "." + body))` over the exact bytes.
 * A missing or wrong signature, or one older than 5 minutes (a replay), is 401 and changes nothing. The video's
 * `creator` is our streamId (every live input we create sets `defaultCreator`), which names the stream object
 * that settles the recording.
 */
const MAX_AGE_SECONDS = 300;

export async function handleVideoWebhook(request: Request, env: Env): Promise<Response> {
  const secret = loadConfig(env).videoWebhookSecret;
  if (!secret) throw new ApiError(503, "WEBHOOKS_DISABLED", "The video webhook is disabled: STREAM_VIDEO_WEBHOOK_SECRET is not configured");
  const text = await readBody(request);
  if (!(await signatureValid(request.headers.get("webhook-signature"), text, secret, clock.now()))) {
    throw new ApiError(401, "UNAUTHORIZED", "Invalid or expired Webhook-Signature");
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new ApiError(400, "INVALID_PAYLOAD", "Request body is not valid JSON");
  }
  const video = toRemoteVideo(value);
  if (!video) throw new ApiError(400, "INVALID_PAYLOAD", "The body is not a video object (no uid)");
  if (!video.creator || !StreamId.safeParse(video.creator).success) return json({ ok: true, streamId: null, applied: false, reason: "not a recording of ours" });
  const result = await env.STREAMS.getByName(video.creator).applyVideoWebhook(video);
  return json({ ok: true, streamId: video.creator, ...result });
}

/** `time=…,sig1=…` checked in constant time against our HMAC of `time.body`, and for freshness. */
export async function signatureValid(header: string | null, body: string, secret: string, nowMs: number): Promise<boolean> {
  if (!header) return false;
  const parts = new Map(header.split(",").map((p) => p.trim().split("=", 2) as [string, string]));
  const time = parts.get("time");
  const sig = parts.get("sig1");
  if (!time || !/^\d{1,12}$/.test(time) || !sig || !/^[0-9a-f]{64}$/i.test(sig)) return false;
  if (Math.abs(nowMs / 1000 - Number(time)) > MAX_AGE_SECONDS) return false;
  const enc = new TextEncoder();
  const key = await crypto.subtle.importKey("raw", enc.encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  const expected = new Uint8Array(await crypto.subtle.sign("HMAC", key, enc.encode(`${time}.${body}`)));
  const given = new Uint8Array(sig.match(/../g)!.map((h) => parseInt(h, 16)));
  return given.byteLength === expected.byteLength && crypto.subtle.timingSafeEqual(given, expected);
}
