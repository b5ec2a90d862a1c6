import { env, listDurableObjectIds } from "cloudflare:test";
import { beforeEach, describe, expect, it } from "vitest";
import { ADMIN, LIVE_INPUTS_PATH, call, emulator, emulatorInputs, injectFault, newUserId, postStream, registerApp, resetEmulator, startStream, waitFor } from "../helpers";

beforeEach(resetEmulator);

const CREATE = { method: "POST", path: LIVE_INPUTS_PATH };

describe("Cloudflare faults while creating a stream", () => {
  const faults: Array<[string, Parameters<typeof injectFault>[0]]> = [
    ["a 500", { ...CREATE, status: 500 }],
    ["a 503 after Cloudflare did create it", { ...CREATE, status: 503, afterEffect: true }],
    ["a 429 with retry-after", { ...CREATE, status: 429, retryAfter: 1 }],
    ["a timeout", { ...CREATE, delayMs: 3_000 }],
    ["a dropped connection", { ...CREATE, drop: true }],
    ["a dropped connection after Cloudflare did create it", { ...CREATE, drop: true, afterEffect: true }],
  ];
  for (const [name, fault] of faults) {
    it(`${name}: 502 CLOUDFLARE_ERROR and nothing left behind`, async () => {
      const app = await registerApp();
      const userId = newUserId();
      await injectFault(fault);
      const res = await postStream(app, { userId });
      expect(res.status).toBe(502);
      expect(res.body).toEqual({ error: "CLOUDFLARE_ERROR", message: expect.stringContaining("Cloudflare") });
      // Nothing at Cloudflare (a delayed create may land after we gave up: wait for the cleanup)...
      await waitFor(async () => (await emulatorInputs()).length === 0, 6_000, "no live inputs");
      // ...and the user can start again: nothing half-written in our state. (After a 429 the whole
      // API budget waits out Cloudflare's retry-after first, as Cloudflare itself would insist.)
      if (fault.status === 429) await new Promise((r) => setTimeout(r, 1_100));
      const retry = await postStream(app, { userId });
      expect(retry.status).toBe(201);
      expect(await emulatorInputs()).toHaveLength(1);
    });
  }
});

describe("Cloudflare faults while stopping a stream", () => {
  it("keeps `stopping` and retries from the alarm until the input is deleted", async () => {
    const app = await registerApp();
    const s = await startStream(app, newUserId());
    await injectFault({ method: "DELETE", path: `${LIVE_INPUTS_PATH}/*`, status: 500, count: 1 });
    const res = await call("POST", `/api/admin/streams/${s.streamId}/stop`, undefined, ADMIN);
    expect(res.status).toBe(200);
    expect(res.body.status).toBe("stopping");
    expect(await emulatorInputs()).toHaveLength(1);

    const { runDurableObjectAlarm } = await import("cloudflare:test");
    const stub = env.STREAMS.getByName(s.streamId);
    await waitFor(async () => {
      await runDurableObjectAlarm(stub);
      return (await call("GET", `/api/streams/${s.streamId}`, undefined, app.headers)).body.status === "stopped";
    }, 10_000, "stopped");
    expect(await emulatorInputs()).toHaveLength(0);
  });
});

describe("the SDK is used with retries off", () => {
  it("one create call per stream start", async () => {
    await emulator("DELETE", "calls");
    const app = await registerApp();
    await startStream(app, newUserId());
    const calls = (await emulator("GET", "calls")).calls.filter((c: { method: string }) => c.method === "POST");
    expect(calls).toHaveLength(1);
    expect(await listDurableObjectIds(env.STREAMS)).not.toHaveLength(0);
  });
});
