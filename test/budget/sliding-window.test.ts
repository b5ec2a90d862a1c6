import { describe, expect, it } from "vitest";
import { MemoryGrantLog, SlidingWindowBudget, WINDOW_MS } from "../../src/budget/sliding-window";

const settings = { limit: 10, pollShare: 0.5 };

describe("SlidingWindowBudget", () => {
  it("never grants more than the limit in any 5-minute window", () => {
    const budget = new SlidingWindowBudget(new MemoryGrantLog());
    const granted: number[] = [];
    // One request every 3 s for 20 minutes, alternating priorities.
    for (let i = 0, t = 0; t < 20 * 60_000; i++, t += 3_000) {
      if (budget.acquire(i % 2 ? "user" : "poll", settings, t).granted) granted.push(t);
    }
    for (const start of granted) {
      expect(granted.filter((t) => t >= start && t < start + WINDOW_MS).length).toBeLessThanOrEqual(10);
    }
    expect(granted.length).toBeGreaterThan(30);
  });

  it("polls yield: they stop at their share while users may use the rest", () => {
    const budget = new SlidingWindowBudget(new MemoryGrantLog());
    let polls = 0;
    for (let i = 0; i < 10; i++) if (budget.acquire("poll", settings, i).granted) polls++;
    expect(polls).toBe(5);
    const denied = budget.acquire("poll", settings, 100);
    // The oldest poll (at 0) counts until WINDOW_MS inclusive: its slot is back one millisecond later.
    expect(denied).toEqual({ granted: false, retryAfterMs: WINDOW_MS + 1 - 100 });
    for (let i = 0; i < 5; i++) expect(budget.acquire("user", settings, 200 + i).granted).toBe(true);
    expect(budget.acquire("user", settings, 300).granted).toBe(false);
    // When the oldest grants leave the window, slots come back.
    expect(budget.acquire("user", settings, WINDOW_MS + 1).granted).toBe(true);
  });

  it("a Cloudflare 429 blocks every priority until its retry-after", () => {
    const budget = new SlidingWindowBudget(new MemoryGrantLog());
    budget.block(5_000);
    expect(budget.acquire("user", settings, 1_000)).toEqual({ granted: false, retryAfterMs: 4_000 });
    expect(budget.acquire("user", settings, 5_000).granted).toBe(true);
  });

  it("a shorter 429 block never overwrites a longer one", () => {
    const budget = new SlidingWindowBudget(new MemoryGrantLog());
    budget.block(60_000);
    budget.block(5_000);
    expect(budget.blockedUntilMs).toBe(60_000);
    expect(budget.acquire("user", settings, 59_999)).toEqual({ granted: false, retryAfterMs: 1 });
    expect(budget.acquire("user", settings, 60_000).granted).toBe(true);
    // A longer one does extend it.
    budget.block(90_000);
    expect(budget.blockedUntilMs).toBe(90_000);
  });

  it("a restored block holds as it did before the restart (and a restore of 0 lifts it)", () => {
    const budget = new SlidingWindowBudget(new MemoryGrantLog());
    budget.restoreBlock(10_000);
    expect(budget.acquire("poll", settings, 9_999).granted).toBe(false);
    expect(budget.acquire("poll", settings, 10_000).granted).toBe(true);
    budget.block(20_000);
    budget.restoreBlock(0);
    expect(budget.acquire("user", settings, 10_001).granted).toBe(true);
  });

  it("leases count as used from the moment they are granted, so leased + used never exceeds the cap", () => {
    const budget = new SlidingWindowBudget(new MemoryGrantLog());
    expect(budget.lease("user", settings, 0, 6, 2_000)).toEqual({ granted: true, count: 6, expiresAt: 2_000 });
    expect(budget.lease("user", settings, 10, 6, 2_000)).toMatchObject({ granted: true, count: 4 });
    expect(budget.lease("user", settings, 20, 1, 2_000).granted).toBe(false);
    expect(budget.acquire("cleanup", settings, 30).granted).toBe(false);
    // Polls lease only within their share, counting everything already leased.
    const fresh = new SlidingWindowBudget(new MemoryGrantLog());
    expect(fresh.lease("poll", settings, 0, 8, 2_000)).toMatchObject({ count: 5 });
    expect(fresh.lease("poll", settings, 1, 1, 2_000).granted).toBe(false);
  });

  it("a leased slot stays in the window five minutes past its lease's expiry (the latest it may be spent)", () => {
    const budget = new SlidingWindowBudget(new MemoryGrantLog());
    budget.lease("user", settings, 0, 10, 2_000);
    expect(budget.acquire("user", settings, WINDOW_MS + 2_000).granted).toBe(false);
    expect(budget.acquire("user", settings, WINDOW_MS + 2_001).granted).toBe(true);
  });

  it("refuses leases while a 429 block lasts", () => {
    const budget = new SlidingWindowBudget(new MemoryGrantLog());
    budget.block(5_000);
    expect(budget.lease("user", settings, 1_000, 4, 2_000)).toEqual({ granted: false, retryAfterMs: 4_000 });
    expect(budget.lease("user", settings, 5_000, 4, 2_000).granted).toBe(true);
  });

  it("a refused call is told when the oldest grant leaves the window, to the millisecond", () => {
    const budget = new SlidingWindowBudget(new MemoryGrantLog());
    const two = { limit: 2, pollShare: 0.5 };
    budget.acquire("user", two, 1_000);
    budget.acquire("user", two, 4_000);
    expect(budget.acquire("user", two, 10_000)).toEqual({ granted: false, retryAfterMs: 1_000 + WINDOW_MS + 1 - 10_000 });
    // A grant counts for the window's whole five minutes, its last millisecond included.
    expect(budget.acquire("user", two, 1_000 + WINDOW_MS)).toEqual({ granted: false, retryAfterMs: 1 });
    expect(budget.acquire("user", two, 1_000 + WINDOW_MS + 1).granted).toBe(true);
  });

  it("the window is Cloudflare's five minutes: a grant counts for 300,000 ms, its last millisecond included", () => {
    const budget = new SlidingWindowBudget(new MemoryGrantLog());
    const one = { limit: 1, pollShare: 0.5 };
    expect(budget.acquire("user", one, 0).granted).toBe(true);
    expect(budget.acquire("user", one, 300_000)).toEqual({ granted: false, retryAfterMs: 1 });
    expect(budget.acquire("user", one, 300_001).granted).toBe(true);
  });

  it("a caller that waits exactly the retry-after it was told is served", () => {
    const budget = new SlidingWindowBudget(new MemoryGrantLog());
    const one = { limit: 1, pollShare: 0.5 };
    expect(budget.lease("user", one, 0, 1, 2_000).granted).toBe(true);
    const refused = budget.acquire("user", one, 60_000);
    expect(refused.granted).toBe(false);
    const wait = refused.granted ? 0 : refused.retryAfterMs;
    expect(budget.acquire("user", one, 60_000 + wait - 1).granted).toBe(false);
    expect(budget.acquire("user", one, 60_000 + wait).granted).toBe(true);
  });

  it("polls with no share at all are refused for a whole window, users are not", () => {
    const budget = new SlidingWindowBudget(new MemoryGrantLog());
    const none = { limit: 10, pollShare: 0 };
    expect(budget.acquire("poll", none, 0)).toEqual({ granted: false, retryAfterMs: WINDOW_MS + 1 });
    expect(budget.acquire("user", none, 0).granted).toBe(true);
  });
});

describe("MemoryGrantLog (the in-memory log of the benchmark and these tests)", () => {
  it("counts, orders and prunes grants logged out of order (leases log at their expiry)", () => {
    const log = new MemoryGrantLog();
    for (const t of [5_000, 1_000, 3_000, 2_000]) log.add(t);
    expect(log.countSince(2_000)).toBe(3);
    expect(log.countSince(5_001)).toBe(0);
    expect(log.nthSince(2_000, 0)).toBe(2_000);
    expect(log.nthSince(2_000, 1)).toBe(3_000);
    expect(log.nthSince(2_000, 2)).toBe(5_000);
    expect(log.nthSince(2_000, 3)).toBeNull();
    expect(log.nthSince(2_001, 0)).toBe(3_000);
    log.pruneBefore(3_000);
    expect(log.countSince(0)).toBe(2);
    expect(log.nthSince(0, 0)).toBe(3_000);
  });
});
