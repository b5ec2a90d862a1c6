import { describe, expect, it } from "vitest";
import { errorBackoffMs, inputPollDelay, isStale, outputsPollDelay, type PollSituation } from "../../src/sync/poll-policy";

const base: PollSituation = {
  now: 10 * 60_000,
  createdAt: 0,
  everConnected: true,
  ingestConnected: true,
  hasClients: true,
  hasOutputs: true,
  webhooksConfigured: false,
  webhooksSeen: false,
  slowPollMs: 30_000,
};

describe("poll policy", () => {
  it("polls fast until first connected, for at most 2 minutes", () => {
    const fresh = { ...base, now: 1_000, everConnected: false, ingestConnected: false };
    expect(inputPollDelay(fresh)).toBe(2_000);
    expect(inputPollDelay({ ...fresh, webhooksConfigured: true })).toBe(10_000);
    expect(inputPollDelay({ ...fresh, now: 3 * 60_000 })).toBe(30_000);
  });

  it("slow while clients are connected, none when nobody is and the input is not live", () => {
    expect(inputPollDelay(base)).toBe(30_000);
    expect(inputPollDelay({ ...base, hasClients: false })).toBe(30_000);
    expect(inputPollDelay({ ...base, hasClients: false, ingestConnected: false })).toBeNull();
    expect(outputsPollDelay({ ...base, hasClients: false, ingestConnected: false })).toBeNull();
    expect(outputsPollDelay({ ...base, hasOutputs: false })).toBeNull();
  });

  it("only confirms now and then once webhooks arrive", () => {
    expect(inputPollDelay({ ...base, webhooksConfigured: true, webhooksSeen: true })).toBe(300_000);
  });

  it("meets the per-stream-hour targets at steady state", () => {
    const perHour = (s: PollSituation) => 3_600_000 / inputPollDelay(s)! + 3_600_000 / outputsPollDelay(s)!;
    expect(perHour(base)).toBeLessThanOrEqual(150);
    expect(perHour({ ...base, webhooksConfigured: true, webhooksSeen: true })).toBeLessThanOrEqual(60);
  });

  it("is stale after three intervals without a successful read", () => {
    expect(isStale(base, base.now - 60_000)).toBe(false);
    expect(isStale(base, base.now - 92_000)).toBe(true);
  });

  it("backs off exponentially with jitter, honouring retry-after", () => {
    expect(errorBackoffMs(1, undefined, 0.5)).toBe(2_000);
    expect(errorBackoffMs(3, undefined, 0.5)).toBe(8_000);
    expect(errorBackoffMs(20, undefined, 0.5)).toBe(300_000);
    expect(errorBackoffMs(1, 60, 0.5)).toBe(60_000);
    expect(errorBackoffMs(2, undefined, 0)).toBe(3_000);
  });
});
