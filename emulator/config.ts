// The emulator's configuration: options given by the host, with Cloudflare-like defaults.

import { PLAYBACK_PREFIX } from "./playback-http.ts";
import type { EmulatorConfig, EmulatorOptions } from "./types.ts";

export function configFrom(o: EmulatorOptions): EmulatorConfig {
  const windowSeconds = o.rateLimit?.windowSeconds ?? 300;
  return {
    apiToken: o.apiToken ?? "local-dev-token",
    accountId: o.accountId ?? "local-account",
    rtmpIngestUrl: o.rtmpIngestUrl ?? "rtmp://127.0.0.1:1935/live/",
    srtIngestUrl: o.srtIngestUrl ?? "srt://127.0.0.1:8890",
    // The customer host's stand-in: playback-http.ts serves it under /playback.
    publicBaseUrl: o.publicBaseUrl ?? `http://127.0.0.1:8788${PLAYBACK_PREFIX}`,
    rateLimitRequests: o.rateLimit?.requests ?? 1200,
    rateLimitWindowSeconds: windowSeconds,
    rateLimitBlockSeconds: o.rateLimit?.blockSeconds ?? windowSeconds,
    maxLiveInputs: o.maxLiveInputs ?? 1000,
    webhookUrl: o.webhook?.url ?? null,
    webhookSecret: o.webhook?.secret ?? "",
    statusShape: o.statusShape ?? "object",
    verifyWebhookDestinations: o.verifyWebhookDestinations ?? true,
    videoReadyDelaySeconds: o.videoReadyDelaySeconds ?? 10,
    defaultRecordingTimeoutSeconds: o.defaultRecordingTimeoutSeconds ?? 0,
    storageMinutesLimit: o.storageMinutesLimit ?? 100_000,
  };
}
