// streamApiFor (src/budget/budgeted-api.ts): the StreamApi every object and the Worker use, paid from the
// shared budget through this isolate's lease pool, with its counts buffered here or written at once.
import { env } from "cloudflare:test";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { streamApiFor } from "../../src/budget/budgeted-api";
import { acquireLeased, blockLeases, type LeaseSource } from "../../src/budget/lease-pool";
import { clock, freezeClock, resetClock } from "../../src/clock";
import { loadConfig } from "../../src/config";
import { clearPendingStats, takePending } from "../../src/ops/stats-buffer";
import { LIVE_INPUTS_PATH, injectFault, resetEmulator, waitFor } from "../helpers";

const UNKNOWN_INPUT = "0123456789abcdef0123456789abcdef";
const budget = () => env.BUDGET.getByName("global");
const counter = async (name: string) => (await budget().stats()).counters[name]?.value ?? 0;

/** A lease source standing in for the budget object, counting what it is asked. */
function countingSource(): LeaseSource & { calls: number } {
  const source = {
    calls: 0,
    async lease(_p: unknown, _s: unknown, count: number, ttlMs: number) {
      source.calls++;
      return { granted: true as const, count, expiresAt: clock.now() + ttlMs };
    },
  };
  return source;
}

beforeEach(async () => {
  await resetEmulator();
  clearPendingStats();
});
afterEach(async () => {
  resetClock();
  clearPendingStats();
  await budget().clear();
});

describe("the budgeted Stream API", () => {
  it("a Cloudflare 429 stops this isolate at once for its retry-after, without asking the budget object", async () => {
    const now = freezeClock();
    await injectFault({ method: "GET", path: `${LIVE_INPUTS_PATH}/*`, status: 429, retryAfter: 2 });
    await expect(streamApiFor(env, loadConfig(env)).getIngestState(UNKNOWN_INPUT)).rejects.toMatchObject({ upstreamStatus: 429 });
    const source = countingSource();
    const settings = { limit: 100, pollShare: 0.8 };
    expect(await acquireLeased(source, "user", settings, () => now)).toEqual({ granted: false, retryAfterMs: 2_000 });
    expect(await acquireLeased(source, "user", settings, () => now + 1_999)).toEqual({ granted: false, retryAfterMs: 1 });
    expect(source.calls).toBe(0);
    expect(await acquireLeased(source, "user", settings, () => now + 2_000)).toEqual({ granted: true });
    // The budget object was told too (the rest of the deployment stops within a lease lifetime).
    expect((await budget().usage()).blockedUntil).toBe(new Date(now + 2_000).toISOString());
  });

  it("a refusal by the budget is counted in this isolate and rides along with a later lease, not written on its own", async () => {
    const api = streamApiFor(env, loadConfig(env));
    const before = await counter("budget.refused.poll");
    blockLeases(clock.now() + 60_000);
    await expect(api.getIngestState(UNKNOWN_INPUT, "poll")).rejects.toThrow(/budget/);
    expect(await counter("budget.refused.poll")).toBe(before);
    expect(takePending()).toEqual({ add: { "budget.refused.poll": 1 } });
  });

  it("a failed Cloudflare call is written to the counters at once, through the Worker's waitUntil", async () => {
    const writes: Promise<unknown>[] = [];
    const api = streamApiFor(env, loadConfig(env), (p) => writes.push(p));
    const before = await counter("cloudflare.failed.server");
    await injectFault({ method: "GET", path: `${LIVE_INPUTS_PATH}/*`, status: 503, count: 1 });
    await expect(api.getIngestState(UNKNOWN_INPUT)).rejects.toMatchObject({ upstreamStatus: 503 });
    expect(writes).toHaveLength(1);
    await Promise.all(writes);
    expect(await counter("cloudflare.failed.server")).toBe(before + 1);
    expect(takePending()).toBeUndefined();
  });

  it("inside an object (no waitUntil) a failed call's count is written all the same, and the call fails as Cloudflare answered", async () => {
    const api = streamApiFor(env, loadConfig(env));
    const before = await counter("cloudflare.failed.server");
    await injectFault({ method: "GET", path: `${LIVE_INPUTS_PATH}/*`, status: 503, count: 1 });
    await expect(api.getIngestState(UNKNOWN_INPUT)).rejects.toMatchObject({ upstreamStatus: 503 });
    await waitFor(async () => (await counter("cloudflare.failed.server")) === before + 1, 3_000, "the failure to be counted");
  });
});
