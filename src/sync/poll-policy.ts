/**
 * How often one stream reads Cloudflare. Pure functions of the stream's situation, shared by the
 * Durable Object and the benchmark's simulation, so the numbers `npm run bench` reports are the ones
 * production runs.
 *
 * A read is planned only where it can change an answer. Webhooks tell us of ingest changes, so while
 * they arrive the input read only confirms; the outputs list can only reveal changes made outside us
 * (our own mutations are read back by the reconcile timer), so it is rare.
 *
 * | situation (first match wins)                            | live input read                        | outputs list |
 * |---------------------------------------------------------|----------------------------------------|--------------|
 * | never connected, first 2 minutes                        | 2 s (10 s if webhooks are configured)  | slow × 60    |
 * | no socket open and the input not live                   | none                                   | none         |
 * | live, webhooks trusted                                  | slow × 30 (15 min): confirm            | slow × 60    |
 * | live, no webhooks                                       | slow × 2.5 (75 s)                      | slow × 60    |
 * | not live, sockets open, webhooks trusted                | slow × 10 (5 min)                      | slow × 60    |
 * | not live, sockets open, no webhooks                     | slow (default 30 s): a reconnect is awaited | slow × 60 |
 *
 * "slow × 60" for the outputs list is the default of OUTPUTS_POLL_SECONDS (1,800), which sets it in
 * production; the fallback serves callers (the bench's simulation) that do not pass `outputsPollMs`.
 * Outputs are listed only while the stream has outputs (and 10 s after ingest connects). "Webhooks
 * trusted": one has arrived for this stream and no read has since caught a change they missed.
 * Slow reads fall on per-stream slots (a phase hashed from the stream id): reads stay at most one
 * interval apart, and streams started together, or released together by the budget, do not read
 * together (1,000 streams' confirms in one minute would hit the budget's poll cap every 15 minutes).
 * Per live stream-hour, default slow 30 s: 4 + 2 = 6 calls with webhooks, 48 + 2 = 50 without
 * (targets ≤ 10 and ≤ 60).
 */
export const FAST_POLL_MS = 2_000;
export const FAST_POLL_WITH_WEBHOOKS_MS = 10_000;
export const FAST_POLL_WINDOW_MS = 2 * 60_000;
/** Live without webhooks: a dropped ingest is seen within 75 s (30 s slow poll). */
export const LIVE_FACTOR = 2.5;
/** Live with webhooks: a read only catches a lost webhook. */
export const CONFIRM_FACTOR = 30;
/** Not live, webhooks trusted: the reconnect's webhook is expected; this catches a lost one. */
export const AWAIT_CONFIRM_FACTOR = 10;
export const OUTPUTS_FACTOR = 60;
/** Relays start when ingest connects: look at the outputs this soon rather than a full interval later. */
export const OUTPUTS_CHECK_AFTER_CONNECT_MS = 10_000;

export interface PollSituation {
  now: number;
  createdAt: number;
  everConnected: boolean;
  ingestConnected: boolean;
  hasClients: boolean;
  hasOutputs: boolean;
  webhooksConfigured: boolean;
  /** A webhook for this stream has arrived and no read has caught one missing since: polling only confirms. */
  webhooksSeen: boolean;
  /** The last live input read failed (knowledge is judged at the no-webhook cadence until one succeeds). */
  readsFailing?: boolean;
  slowPollMs: number;
  /** How often a watched stream with outputs lists them (OUTPUTS_POLL_SECONDS; default slow × 60). */
  outputsPollMs?: number;
  /** Where in each interval this stream's slow reads fall, in [0, 1) (see `phaseOf`). */
  phase?: number;
}

/** A stable phase in [0, 1) for a stream id: FNV-1a, then a final mix so ids differing late spread too. */
export function phaseOf(id: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < id.length; i++) h = Math.imul(h ^ id.charCodeAt(i), 0x01000193);
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return ((h ^ (h >>> 16)) >>> 0) / 2 ** 32;
}

