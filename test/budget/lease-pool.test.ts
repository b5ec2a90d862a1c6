import { beforeEach, describe, expect, it } from "vitest";
import { acquireLeased, blockLeases, LEASE_TTL_MS, MAX_BATCH, resetLeases, type LeaseSource } from "../../src/budget/lease-pool";
import { MemoryGrantLog, SlidingWindowBudget, WINDOW_MS, type BudgetSettings, type Lease, type Priority } from "../../src/budget/sliding-window";
import type { StatsDelta } from "../../src/ops/counters";
import { clearPendingStats, countLocally, takePending } from "../../src/ops/stats-buffer";

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

/**
 * A budget object whose answers the test gives by hand, one per request, in any order: what leases in
 * flight together look like. `asked` records the batch size of each request.
 */
function handBudget() {
  let now = 1_000_000;
  const pending: Array<(lease: Lease) => void> = [];
  const asked: number[] = [];
  const source: LeaseSource & { calls: number } = {
    calls: 0,
    lease(_priority, _s, count) {
      source.calls++;
      asked.push(count);
      return new Promise((resolve) => pending.push(resolve));
    },
  };
  /** Answers the i-th request (0-based, in the order asked). */
  const answer = async (i: number, lease: Lease) => {
    pending[i]!(lease);
    await new Promise((r) => setTimeout(r, 0));
  };
  return { source, asked, answer, clock: () => now, advance: (ms: number) => (now += ms), start: now };
}

/**
 * A call that must be answered in this isolate (a pooled slot or a remembered refusal): fails at once if it
 * asks the budget object instead (with `handBudget`, such a request would wait for an answer forever).
 */
function answeredHere(source: LeaseSource & { calls: number }, clock: () => number, priority: Priority = "user") {
  const calls = source.calls;
  const grant = acquireLeased(source, priority, settings, clock);
  expect(source.calls, "answered without a round trip").toBe(calls);
  return grant;
}

/** A lease source that counts its round trips and grants what `answer` says. */
function grantingSource(answer: (count: number) => Lease) {
  const source: LeaseSource & { calls: number; asked: number[] } = {
    calls: 0,
    asked: [],
    async lease(_p, _s, count) {
      source.calls++;
      source.asked.push(count);
      return answer(count);
    },
  };
  return source;
}

