/**
 * How often one stream reads Cloudflare. Pure functions of the stream's situation, shared by the
 * Durable Object and the benchmark's simulation, so the numbers `npm run bench` reports are the ones
 * production runs.
 *
 * | situation                                               | live input read      | outputs list        |
 * |---------------------------------------------------------|----------------------|---------------------|
 * | never connected, first 2 minutes                        | 2 s (10 s if webhooks are configured) | —  |
 * | nobody connected to us and the input not live           | none                 | none                |
 * | webhooks have arrived for this stream                   | slow × 10 (confirm)  | slow × 5            |
 * | otherwise                                               | slow (default 30 s)  | slow × 5            |
 *
 * Outputs are listed only while the stream has outputs. Steady state per stream-hour, default slow 30 s:
 * 120 + 24 = 144 calls without webhooks, 12 + 24 = 36 with them (targets: ≤ 150 and ≤ 60).
 */
export const FAST_POLL_MS = 2_000;
export const FAST_POLL_WITH_WEBHOOKS_MS = 10_000;
export const FAST_POLL_WINDOW_MS = 2 * 60_000;
export const CONFIRM_FACTOR = 10;
export const OUTPUTS_FACTOR = 5;

export interface PollSituation {
  now: number;
  createdAt: number;
  everConnected: boolean;
  ingestConnected: boolean;
  hasClients: boolean;
  hasOutputs: boolean;
  webhooksConfigured: boolean;
  /** A webhook for this stream has arrived: polling only confirms. */
  webhooksSeen: boolean;
  slowPollMs: number;
}

/** Delay until the next live input read, or null for none. */
export function inputPollDelay(s: PollSituation): number | null {
  if (!s.everConnected && s.now - s.createdAt < FAST_POLL_WINDOW_MS) {
    return s.webhooksConfigured ? FAST_POLL_WITH_WEBHOOKS_MS : FAST_POLL_MS;
  }
  if (!s.hasClients && !s.ingestConnected) return null;
  return s.webhooksSeen ? s.slowPollMs * CONFIRM_FACTOR : s.slowPollMs;
}

/** Delay until the next outputs list, or null for none. */
export function outputsPollDelay(s: PollSituation): number | null {
  if (!s.hasOutputs) return null;
  if (!s.hasClients && !s.ingestConnected) return null;
  return s.slowPollMs * OUTPUTS_FACTOR;
}

/** Our knowledge is stale after three input-poll intervals without a successful read. */
export function isStale(s: PollSituation, lastSuccessAt: number | null): boolean {
  const interval = inputPollDelay(s);
  if (interval === null || lastSuccessAt === null) return false;
  return s.now - lastSuccessAt > 3 * interval + 1_000;
}

/** Exponential backoff with jitter for failed reads; Cloudflare's retry-after wins when longer. */
export function errorBackoffMs(failures: number, retryAfterSeconds: number | undefined, random = Math.random()): number {
  const base = Math.min(5 * 60_000, 2_000 * 2 ** Math.max(0, failures - 1));
  return Math.max(base * (0.75 + random * 0.5), (retryAfterSeconds ?? 0) * 1000);
}
