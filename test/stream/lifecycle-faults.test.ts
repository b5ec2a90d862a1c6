import { env, listDurableObjectIds } from "cloudflare:test";
import { beforeEach, describe, expect, it } from "vitest";
import { ADMIN, LIVE_INPUTS_PATH, call, emulator, emulatorInputs, injectFault, newUserId, registerApp, resetEmulator, startStream, waitFor } from "../helpers";

beforeEach(resetEmulator);

// Faults while creating a stream (every fault kind, settled and checked one for one) are in fault-matrix.test.ts.

describe("Cloudflare faults while stopping a stream", () => {
  it("keeps `stopping` and retries from the alarm until the input is deleted", async () => {
    const app = await registerApp();
    const s = await startStream(app, newUserId());
    // Two 500s: the delete and its retry after reading the input back both fail.
    await injectFault({ method: "DELETE", path: `${LIVE_INPUTS_PATH}/*`, status: 500, count: 2 });
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
