import type { StatsDelta } from "./counters";

/**
 * Counts of this isolate not yet written to the counter table (counters.ts). Nothing here costs a round
 * trip of its own on a hot path:
 *
 * - frequent events (a call our own budget refused) are only counted here, and ride along with this
 *   isolate's next budget lease (lease-pool.ts), or with the next rare event's write;
 * - rare events (a failed Cloudflare call, a webhook, a sweep) are written at once, off the caller's path
 *   (`flushStats` is never awaited by the request it counts, except by the sweep and the stats read);
 * - GET /api/admin/stats writes this isolate's pending counts before it reads.
 *
 * Only plain numbers live here (no stubs, no promises shared across requests): every write goes through
 * the caller's own stub. A write that fails puts its counts back.
 */
const pending = new Map<string, number>();

export function countLocally(name: string, n = 1): void {
  pending.set(name, (pending.get(name) ?? 0) + n);
}

/** Everything pending, removed from the buffer (give it back with `restorePending` if the write fails). */
export function takePending(): StatsDelta | undefined {
  if (pending.size === 0) return undefined;
  const add = Object.fromEntries(pending);
  pending.clear();
  return { add };
}

export function restorePending(delta: StatsDelta | undefined): void {
  for (const [name, n] of Object.entries(delta?.add ?? {})) countLocally(name, n);
}

export interface StatsSink {
  recordStats(delta: StatsDelta): Promise<void>;
}

/** Writes the pending counts (and `extra`, e.g. a sweep's `set` figures) through `sink`; never throws. */
export async function flushStats(sink: StatsSink, extra?: StatsDelta): Promise<void> {
  const taken = takePending();
  if (!taken && !extra) return;
  const delta: StatsDelta = { add: { ...(taken?.add ?? {}) }, set: { ...(extra?.set ?? {}) } };
  for (const [name, n] of Object.entries(extra?.add ?? {})) delta.add![name] = (delta.add![name] ?? 0) + n;
  try {
    await sink.recordStats(delta);
  } catch (error) {
    restorePending({ add: delta.add });
    console.error("could not record stats; kept for the next write", error instanceof Error ? error.message : typeof error);
  }
}

/** Tests: forget what is pending. */
export function clearPendingStats(): void {
  pending.clear();
}
