import { env, runInDurableObject } from "cloudflare:test";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { sweepLeakedInputs } from "../../src/sweep/leak-sweep";
import { ADMIN, LIVE_INPUTS_PATH, call, cloudflareDirect, emulator, emulatorInputs, injectFault, inputFor, newUserId, registerApp, resetEmulator, startStream } from "../helpers";

beforeEach(resetEmulator);
afterEach(() => vi.restoreAllMocks());

async function createRaw(meta: unknown): Promise<string> {
  return (await cloudflareDirect("POST", "", { meta })).uid;
}

describe("leak sweep", () => {
  it("deletes our inputs whose stream is stopped or unknown for over 10 minutes, and nothing else", async () => {
    const app = await registerApp();
    const running = await startStream(app, newUserId());
    const stopped = await startStream(app, newUserId());
    await call("POST", `/api/admin/streams/${stopped.streamId}/stop`, undefined, ADMIN);
    const leakedFromStopped = await createRaw({ managedBy: "stream-coordinator", streamId: stopped.streamId });
    const orphan = await createRaw({ managedBy: "stream-coordinator", streamId: "nonexistentstream0000" });
    const notOurs = await createRaw({ name: "someone else's" });
    const withOutputs = await createRaw({ managedBy: "stream-coordinator" });
    await cloudflareDirect("POST", `/${withOutputs}/outputs`, { url: "rtmp://example.com/live", streamKey: "k" });

    // Within 10 minutes nothing is touched.
    expect((await sweepLeakedInputs(env, Date.now() + 60_000)).deleted).toEqual([]);

    const report = await sweepLeakedInputs(env, Date.now() + 11 * 60_000);
    expect(report.deleted.sort()).toEqual([leakedFromStopped, orphan, withOutputs].sort());
    const left = (await emulatorInputs()).map((i: { uid: string }) => i.uid);
    expect(left).toContain(notOurs);
    expect(left).toHaveLength(2);
    expect((await emulatorInputs()).find((i: { meta: { streamId?: string } }) => i.meta.streamId === running.streamId)).toBeDefined();
  });

  it("runs from the cron trigger", async () => {
    const worker = (await import("../../src/index")).default;
    const waits: Promise<unknown>[] = [];
    worker.scheduled({} as ScheduledController, env, { waitUntil: (p: Promise<unknown>) => waits.push(p) } as unknown as ExecutionContext);
    await Promise.all(waits);
    expect(waits).toHaveLength(1);
  });

  it("nudges a stream stuck in stopping to finish its own cleanup, without deleting its input itself", async () => {
    const app = await registerApp();
    const s = await startStream(app, newUserId());
    const input = await inputFor(s.streamId);
    await injectFault({ method: "DELETE", path: `${LIVE_INPUTS_PATH}/*`, status: 500, count: 20 });
    await call("POST", `/api/admin/streams/${s.streamId}/stop`, undefined, ADMIN);
    const stub = env.STREAMS.getByName(s.streamId);
    expect((await stub.sweepInfo())?.phase).toBe("stopping");
    // Stuck: its own cleanup retry is far off (backed off), and Cloudflare answers again.
    await runInDurableObject(stub, async (_i, state) => {
      state.storage.sql.exec("UPDATE schedule SET due_at = ? WHERE name = 'cleanup'", Date.now() + 3_600_000);
      await state.storage.setAlarm(Date.now() + 3_600_000);
    });
    await emulator("DELETE", "faults");

    const report = await sweepLeakedInputs(env, Date.now() + 11 * 60_000);
    expect(report.deleted).toEqual([]);
    expect((await stub.sweepInfo())?.phase).toBe("stopped");
    expect((await emulatorInputs()).map((i: { uid: string }) => i.uid)).not.toContain(input.uid);
  });

  it("leaves a running stream's input alone however old it is", async () => {
    const app = await registerApp();
    const s = await startStream(app, newUserId());
    const input = await inputFor(s.streamId);
    const report = await sweepLeakedInputs(env, Date.now() + 24 * 60 * 60_000);
    expect(report).toMatchObject({ deleted: [], failed: [] });
    expect((await stub(s.streamId).sweepInfo())?.phase).toBe("running");
    expect((await emulatorInputs()).map((i: { uid: string }) => i.uid)).toContain(input.uid);
  });

  it("the safety age is LEAK_SWEEP_MINUTES (10): an unknown input is kept at exactly 10 minutes, deleted just after", async () => {
    const uid = await createRaw({ managedBy: "stream-coordinator", streamId: "nonexistentstream0000" });
    const created = Date.parse((await emulatorInputs()).find((i: { uid: string }) => i.uid === uid).created);
    expect((await sweepLeakedInputs(env, created + 10 * 60_000)).deleted).toEqual([]);
    expect((await sweepLeakedInputs(env, created + 10 * 60_000 + 1)).deleted).toEqual([uid]);
  });

  it("an input its stream still names after stopping is deleted LEAK_SWEEP_MINUTES after the stop, not after its creation", async () => {
    // The stream is recorded as stopped, 20 minutes after its input was made, yet the input is still at
    // Cloudflare (a stop whose cleanup was lost): the stop, not the input's age, starts the safety age.
    const app = await registerApp();
    const s = await startStream(app, newUserId());
    const input = await inputFor(s.streamId);
    const created = Date.parse(input.created);
    const stoppedAt = created + 20 * 60_000;
    await runInDurableObject(stub(s.streamId), (_i, state) => {
      state.storage.sql.exec("UPDATE stream SET phase = 'stopped', stopped_at = ? WHERE id = 1", stoppedAt);
    });
    expect(await stub(s.streamId).sweepInfo()).toMatchObject({ phase: "stopped", liveInputUid: input.uid, stoppedAt });

    expect((await sweepLeakedInputs(env, stoppedAt + 10 * 60_000)).deleted).toEqual([]);
    expect((await emulatorInputs()).map((i: { uid: string }) => i.uid)).toContain(input.uid);
    expect((await sweepLeakedInputs(env, stoppedAt + 10 * 60_000 + 1)).deleted).toEqual([input.uid]);
    expect(await emulatorInputs()).toEqual([]);
  });

  it("an input whose meta does not name its stream is found through the input index, and kept while its stream runs", async () => {
    const app = await registerApp();
    const s = await startStream(app, newUserId());
    const input = await inputFor(s.streamId);
    // As inputs made before the meta carried the streamId: only our marker.
    await cloudflareDirect("PUT", `/${input.uid}`, { meta: { managedBy: "stream-coordinator" } });
    expect((await emulatorInputs()).find((i: { uid: string }) => i.uid === input.uid).meta).toEqual({ managedBy: "stream-coordinator" });

    const report = await sweepLeakedInputs(env, Date.now() + 24 * 60 * 60_000);
    expect(report).toMatchObject({ checked: 1, deleted: [], failed: [] });
    expect((await emulatorInputs()).map((i: { uid: string }) => i.uid)).toEqual([input.uid]);
  });

  it("a run that deletes an input, or fails to, logs its report (a failure with its reason); a run with nothing to do logs nothing", async () => {
    const logs = vi.spyOn(console, "log").mockImplementation(() => undefined);
    const errors = vi.spyOn(console, "error").mockImplementation(() => undefined);
    const reports = () => logs.mock.calls.filter((c) => c[0] === "leak sweep").map((c) => JSON.parse(c[1] as string));
    const young = await createRaw({ managedBy: "stream-coordinator" });

    await sweepLeakedInputs(env, Date.now() + 60_000);
    expect(reports()).toEqual([]);

    await injectFault({ method: "DELETE", path: `${LIVE_INPUTS_PATH}/*`, status: 403, count: 1 });
    await sweepLeakedInputs(env, Date.now() + 11 * 60_000);
    expect(reports()).toMatchObject([{ checked: 1, deleted: [], failed: [young] }]);
    expect(errors).toHaveBeenCalledWith("leak sweep could not delete an input", expect.any(String));

    await sweepLeakedInputs(env, Date.now() + 11 * 60_000);
    expect(reports()).toMatchObject([{ failed: [young] }, { checked: 1, deleted: [young], failed: [] }]);
  });
});

const stub = (streamId: string) => env.STREAMS.getByName(streamId);
