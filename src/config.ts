import { z } from "zod";
import type { Env } from "./env";

/**
 * Typed configuration derived from the environment. Every knob has a default that suits production,
 * so a deployment needs only its secrets; `npm start` overrides the Cloudflare ones to reach the emulator.
 */
/** An integer setting: unset or unparsable → the default; out of range → clamped (never silently ignored). */
const intVar = (fallback: number, min: number, max: number) =>
  z.preprocess((value) => {
    const n = typeof value === "string" && value.trim() !== "" ? Number(value) : typeof value === "number" ? value : NaN;
    return Number.isFinite(n) ? Math.min(max, Math.max(min, Math.round(n))) : fallback;
  }, z.number().int());

const ConfigSchema = z.object({
  cloudflareApiBaseUrl: z.string().url().default("https://api.cloudflare.com/client/v4"),
  cloudflareApiToken: z.string().default(""),
  cloudflareAccountId: z.string().default(""),
  cloudflareTimeoutMs: intVar(10_000, 100, 120_000),
  playbackBaseUrl: z.string().optional(),
  customerCode: z.string().optional(),
  streamStartsPerMinute: intVar(10, 1, 10_000),
  joinWindowSeconds: intVar(30, 1, 3_600),
  viewerGraceSeconds: intVar(60, 0, 3_600),
  pollSlowSeconds: intVar(30, 1, 3_600),
  outputsPollSeconds: intVar(1_800, 5, 86_400),
  apiBudgetPer5Min: intVar(1_000, 10, 1_199),
  apiBudgetPollShare: z.preprocess((value) => {
    const n = Number(value);
    return value !== undefined && value !== "" && Number.isFinite(n) ? Math.min(1, Math.max(0.1, n)) : 0.8;
  }, z.number()),
  webhookSecret: z.string().optional(),
  leakSweepMinutes: intVar(10, 1, 1_440),
  presenceAuditSeconds: intVar(30, 1, 3_600),
  reconcileSeconds: intVar(10, 1, 60),
  orphanWatchMinutes: intVar(10, 1, 1_440),
  requireUserGrant: z.boolean(),
  // Realtime SFU rooms (stream/realtime-room.ts): the SFU app and the TURN key. Secrets stay in the Worker.
  realtimeApiBaseUrl: z.string().url().default("https://rtc.live.cloudflare.com/v1"),
  realtimeAppId: z.string().default(""),
  realtimeAppSecret: z.string().default(""),
  turnKeyId: z.string().default(""),
  turnKeyApiToken: z.string().default(""),
  turnCredentialTtlSeconds: intVar(86_400, 60, 172_800),
  /** Days a recording is kept (our own delete; Cloudflare's deleteRecordingAfterDays is only the backstop). */
  recordingRetentionDays: intVar(30, 1, 1_096),
  /** The secret Cloudflare signs the video webhook with (PUT /stream/webhook's answer). */
  videoWebhookSecret: z.string().optional(),
});

/**
 * Secure by default: only the exact value `false` (the string, or a JSON boolean in wrangler.jsonc) turns
 * user grants off, for a single trusted app. Anything else — unset, empty, `true`, or a typo such as
 * `False`, `0`, `no` — keeps them required, so a mistyped opt-out fails closed (403 USER_NOT_GRANTED)
 * instead of silently opening every user's stream to every app.
 */
export const userGrantRequired = (value: unknown): boolean => value !== "false" && value !== false;

export type Config = z.infer<typeof ConfigSchema>;

export function loadConfig(env: Env): Config {
  return ConfigSchema.parse({
    cloudflareApiBaseUrl: env.CLOUDFLARE_API_BASE_URL || undefined,
    cloudflareApiToken: env.CLOUDFLARE_API_TOKEN || undefined,
    cloudflareAccountId: env.CLOUDFLARE_ACCOUNT_ID || undefined,
    cloudflareTimeoutMs: env.CLOUDFLARE_TIMEOUT_MS,
    playbackBaseUrl: env.STREAM_PLAYBACK_BASE_URL || undefined,
    customerCode: env.STREAM_CUSTOMER_CODE || undefined,
    streamStartsPerMinute: env.STREAM_STARTS_PER_MINUTE,
    joinWindowSeconds: env.JOIN_WINDOW_SECONDS,
    viewerGraceSeconds: env.VIEWER_GRACE_SECONDS,
    pollSlowSeconds: env.POLL_SLOW_SECONDS,
    outputsPollSeconds: env.OUTPUTS_POLL_SECONDS,
    apiBudgetPer5Min: env.API_BUDGET_PER_5_MIN,
    apiBudgetPollShare: env.API_BUDGET_POLL_SHARE,
    webhookSecret: env.WEBHOOK_SECRET || undefined,
    leakSweepMinutes: env.LEAK_SWEEP_MINUTES,
    presenceAuditSeconds: env.PRESENCE_AUDIT_SECONDS,
    reconcileSeconds: env.RECONCILE_SECONDS,
    orphanWatchMinutes: env.ORPHAN_WATCH_MINUTES,
    requireUserGrant: userGrantRequired(env.REQUIRE_USER_GRANT),
    realtimeApiBaseUrl: env.REALTIME_API_BASE_URL || undefined,
    realtimeAppId: env.REALTIME_APP_ID || undefined,
    realtimeAppSecret: env.REALTIME_APP_SECRET || undefined,
    turnKeyId: env.TURN_KEY_ID || undefined,
    turnKeyApiToken: env.TURN_KEY_API_TOKEN || undefined,
    turnCredentialTtlSeconds: env.TURN_CREDENTIAL_TTL_SECONDS,
    recordingRetentionDays: env.RECORDING_RETENTION_DAYS,
    videoWebhookSecret: env.STREAM_VIDEO_WEBHOOK_SECRET || undefined,
  });
}
