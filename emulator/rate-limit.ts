// Sliding-window rate limiter modelled on Cloudflare's API limit (1200 req / 5 min, then blocked).

export interface RateLimitSnapshot {
  requests: number;
  windowSeconds: number;
  blockSeconds: number;
  used: number;
  blockedUntil: string | null;
}

export class RateLimiter {
  private hits: number[] = [];
  private blockedUntilMs = 0;

  constructor(
    public requests: number,
    public windowSeconds: number,
    public blockSeconds: number,
    private readonly now: () => number,
  ) {}

  /** Counts one call. Returns null when allowed, else the whole seconds until the block ends. */
  take(): number | null {
    const now = this.now();
    if (now < this.blockedUntilMs) return secondsLeft(this.blockedUntilMs, now);
    this.prune(now);
    if (this.hits.length >= this.requests) {
      // The call that exceeds the window starts a block of every call for blockSeconds.
      this.blockedUntilMs = now + this.blockSeconds * 1000;
      return secondsLeft(this.blockedUntilMs, now);
    }
    this.hits.push(now);
    return null;
  }

  reset(): void {
    this.hits = [];
    this.blockedUntilMs = 0;
  }

  snapshot(): RateLimitSnapshot {
    const now = this.now();
    this.prune(now);
    return {
      requests: this.requests,
      windowSeconds: this.windowSeconds,
      blockSeconds: this.blockSeconds,
      used: this.hits.length,
      blockedUntil: now < this.blockedUntilMs ? new Date(this.blockedUntilMs).toISOString() : null,
    };
  }

  private prune(now: number): void {
    const cutoff = now - this.windowSeconds * 1000;
    let i = 0;
    while (i < this.hits.length && (this.hits[i] ?? 0) <= cutoff) i++;
    if (i > 0) this.hits.splice(0, i);
  }
}

function secondsLeft(until: number, now: number): number {
  return Math.max(1, Math.ceil((until - now) / 1000));
}