/**
 * Delay to this stream's next slot of `interval`: in (0, interval], the same for every call within one
 * interval, so re-planning (which only brings a timer closer) never drifts a read earlier.
 */
function toSlot(s: PollSituation, interval: number): number {
  const offset = Math.floor((s.phase ?? 0) * interval);
  const delay = (((offset - s.now) % interval) + interval) % interval;
  return delay === 0 ? interval : delay;
}

const watched = (s: PollSituation) => s.hasClients || s.ingestConnected;

/** The input-read interval (the longest gap between reads), or null for none. */
export function inputPollInterval(s: PollSituation): number | null {
  if (!s.everConnected && s.now - s.createdAt < FAST_POLL_WINDOW_MS) {
    return s.webhooksConfigured ? FAST_POLL_WITH_WEBHOOKS_MS : FAST_POLL_MS;
  }
  if (!watched(s)) return null;
  if (s.ingestConnected) return s.slowPollMs * (s.webhooksSeen ? CONFIRM_FACTOR : LIVE_FACTOR);
  return s.webhooksSeen ? s.slowPollMs * AWAIT_CONFIRM_FACTOR : s.slowPollMs;
}

/** Delay until the next live input read, or null for none: the fast polls as they are, slow ones on the slot. */
export function inputPollDelay(s: PollSituation): number | null {
  const interval = inputPollInterval(s);
  if (interval === null || interval < s.slowPollMs) return interval;
  return toSlot(s, interval);
}

/** The outputs-list interval, or null for none. */
export function outputsPollInterval(s: PollSituation): number | null {
  return s.hasOutputs && watched(s) ? (s.outputsPollMs ?? s.slowPollMs * OUTPUTS_FACTOR) : null;
}

/** Delay until the next outputs list (on the slot), or null for none. */
export function outputsPollDelay(s: PollSituation): number | null {
  const interval = outputsPollInterval(s);
  return interval === null ? null : toSlot(s, interval);
}

/** Delay of the one extra outputs list when ingest connects, or null for none. */
export function outputsCheckAfterConnectDelay(s: PollSituation): number | null {
  return s.hasOutputs ? OUTPUTS_CHECK_AFTER_CONNECT_MS : null;
}

/**
 * When our knowledge goes stale: three input-poll intervals after the last successful read (or
 * webhook), or null while no poll is planned. While reads fail, the interval is the no-webhook one:
 * webhooks cannot vouch for a stream we cannot read.
 */
export function staleAt(s: PollSituation, lastSuccessAt: number | null): number | null {
  const interval = inputPollInterval(s.readsFailing ? { ...s, webhooksSeen: false } : s);
  if (interval === null || lastSuccessAt === null) return null;
  return lastSuccessAt + 3 * interval + 1_000;
}

export function isStale(s: PollSituation, lastSuccessAt: number | null): boolean {
  const at = staleAt(s, lastSuccessAt);
  return at !== null && s.now > at;
}

/** Exponential backoff with jitter for failed reads; Cloudflare's retry-after wins when longer. */
export function errorBackoffMs(failures: number, retryAfterSeconds: number | undefined, random = Math.random()): number {
  const base = Math.min(5 * 60_000, 2_000 * 2 ** Math.max(0, failures - 1));
  return Math.max(base * (0.75 + random * 0.5), (retryAfterSeconds ?? 0) * 1000);
}

/**
 * Delay before retrying a failed input read: the backoff, but no later than the moment knowledge goes
 * stale, so the failure that makes it stale is seen (and pushed) then. Retry-after still wins.
 */
export function inputRetryDelay(backoffMs: number, retryAfterSeconds: number | undefined, staleAtMs: number | null, now: number): number {
  const retryAfterMs = (retryAfterSeconds ?? 0) * 1000;
  if (staleAtMs === null || staleAtMs <= now) return backoffMs;
  return Math.max(retryAfterMs, Math.min(backoffMs, staleAtMs + 1 - now));
}
