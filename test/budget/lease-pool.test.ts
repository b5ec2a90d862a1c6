import { beforeEach, describe, expect, it } from "vitest";
import { acquireLeased, blockLeases, LEASE_TTL_MS, MAX_BATCH, resetLeases, type LeaseSource } from "../../src/budget/lease-pool";
import { MemoryGrantLog, SlidingWindowBudget, WINDOW_MS, type BudgetSettings, type Priority } from "../../src/budget/sliding-window";

const settings: BudgetSettings = { limit: 40, pollShare: 0.5 };

/** ApiBudget's logic behind a fake clock, counting its round trips. */
function fakeBudget() {
  let now = 1_000_000;
  const budget = new SlidingWindowBudget(new MemoryGrantLog());
  const source: LeaseSource & { calls: number } = {
    calls: 0,
    async lease(priority, s, count, ttlMs) {
      source.calls++;
      return budget.lease(priority, s, now, count, ttlMs);
    },
  };
  return { source, budget, clock: () => now, advance: (ms: number) => (now += ms) };
}

beforeEach(resetLeases);

describe("budget leases kept in the isolate", () => {
  it("never lets calls exceed the limit in any 5-minute window, whatever the mix and pace", async () => {
    const { source, clock, advance } = fakeBudget();
    const spent: Array<{ at: number; priority: Priority }> = [];
    const priorities: Priority[] = ["user", "poll", "cleanup", "user", "poll"];
    // Bursts of concurrent callers at uneven intervals over 20 minutes.
    for (let round = 0; round < 400; round++) {
      await Promise.all(
        Array.from({ length: 1 + (round % 7) }, async (_, i) => {
          const priority = priorities[(round + i) % priorities.length]!;
          if ((await acquireLeased(source, priority, settings, clock)).granted) spent.push({ at: clock(), priority });
        }),
      );
      advance(round % 5 === 0 ? 7_000 : 300);
    }
    for (const { at } of spent) {
      expect(spent.filter((s) => s.at >= at && s.at < at + WINDOW_MS).length).toBeLessThanOrEqual(settings.limit);
      expect(spent.filter((s) => s.priority === "poll" && s.at >= at && s.at < at + WINDOW_MS).length).toBeLessThanOrEqual(20);
    }
    expect(spent.length).toBeGreaterThan(80);
    // And it saves round trips: fewer lease calls than slots spent.
    expect(source.calls).toBeLessThan(spent.length);
  });

  it("leases in batches that grow with demand, up to MAX_BATCH, and never spends a slot after its lease expired", async () => {
    const { source, budget, clock, advance } = fakeBudget();
    for (let i = 0; i < 40; i++) await acquireLeased(source, "user", { limit: 1_000, pollShare: 0.5 }, clock);
    // 1 + 2 + 4 + 8 + 8 + 8 + 8 + 8 = 47 ≥ 40: eight round trips for 40 calls.
    expect(source.calls).toBe(8);
    const before = source.calls;
    advance(LEASE_TTL_MS);
    expect((await acquireLeased(source, "user", { limit: 1_000, pollShare: 0.5 }, clock)).granted).toBe(true);
    expect(source.calls).toBe(before + 1);
    // Every leased slot counts as used in the window from the moment it was leased.
    expect(budget.lease("user", { limit: 1_000, pollShare: 0.5 }, clock(), 1_000, 0)).toMatchObject({ count: 1_000 - 47 - MAX_BATCH });
  });

  it("a 429 stops this isolate at once: pooled slots are dropped and no lease is asked for until it has passed", async () => {
    const { source, clock, advance } = fakeBudget();
    for (let i = 0; i < 4; i++) await acquireLeased(source, "user", settings, clock);
    const calls = source.calls;
    blockLeases(clock() + 3_000);
    const refused = await acquireLeased(source, "user", settings, clock);
    expect(refused).toEqual({ granted: false, retryAfterMs: 3_000 });
    expect(source.calls).toBe(calls);
    advance(3_000);
    expect((await acquireLeased(source, "user", settings, clock)).granted).toBe(true);
  });

  it("a lease that arrives after a 429 was seen is not used", async () => {
    const { budget, clock } = fakeBudget();
    const source: LeaseSource = {
      async lease(priority, s, count, ttlMs) {
        blockLeases(clock() + 5_000); // another object saw a 429 while this lease was in flight
        return budget.lease(priority, s, clock(), count, ttlMs);
      },
    };
    expect(await acquireLeased(source, "user", settings, clock)).toEqual({ granted: false, retryAfterMs: 5_000 });
  });
});