beforeEach(() => {
  resetLeases();
  clearPendingStats();
});

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

  it("a refusal is remembered until its retry-after: a full budget costs no round trip until then", async () => {
    const { source, clock, advance } = fakeBudget();
    const two = { limit: 2, pollShare: 0.5 };
    expect((await acquireLeased(source, "user", two, clock)).granted).toBe(true);
    expect((await acquireLeased(source, "user", two, clock)).granted).toBe(true);
    const refused = await acquireLeased(source, "user", two, clock);
    // Both slots were logged at their lease's expiry; the older frees one window and 1 ms after it.
    expect(refused).toEqual({ granted: false, retryAfterMs: LEASE_TTL_MS + WINDOW_MS + 1 });
    const calls = source.calls;
    advance(LEASE_TTL_MS + WINDOW_MS);
    expect(await acquireLeased(source, "user", two, clock)).toEqual({ granted: false, retryAfterMs: 1 });
    expect(source.calls).toBe(calls);
    advance(1);
    expect((await acquireLeased(source, "user", two, clock)).granted).toBe(true);
    expect(source.calls).toBe(calls + 1);
  });

  it("a refusal holds back only its own priority", async () => {
    const { source, clock } = fakeBudget();
    const small = { limit: 4, pollShare: 0.25 };
    expect((await acquireLeased(source, "poll", small, clock)).granted).toBe(true);
    expect((await acquireLeased(source, "poll", small, clock)).granted).toBe(false);
    expect((await acquireLeased(source, "user", small, clock)).granted).toBe(true);
    // And a priority spends only its own pooled slots: the user's lease left none for polls.
    expect((await acquireLeased(source, "poll", small, clock)).granted).toBe(false);
  });

  it("of two refusals in flight together, the later retry-after is remembered", async () => {
    const { source, answer, clock, advance } = handBudget();
    const first = acquireLeased(source, "user", settings, clock);
    const second = acquireLeased(source, "user", settings, clock);
    await answer(1, { granted: false, retryAfterMs: 9_000 });
    await answer(0, { granted: false, retryAfterMs: 3_000 });
    expect(await first).toEqual({ granted: false, retryAfterMs: 3_000 });
    expect(await second).toEqual({ granted: false, retryAfterMs: 9_000 });
    advance(8_999);
    expect(await answeredHere(source, clock)).toEqual({ granted: false, retryAfterMs: 1 });
    expect(source.calls).toBe(2);
  });

  it("a refusal that arrives after the pool was dropped is still just a refusal", async () => {
    const { source, answer, clock } = handBudget();
    const inFlight = acquireLeased(source, "user", settings, clock);
    resetLeases();
    await answer(0, { granted: false, retryAfterMs: 4_000 });
    expect(await inFlight).toEqual({ granted: false, retryAfterMs: 4_000 });
  });

  it("the counts pending in this isolate ride along with the next lease, and are put back when it fails", async () => {
    let carried: StatsDelta | undefined;
    let fail = true;
    const source: LeaseSource = {
      async lease(_p, _s, count, ttlMs, stats) {
        carried = stats;
        if (fail) throw new Error("budget object unreachable");
        return { granted: true, count, expiresAt: 1_000_000 + ttlMs };
      },
    };
    countLocally("budget.refusals.user", 2);
    await expect(acquireLeased(source, "user", settings, () => 1_000_000)).rejects.toThrow("budget object unreachable");
    expect(carried).toEqual({ add: { "budget.refusals.user": 2 } });
    // Nothing was written: the counts wait for the next lease.
    fail = false;
    countLocally("budget.refusals.user");
    expect((await acquireLeased(source, "user", settings, () => 1_000_000)).granted).toBe(true);
    expect(carried).toEqual({ add: { "budget.refusals.user": 3 } });
    expect(takePending()).toBeUndefined();
  });

  it("an isolate busy right after its lease expired keeps its batch size; one idle for a lease lifetime is back to one slot", async () => {
    let now = 1_000_000;
    const clock = () => now;
    const source = grantingSource((count) => ({ granted: true, count, expiresAt: now + LEASE_TTL_MS }));
    // 1 + 2 + 4: seven calls at one instant, three round trips.
    for (let i = 0; i < 7; i++) await acquireLeased(source, "user", settings, clock);
    expect(source.asked).toEqual([1, 2, 4]);
    const expiry = 1_000_000 + LEASE_TTL_MS;
    // The batch was used up before its lease expired, but the next call comes only as it expires: not grown.
    now = expiry;
    await acquireLeased(source, "user", settings, clock);
    expect(source.asked).toEqual([1, 2, 4, 4]);
    // That lease (4 slots, one spent) expires unused; a call one lease lifetime after its expiry less 1 ms keeps 4…
    now = expiry + LEASE_TTL_MS + LEASE_TTL_MS - 1;
    await acquireLeased(source, "user", settings, clock);
    expect(source.asked).toEqual([1, 2, 4, 4, 4]);
    // …and one a full lease lifetime after it asks for one slot again.
    now += LEASE_TTL_MS + LEASE_TTL_MS;
    await acquireLeased(source, "user", settings, clock);
    expect(source.asked).toEqual([1, 2, 4, 4, 4, 1]);
  });

  it("a lease lasts at most LEASE_TTL_MS from when it was asked for, whatever expiry the budget object's clock gives it", async () => {
    let now = 1_000_000;
    const clock = () => now;
    const source = grantingSource((count) => ({ granted: true, count: Math.max(count, 8), expiresAt: now + 60_000 }));
    const asked = now;
    expect((await acquireLeased(source, "user", settings, clock)).granted).toBe(true);
    now = asked + LEASE_TTL_MS - 1;
    expect((await acquireLeased(source, "user", settings, clock)).granted).toBe(true);
    expect(source.calls).toBe(1);
    now = asked + LEASE_TTL_MS;
    expect((await acquireLeased(source, "user", settings, clock)).granted).toBe(true);
    expect(source.calls).toBe(2);
  });

  it("no pooled slot is spent after the expiry the budget object gave its lease, when that is sooner", async () => {
    let now = 1_000_000;
    const clock = () => now;
    const source = grantingSource(() => ({ granted: true, count: 8, expiresAt: now + 500 }));
    const asked = now;
    await acquireLeased(source, "user", settings, clock);
    now = asked + 499;
    await acquireLeased(source, "user", settings, clock);
    expect(source.calls).toBe(1);
    now = asked + 500;
    await acquireLeased(source, "user", settings, clock);
    expect(source.calls).toBe(2);
  });

  it("slots of two leases in flight together are pooled, and spent only until the sooner of their expiries", async () => {
    const { source, answer, clock, advance, start } = handBudget();
    const a = acquireLeased(source, "user", settings, clock);
    const b = acquireLeased(source, "user", settings, clock);
    await answer(0, { granted: true, count: 4, expiresAt: start + LEASE_TTL_MS });
    advance(1_000);
    await answer(1, { granted: true, count: 4, expiresAt: start + 1_500 });
    expect(await a).toEqual({ granted: true });
    expect(await b).toEqual({ granted: true });
    // 3 + 3 spare slots, spendable now (five of them spent here)…
    const calls = source.calls;
    for (let i = 0; i < 5; i++) expect((await answeredHere(source, clock)).granted).toBe(true);
    expect(source.calls).toBe(calls);
    // …but the sixth not from the second lease's expiry on, though the first lease's would still be valid.
    advance(500);
    void acquireLeased(source, "user", settings, clock);
    expect(source.calls).toBe(calls + 1);
  });

  it("slots of a lease pooled with an earlier one that expires sooner are spent only until that expiry", async () => {
    const { source, answer, clock, advance, start } = handBudget();
    const a = acquireLeased(source, "user", settings, clock);
    const b = acquireLeased(source, "user", settings, clock);
    await answer(0, { granted: true, count: 4, expiresAt: start + 1_500 });
    advance(1_000);
    await answer(1, { granted: true, count: 4, expiresAt: start + LEASE_TTL_MS });
    await a;
    await b;
    const calls = source.calls;
    for (let i = 0; i < 5; i++) expect((await answeredHere(source, clock)).granted).toBe(true);
    expect(source.calls).toBe(calls);
    // The pool cannot tell whose slot is whose: from the first lease's expiry on, none is spent.
    advance(500);
    void acquireLeased(source, "user", settings, clock);
    expect(source.calls).toBe(calls + 1);
  });

  it("a lease answered the moment the pooled one expires does not bring the expired slots back, nor expire with them", async () => {
    const { source, answer, clock, advance, start } = handBudget();
    const a = acquireLeased(source, "user", settings, clock);
    const b = acquireLeased(source, "user", settings, clock);
    await answer(0, { granted: true, count: 4, expiresAt: start + 500 });
    advance(500);
    await answer(1, { granted: true, count: 2, expiresAt: start + LEASE_TTL_MS });
    await a;
    await b;
    // Only the second lease's one spare slot is left (the first lease's three expired at +500), and it
    // lasts until the second lease's own expiry.
    const calls = source.calls;
    expect((await answeredHere(source, clock)).granted).toBe(true);
    expect(source.calls).toBe(calls);
    void acquireLeased(source, "user", settings, clock);
    expect(source.calls).toBe(calls + 1);
  });

  it("a lease's slots are not cut short by an earlier lease that has none left", async () => {
    const { source, answer, clock, advance, start } = handBudget();
    const a = acquireLeased(source, "user", settings, clock);
    const b = acquireLeased(source, "user", settings, clock);
    await answer(0, { granted: true, count: 1, expiresAt: start + 500 });
    advance(100);
    await answer(1, { granted: true, count: 4, expiresAt: start + LEASE_TTL_MS });
    await a;
    await b;
    // The second lease's three spare slots last until its own expiry, not the first one's.
    advance(1_000);
    const calls = source.calls;
    for (let i = 0; i < 3; i++) expect((await answeredHere(source, clock)).granted).toBe(true);
    expect(source.calls).toBe(calls);
  });

  it("a lease answered after the pool was reset fills a new pool", async () => {
    const { source, answer, clock } = handBudget();
    const inFlight = acquireLeased(source, "user", settings, clock);
    resetLeases();
    await answer(0, { granted: true, count: 4, expiresAt: clock() + LEASE_TTL_MS });
    expect(await inFlight).toEqual({ granted: true });
    for (let i = 0; i < 3; i++) expect((await answeredHere(source, clock)).granted).toBe(true);
    expect(source.calls).toBe(1);
    // A full pool of its own: a refusal then is remembered like any other.
    const refused = acquireLeased(source, "user", settings, clock);
    await answer(1, { granted: false, retryAfterMs: 4_000 });
    expect(await refused).toEqual({ granted: false, retryAfterMs: 4_000 });
    expect(await answeredHere(source, clock)).toEqual({ granted: false, retryAfterMs: 4_000 });
    expect(source.calls).toBe(2);
  });
});
