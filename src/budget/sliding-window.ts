/**
 * The shared Cloudflare API budget: a sliding-window log of granted calls. Cloudflare allows 1,200
 * requests per 5 minutes per token and blocks *every* call for 5 minutes once exceeded (BRIEF §1), so
 * we count exactly (not a token bucket, which can burst past a window) and stay below the limit.
 *
 * Priorities: user-initiated mutations and cleanup may use the whole limit; polls only up to
 * `pollShare` of it, so when the budget is tight polls yield and are deferred, never users.
 */
export type Priority = "user" | "cleanup" | "poll";

export const WINDOW_MS = 5 * 60_000;

export interface GrantLog {
  countSince(since: number): number;
  /** The n-th oldest grant at or after `since` (0-based), to know when a slot frees up. */
  nthSince(since: number, n: number): number | null;
  add(at: number): void;
  pruneBefore(before: number): void;
}

export interface BudgetSettings {
  /** Grants allowed in any 5-minute window (keep below Cloudflare's 1,200). */
  limit: number;
  /** Fraction of the limit polls may use. */
  pollShare: number;
}

export type Grant = { granted: true } | { granted: false; retryAfterMs: number };

/** Up to `count` slots, each counted as used at `expiresAt`; none may be spent after it. */
export type Lease = { granted: true; count: number; expiresAt: number } | { granted: false; retryAfterMs: number };

export class SlidingWindowBudget {
  private blockedUntil = 0;

  constructor(private readonly log: GrantLog) {}

  acquire(priority: Priority, settings: BudgetSettings, now: number): Grant {
    const lease = this.lease(priority, settings, now, 1, 0);
    return lease.granted ? { granted: true } : lease;
  }

  /**
   * Grants up to `count` slots at once, to be spent by `now + ttlMs`. Each is logged at that expiry (the
   * latest moment it may be spent), so a leased slot counts as used from the moment it is granted and
   * stays in the window at least five minutes after its call: leased + used never exceeds the cap.
   */
  lease(priority: Priority, settings: BudgetSettings, now: number, count: number, ttlMs: number): Lease {
    if (now < this.blockedUntil) return { granted: false, retryAfterMs: this.blockedUntil - now };
    const since = now - WINDOW_MS;
    this.log.pruneBefore(since);
    const cap = priority === "poll" ? Math.floor(settings.limit * settings.pollShare) : settings.limit;
    const used = this.log.countSince(since);
    if (used < cap) {
      const granted = Math.max(1, Math.min(Math.floor(count), cap - used));
      const expiresAt = now + Math.max(0, ttlMs);
      for (let i = 0; i < granted; i++) this.log.add(expiresAt);
      return { granted: true, count: granted, expiresAt };
    }
    // The slot frees when enough of the oldest grants leave the window: a grant at g counts through
    // g + WINDOW_MS (its last millisecond included), so the slot is back one millisecond later.
    const freesAt = this.log.nthSince(since, used - cap);
    return { granted: false, retryAfterMs: Math.max(1, (freesAt ?? now) + WINDOW_MS + 1 - now) };
  }

  /** Cloudflare answered 429: nobody calls until its retry-after has passed. */
  block(until: number): void {
    this.blockedUntil = Math.max(this.blockedUntil, until);
  }

  get blockedUntilMs(): number {
    return this.blockedUntil;
  }

  restoreBlock(until: number): void {
    this.blockedUntil = until;
  }
}

/** In-memory log (the benchmark's simulation and unit tests). */
export class MemoryGrantLog implements GrantLog {
  private readonly times: number[] = [];
  countSince(since: number): number {
    return this.times.filter((t) => t >= since).length;
  }
  nthSince(since: number, n: number): number | null {
    return this.times.filter((t) => t >= since).sort((a, b) => a - b)[n] ?? null;
  }
  add(at: number): void {
    this.times.push(at);
  }
  pruneBefore(before: number): void {
    // Leases log slots at their expiry, so times are not always in order.
    const kept = this.times.filter((t) => t >= before);
    this.times.splice(0, this.times.length, ...kept);
  }
}
