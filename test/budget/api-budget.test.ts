import { env, runInDurableObject } from "cloudflare:test";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ApiBudget } from "../../src/budget/api-budget";
import { clock, freezeClock, resetClock, shiftClock } from "../../src/clock";
import { LIVE_INPUTS_PATH, injectFault, newUserId, postStream, registerApp, resetEmulator } from "../helpers";

beforeEach(resetEmulator);
afterEach(async () => {
  resetClock();
  await env.BUDGET.getByName("global").clear();
});

describe("the shared API budget", () => {
  it("a Cloudflare 429 blocks every later call for its retry-after, without calling Cloudflare", async () => {
    const app = await registerApp();
    await injectFault({ method: "POST", path: LIVE_INPUTS_PATH, status: 429, retryAfter: 2 });
    expect((await postStream(app, { userId: newUserId() })).status).toBe(502);
    const held = await postStream(app, { userId: newUserId() });
    expect(held).toMatchObject({ status: 502, body: { error: "CLOUDFLARE_ERROR", message: expect.stringContaining("budget") } });
    expect(Number(held.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    const usage = await env.BUDGET.getByName("global").usage();
    expect(usage.blockedUntil).not.toBeNull();
    await new Promise((r) => setTimeout(r, 2_100));
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
});
