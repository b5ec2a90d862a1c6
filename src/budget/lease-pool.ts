import type { StatsDelta } from "../ops/counters";
import { restorePending, takePending } from "../ops/stats-buffer";
import type { BudgetSettings, Grant, Lease, Priority } from "./sliding-window";

/**
 * Budget slots leased in small batches and kept in this isolate, so most Cloudflare calls take a slot
 * without a round trip to the ApiBudget object. Safe by construction:
 *
 * - A lease is counted by ApiBudget as used the moment it is granted, at its expiry time (the latest
 *   moment a slot may be spent), so leased + used never exceeds the limit and every slot stays in the
 *   5-minute window at least as long as the call it pays for.
 * - A slot is never spent after its lease expires (LEASE_TTL_MS). A crashed holder's unspent slots
 *   simply age out of the window; nothing has to be returned.
 * - Priorities stay apart: each priority leases under its own cap and only spends its own slots.
 * - A Cloudflare 429 seen by any object in this isolate drops every pooled slot and blocks the isolate
 *   for its retry-after at once; ApiBudget refuses new leases while blocked, so other isolates stop
 *   within one lease lifetime (at most LEASE_TTL_MS, spending at most MAX_BATCH slots per priority).
 *
 * A refusal (the window is full for this priority) is remembered until its retry-after, so a full
 * budget costs no round trips either.
 *
 * Batches start at one slot and double while demand uses them up within a lease, up to MAX_BATCH; an
 * idle isolate leases one slot per call again, so unused slots waste at most MAX_BATCH − 1 per lease.
 * Only plain numbers live here (no stubs, no promises): each object refills through its own stub.
 */
export const LEASE_TTL_MS = 2_000;
export const MAX_BATCH = 8;

export interface LeaseSource {
  /** `stats`: this isolate's pending counters ride along (ops/stats-buffer.ts), so counting costs no round trip. */
  lease(priority: Priority, settings: BudgetSettings, count: number, ttlMs: number, stats?: StatsDelta): Promise<Lease>;
}

interface Pool {
  slots: number;
  expiresAt: number;
  nextBatch: number;
  /** ApiBudget refused this priority until then (its window is full): refuse here without asking. */
  refusedUntil: number;
}

const pools = new Map<Priority, Pool>();
let blockedUntil = 0;

export async function acquireLeased(source: LeaseSource, priority: Priority, settings: BudgetSettings, now: () => number): Promise<Grant> {
  const t = now();
  if (t < blockedUntil) return { granted: false, retryAfterMs: blockedUntil - t };
  const pool = pools.get(priority) ?? { slots: 0, expiresAt: 0, nextBatch: 1, refusedUntil: 0 };
  pools.set(priority, pool);
  if (pool.slots > 0 && t < pool.expiresAt) {
    pool.slots--;
    return { granted: true };
  }
  // Slots come back only as the window slides, which the refusal's retry-after already accounts for.
  if (t < pool.refusedUntil) return { granted: false, retryAfterMs: pool.refusedUntil - t };
  // Demand used the last batch within its lifetime: lease more next time; idle: back to one.
  const batch = pool.expiresAt > t ? Math.min(MAX_BATCH, pool.nextBatch * 2) : t - pool.expiresAt < LEASE_TTL_MS ? pool.nextBatch : 1;
  const stats = takePending();
  let lease: Lease;
  try {
    lease = await source.lease(priority, settings, batch, LEASE_TTL_MS, stats);
  } catch (error) {
    restorePending(stats);
    throw error;
  }
  if (!lease.granted) {
    const current = pools.get(priority);
    if (current) current.refusedUntil = Math.max(current.refusedUntil, t + lease.retryAfterMs);
    return { granted: false, retryAfterMs: lease.retryAfterMs };
  }
  const after = now();
  // A 429 seen while this lease was in flight wins: its slots are not used.
  if (after < blockedUntil) return { granted: false, retryAfterMs: blockedUntil - after };
  // One slot for this call; the rest join the pool (replacing expired ones) until the lease expires.
  // Expiry by our own clock from before the request too, whichever is sooner (clock skew never extends it).
  const expiresAt = Math.min(lease.expiresAt, t + LEASE_TTL_MS);
  // (The pool may have been dropped meanwhile, by a block or a reset: start a new one.)
  const current = pools.get(priority) ?? { slots: 0, expiresAt: 0, nextBatch: 1, refusedUntil: 0 };
  pools.set(priority, current);
  const keep = current.slots > 0 && after < current.expiresAt ? Math.min(current.expiresAt, expiresAt) : expiresAt;
  current.slots = (after < current.expiresAt ? current.slots : 0) + lease.count - 1;
  current.expiresAt = keep;
  current.nextBatch = batch;
  return { granted: true };
}

/** Cloudflare answered 429: no pooled slot is spent until its retry-after has passed. */
export function blockLeases(until: number): void {
  blockedUntil = Math.max(blockedUntil, until);
  pools.clear();
}

/** Forget every pooled slot and block (ApiBudget.clear in this isolate: operator action and tests). */
export function resetLeases(): void {
  blockedUntil = 0;
  pools.clear();
}
