import { env, runInDurableObject } from "cloudflare:test";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ApiBudget } from "../../src/budget/api-budget";
import { acquireLeased, blockLeases, type LeaseSource } from "../../src/budget/lease-pool";
import { WINDOW_MS } from "../../src/budget/sliding-window";
import { clock, freezeClock, resetClock, shiftClock } from "../../src/clock";
import { LIVE_INPUTS_PATH, emulator, injectFault, newUserId, postStream, registerApp, resetEmulator } from "../helpers";

beforeEach(resetEmulator);
afterEach(async () => {
  resetClock();
  await env.BUDGET.getByName("global").clear();
});

describe("the shared API budget", () => {
  it("a Cloudflare 429 blocks every later call for its retry-after, without calling Cloudflare", async () => {
    const app = await registerApp();
    freezeClock();
    await injectFault({ method: "POST", path: LIVE_INPUTS_PATH, status: 429, retryAfter: 2 });
    expect((await postStream(app, { userId: newUserId() })).status).toBe(502);
    const { calls: before } = await emulator("GET", "calls");
    const held = await postStream(app, { userId: newUserId() });
    expect(held).toMatchObject({ status: 502, body: { error: "CLOUDFLARE_ERROR", message: expect.stringContaining("budget") } });
    expect(held.headers.get("retry-after")).toBe("2");
    shiftClock(1_999);
    expect((await postStream(app, { userId: newUserId() })).status).toBe(502);
    expect((await emulator("GET", "calls")).calls.length).toBe(before.length);
    shiftClock(1);
    expect((await postStream(app, { userId: newUserId() })).status).toBe(201);
  });

  it("counts every Cloudflare call", async () => {
    const app = await registerApp();
    await postStream(app, { userId: newUserId() });
    expect((await env.BUDGET.getByName("global").usage()).usedLast5Min).toBe(1);
  });

  it("a 429 block is restored when the budget object restarts, to the millisecond", async () => {
    const stub = env.BUDGET.getByName("global");
    await stub.reportRateLimited(60);
    const until = Date.parse((await stub.usage()).blockedUntil!);
    await runInDurableObject(stub, async (_instance, state) => {
      // A new instance over the same storage: what a restart after an eviction or a deploy is.
      const fresh = new ApiBudget(state, env);
      const settings = { limit: 100, pollShare: 0.8 };
      expect((await fresh.usage()).blockedUntil).toBe(new Date(until).toISOString());
      shiftClock(until - 1 - clock.now());
      expect(await fresh.acquire("user", settings)).toEqual({ granted: false, retryAfterMs: 1 });
      shiftClock(1);
      expect((await fresh.acquire("user", settings)).granted).toBe(true);
    });
  });

  it("a shorter 429 block never overwrites a longer one, in memory or in storage", async () => {
    const stub = env.BUDGET.getByName("global");
    await stub.reportRateLimited(120);
    const until = Date.parse((await stub.usage()).blockedUntil!);
    await stub.reportRateLimited(5);
    expect(Date.parse((await stub.usage()).blockedUntil!)).toBe(until);
    await runInDurableObject(stub, async (_instance, state) => {
      const fresh = new ApiBudget(state, env);
      expect((await fresh.usage()).blockedUntil).toBe(new Date(until).toISOString());
      shiftClock(60_000);
      expect((await fresh.acquire("user", { limit: 100, pollShare: 0.8 })).granted).toBe(false);
    });
  });

  it("the usage shows a 429 block until its last millisecond, and none from its end on", async () => {
    const stub = env.BUDGET.getByName("global");
    const now = freezeClock();
    await stub.reportRateLimited(60);
    const until = new Date(now + 60_000).toISOString();
    expect((await stub.usage()).blockedUntil).toBe(until);
    shiftClock(59_999);
    expect((await stub.usage()).blockedUntil).toBe(until);
    shiftClock(1);
    expect((await stub.usage()).blockedUntil).toBeNull();
  });

  it("a lease is at most 64 slots and lives at most 10 s; below those, what was asked", async () => {
    const stub = env.BUDGET.getByName("global");
    const now = freezeClock();
    const settings = { limit: 1_000, pollShare: 0.8 };
    expect(await stub.lease("user", settings, 100, 60_000)).toEqual({ granted: true, count: 64, expiresAt: now + 10_000 });
    expect(await stub.lease("user", settings, 3, 5_000)).toEqual({ granted: true, count: 3, expiresAt: now + 5_000 });
  });

  it("a 429 without retry-after still blocks for at least a second", async () => {
    const stub = env.BUDGET.getByName("global");
    const before = clock.now();
    await stub.reportRateLimited(0);
    const until = Date.parse((await stub.usage()).blockedUntil!);
    expect(until - before).toBeGreaterThanOrEqual(1_000);
    expect(until - before).toBeLessThan(1_500);
  });

  it("a refused call is told when its slot is back, and is served then, not before", async () => {
    const stub = env.BUDGET.getByName("global");
    const two = { limit: 2, pollShare: 0.5 };
    const first = freezeClock();
    expect((await stub.acquire("user", two)).granted).toBe(true);
    shiftClock(1_000);
    expect((await stub.acquire("user", two)).granted).toBe(true);
    shiftClock(1_000);
    // The oldest grant counts through first + WINDOW_MS, its last millisecond included.
    expect(await stub.acquire("user", two)).toEqual({ granted: false, retryAfterMs: first + WINDOW_MS + 1 - clock.now() });
    shiftClock(first + WINDOW_MS - clock.now());
    expect(await stub.acquire("user", two)).toEqual({ granted: false, retryAfterMs: 1 });
    shiftClock(1);
    expect((await stub.acquire("user", two)).granted).toBe(true);
    // Full again: the next slot is back when the second grant leaves.
    expect(await stub.acquire("user", two)).toEqual({ granted: false, retryAfterMs: first + 1_000 + WINDOW_MS + 1 - clock.now() });
  });

  it("polls with no share of the budget are refused for a whole window", async () => {
    const stub = env.BUDGET.getByName("global");
    freezeClock();
    expect(await stub.acquire("poll", { limit: 10, pollShare: 0 })).toEqual({ granted: false, retryAfterMs: WINDOW_MS + 1 });
  });

  it("grants that have left the window are dropped from storage (the log does not grow without bound)", async () => {
    const stub = env.BUDGET.getByName("global");
    const settings = { limit: 100, pollShare: 0.8 };
    freezeClock();
    for (let i = 0; i < 3; i++) await stub.acquire("user", settings);
    shiftClock(WINDOW_MS);
    await stub.acquire("user", settings);
    const stored = () => runInDurableObject(stub, (_instance, state) => state.storage.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM grants").one().n);
    // At the window's last millisecond the three still count (and are kept).
    expect(await stored()).toBe(4);
    shiftClock(1);
    await stub.acquire("user", settings);
    expect(await stored()).toBe(2);
    expect((await stub.usage()).usedLast5Min).toBe(2);
  });

  it("the counts a lease carries are added to the deployment's counters", async () => {
    const stub = env.BUDGET.getByName("global");
    const value = async (name: string) => (await stub.stats()).counters[name]?.value ?? 0;
    const before = await value("budget.refused.poll");
    const now = freezeClock();
    expect(await stub.lease("user", { limit: 100, pollShare: 0.8 }, 1, 1_000, { add: { "budget.refused.poll": 3 } })).toMatchObject({ granted: true });
    expect(await value("budget.refused.poll")).toBe(before + 3);
    expect((await stub.stats()).counters["budget.refused.poll"]!.updatedAt).toBe(now);
  });

  it("each 429 reported counts once as rate-limited", async () => {
    const stub = env.BUDGET.getByName("global");
    const value = async () => (await stub.stats()).counters["cloudflare.rate_limited"]?.value ?? 0;
    const before = await value();
    await stub.reportRateLimited(5);
    await stub.reportRateLimited(5);
    expect(await value()).toBe(before + 2);
  });

  it("the stats read gives the recorded counts, when counting began, the window's usage and the block", async () => {
    const stub = env.BUDGET.getByName("global");
    const now = freezeClock();
    const before = (await stub.stats()).counters["sweep.runs"]?.value ?? 0;
    await stub.recordStats({ add: { "sweep.runs": 1 }, set: { "sweep.last.checked": 7 } });
    await stub.acquire("user", { limit: 100, pollShare: 0.8 });
    await stub.reportRateLimited(30);
    const stats = await stub.stats();
    expect(stats.counters["sweep.runs"]).toEqual({ value: before + 1, updatedAt: now });
    expect(stats.counters["sweep.last.checked"]).toEqual({ value: 7, updatedAt: now });
    expect(stats.countingSince).toBeLessThanOrEqual(now);
    expect(stats.usedLast5Min).toBe((await stub.usage()).usedLast5Min);
    expect(stats.usedLast5Min).toBeGreaterThanOrEqual(1);
    expect(stats.blockedUntil).toBe(new Date(now + 30_000).toISOString());
  });

  it("clearing lifts a 429 block for good (a restart does not bring it back), forgets the window, and frees this isolate's pool", async () => {
    const stub = env.BUDGET.getByName("global");
    const settings = { limit: 100, pollShare: 0.8 };
    freezeClock();
    await stub.acquire("user", settings);
    await stub.reportRateLimited(60);
    blockLeases(clock.now() + 60_000);
    await stub.clear();
    expect(await stub.usage()).toEqual({ usedLast5Min: 0, blockedUntil: null });
    expect((await stub.acquire("user", settings)).granted).toBe(true);
    await runInDurableObject(stub, async (_instance, state) => {
      const fresh = new ApiBudget(state, env);
      expect((await fresh.usage()).blockedUntil).toBeNull();
      expect((await fresh.acquire("user", settings)).granted).toBe(true);
    });
    let asked = 0;
    const source: LeaseSource = {
      async lease(_p, _s, count, ttlMs) {
        asked++;
        return { granted: true, count, expiresAt: clock.now() + ttlMs };
      },
    };
    expect(await acquireLeased(source, "user", settings, () => clock.now())).toEqual({ granted: true });
    expect(asked).toBe(1);
  });
});
