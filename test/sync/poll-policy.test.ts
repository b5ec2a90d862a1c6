import { describe, expect, it } from "vitest";
import {
  errorBackoffMs,
  inputPollDelay,
  inputPollInterval,
  inputRetryDelay,
  isStale,
  outputsCheckAfterConnectDelay,
  outputsPollDelay,
  outputsPollInterval,
  phaseOf,
  staleAt,
  type PollSituation,
} from "../../src/sync/poll-policy";

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

  it("live: 75 s without webhooks; waiting for a reconnect with sockets open: 30 s; none when nobody is watching", () => {
    expect(inputPollInterval(base)).toBe(75_000);
    expect(inputPollInterval({ ...base, hasClients: false })).toBe(75_000);
    expect(inputPollInterval({ ...base, ingestConnected: false })).toBe(30_000);
    expect(inputPollDelay({ ...base, hasClients: false, ingestConnected: false })).toBeNull();
    expect(outputsPollDelay({ ...base, hasClients: false, ingestConnected: false })).toBeNull();
    expect(outputsPollDelay({ ...base, hasOutputs: false })).toBeNull();
  });

  it("only confirms now and then once webhooks arrive", () => {
    const trusted = { ...base, webhooksConfigured: true, webhooksSeen: true };
    expect(inputPollInterval(trusted)).toBe(15 * 60_000);
    expect(inputPollInterval({ ...trusted, ingestConnected: false })).toBe(5 * 60_000);
  });

  it("lists outputs every 30 minutes, and once 10 s after ingest connects", () => {
    expect(outputsPollInterval(base)).toBe(30 * 60_000);
    // OUTPUTS_POLL_SECONDS sets it outright (tests and operators with outside changes to catch).
    expect(outputsPollInterval({ ...base, outputsPollMs: 5_000 })).toBe(5_000);
    expect(outputsPollInterval({ ...base, outputsPollMs: 5_000, hasOutputs: false })).toBeNull();
    expect(outputsCheckAfterConnectDelay(base)).toBe(10_000);
    expect(outputsCheckAfterConnectDelay({ ...base, hasOutputs: false })).toBeNull();
  });

  it("meets the per-live-stream-hour targets at steady state: ≤ 10 with webhooks, ≤ 60 without", () => {
    const perHour = (s: PollSituation) => 3_600_000 / inputPollInterval(s)! + 3_600_000 / outputsPollInterval(s)!;
    expect(perHour(base)).toBeLessThanOrEqual(60);
    // 1,000 live streams at ≤ 50 % of the token's 1,200 per 5 minutes: ≤ 7.2 each per hour.
    expect(perHour({ ...base, webhooksConfigured: true, webhooksSeen: true })).toBeLessThanOrEqual(7.2);
  });

  it("slow reads fall on the stream's slot: at most one interval apart, stable under re-planning, spread across streams", () => {
    const trusted = { ...base, webhooksConfigured: true, webhooksSeen: true, phase: 0.5 };
    const interval = 15 * 60_000;
    const first = trusted.now + inputPollDelay(trusted)!;
    expect(first - trusted.now).toBeGreaterThan(0);
    expect(first - trusted.now).toBeLessThanOrEqual(interval);
    // Re-planned a little later (a viewer joined): the same moment, never earlier.
    expect(trusted.now + 60_000 + inputPollDelay({ ...trusted, now: trusted.now + 60_000 })!).toBe(first);
    // The read at the slot plans the next one a whole interval later.
    expect(inputPollDelay({ ...trusted, now: first })).toBe(interval);
    expect(outputsPollDelay({ ...trusted, now: first })).toBeLessThanOrEqual(30 * 60_000);
    // Fast polls are not slotted.
    expect(inputPollDelay({ ...trusted, now: 1_000, everConnected: false, ingestConnected: false })).toBe(10_000);
    // 1,000 stream ids spread over the interval: no fifteenth of it holds more than twice its share.
    const buckets = new Array(15).fill(0);
    for (let i = 0; i < 1_000; i++) buckets[Math.floor(phaseOf(`stream-${i}`) * 15)]++;
    expect(Math.max(...buckets)).toBeLessThan(2 * (1_000 / 15));
  });

  it("is stale after three intervals without a successful read", () => {
    expect(isStale(base, base.now - 3 * 75_000)).toBe(false);
    expect(isStale(base, base.now - 3 * 75_000 - 1_001)).toBe(true);
    const trusted = { ...base, webhooksConfigured: true, webhooksSeen: true };
    expect(isStale(trusted, base.now - 40 * 60_000)).toBe(false);
    expect(isStale(trusted, base.now - 46 * 60_000)).toBe(true);
  });

  it("while reads fail, webhooks do not vouch: stale at the no-webhook cadence", () => {
    const failing = { ...base, webhooksConfigured: true, webhooksSeen: true, readsFailing: true };
    expect(staleAt(failing, 0)).toBe(3 * 75_000 + 1_000);
    expect(isStale(failing, base.now - 15 * 60_000)).toBe(true);
  });

  it("retries a failed read no later than the moment knowledge goes stale; retry-after still wins", () => {
    expect(inputRetryDelay(64_000, undefined, 100_000 + 20_000, 100_000)).toBe(20_001);
    expect(inputRetryDelay(4_000, undefined, 100_000 + 20_000, 100_000)).toBe(4_000);
    expect(inputRetryDelay(64_000, undefined, 90_000, 100_000)).toBe(64_000);
    expect(inputRetryDelay(300_000, 300, 120_000, 100_000)).toBe(300_000);
  });

  it("backs off exponentially with jitter, honouring retry-after", () => {
    expect(errorBackoffMs(1, undefined, 0.5)).toBe(2_000);
    expect(errorBackoffMs(3, undefined, 0.5)).toBe(8_000);
    expect(errorBackoffMs(20, undefined, 0.5)).toBe(300_000);
    expect(errorBackoffMs(1, 60, 0.5)).toBe(60_000);
    expect(errorBackoffMs(2, undefined, 0)).toBe(3_000);
  });

  it("the fast-poll window is exactly 2 minutes from creation: fast 1 ms before its end, slow from its end", () => {
    const fresh = { ...base, createdAt: 50_000, everConnected: false, ingestConnected: false };
    expect(inputPollInterval({ ...fresh, now: 50_000 + 2 * 60_000 - 1 })).toBe(2_000);
    expect(inputPollInterval({ ...fresh, now: 50_000 + 2 * 60_000 })).toBe(30_000);
    // Once connected, never fast again.
    expect(inputPollInterval({ ...fresh, now: 50_001, everConnected: true })).toBe(30_000);
  });

  it("a stream's phase is stable across releases (slots do not move on a deploy) and lies in [0, 1)", () => {
    expect(phaseOf("stream-1")).toBe(phaseOf("stream-1"));
    expect(phaseOf("abc")).toBe(0.1124456962570548);
    expect(phaseOf("abd")).not.toBe(phaseOf("abc"));
    for (let i = 0; i < 200; i++) {
      const p = phaseOf(`s-${i}`);
      expect(p).toBeGreaterThanOrEqual(0);
      expect(p).toBeLessThan(1);
    }
  });

  it("a slow read falls at the stream's phase within its interval; fast reads ignore the phase", () => {
    // Live without webhooks (75 s): phase 0.5 puts the read at 37.5 s into each interval.
    expect(inputPollDelay({ ...base, phase: 0.5 })).toBe(37_500);
    // Waiting for a reconnect at exactly the slow interval (30 s): still on the slot.
    expect(inputPollDelay({ ...base, ingestConnected: false, phase: 0.5 })).toBe(15_000);
    expect(inputPollDelay({ ...base, now: 1_000, everConnected: false, ingestConnected: false, phase: 0.5 })).toBe(2_000);
  });

  it("nothing goes stale while no read is planned or none ever succeeded; stale only strictly after the bound", () => {
    const unwatched = { ...base, hasClients: false, ingestConnected: false };
    expect(staleAt(unwatched, 0)).toBeNull();
    expect(isStale(unwatched, 0)).toBe(false);
    expect(staleAt(base, null)).toBeNull();
    expect(isStale(base, null)).toBe(false);
    const bound = 3 * 75_000 + 1_000;
    expect(isStale(base, base.now - bound)).toBe(false);
    expect(isStale(base, base.now - bound - 1)).toBe(true);
  });

  it("a retry due when knowledge has just gone stale waits the whole backoff", () => {
    expect(inputRetryDelay(10_000, undefined, 100_000, 100_000)).toBe(10_000);
    expect(inputRetryDelay(10_000, undefined, null, 100_000)).toBe(10_000);
    expect(inputRetryDelay(10_000, undefined, 100_001, 100_000)).toBe(2);
  });
});
