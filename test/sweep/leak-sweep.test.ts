import { env } from "cloudflare:test";
import { beforeEach, describe, expect, it } from "vitest";
import { sweepLeakedInputs } from "../../src/sweep/leak-sweep";
import { ADMIN, call, cloudflareDirect, emulatorInputs, newUserId, registerApp, resetEmulator, startStream } from "../helpers";

beforeEach(resetEmulator);

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
});
