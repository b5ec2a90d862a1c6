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
    expect(denied).toEqual({ granted: false, retryAfterMs: WINDOW_MS - 100 });
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
});
