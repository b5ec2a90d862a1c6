import { env, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { beforeEach, describe, expect, it } from "vitest";
import {
  ADMIN,
  LIVE_INPUTS_PATH,
  call,
  emulatorInputs,
  injectFault,
  inputFor,
  newUserId,
  postStream,
  registerApp,
  resetEmulator,
  startStream,
  type Json,
  type Reply,
  type TestApp,
  cloudflareDirect,
} from "../helpers";

/**
 * The fault matrix: every Cloudflare call the coordinator makes × every way its answer can go wrong.
 * After settling (timers fired through the real alarm path, no sleeps but the emulator's own delay),
 * three promises hold in every cell: Cloudflare's state equals ours one for one, the client was told
 * the truth, and a final stop leaves the emulator empty.
 */
beforeEach(resetEmulator);

/** CLOUDFLARE_TIMEOUT_MS is 1500 in the test bindings: this delay outlives it. */
const PAST_TIMEOUT_MS = 2_200;

type FaultKind = "503" | "429" | "delay" | "drop" | "500-after-effect" | "drop-after-effect";
const FAULTS: Record<FaultKind, Omit<Parameters<typeof injectFault>[0], "path" | "method">> = {
  "503": { status: 503 },
  "429": { status: 429, retryAfter: 1 },
  delay: { delayMs: PAST_TIMEOUT_MS },
  drop: { drop: true },
  "500-after-effect": { status: 500, afterEffect: true },
  "drop-after-effect": { drop: true, afterEffect: true },
};

const INPUT = `${LIVE_INPUTS_PATH}/*`;
const OUTPUTS = `${LIVE_INPUTS_PATH}/*/outputs`;
const yt = (key: string) => `rtmp://a.rtmp.youtube.com/live2/${key}`;

interface Cell {
  streamId: string;
  app: TestApp;
  answer: Reply | null;
  /** What the client was told happened, checked against the settled truth. */
  check(answer: Reply | null): Promise<void>;
}

interface CallUnderTest {
  method: string;
  path: string;
  /** Sets up what the call needs, then makes the coordinator issue it once, under the fault. */
  run(fault: Parameters<typeof injectFault>[0]): Promise<Cell>;
}

async function streamWithOutput(): Promise<{ app: TestApp; streamId: string; outputId: string }> {
  const app = await registerApp();
  const s = await startStream(app);
  const added = await call("POST", `/api/streams/${s.streamId}/outputs`, { url: yt("target") }, app.headers);
  expect(added.status).toBe(200);
  return { app, streamId: s.streamId, outputId: added.body.outputId };
}

const CALLS: Record<string, CallUnderTest> = {
  "create live input": {
    method: "POST",
    path: LIVE_INPUTS_PATH,
    async run(fault) {
      const app = await registerApp();
      const userId = newUserId();
      await injectFault(fault);
      const answer = await postStream(app, { userId, recording: { mode: "off" } });
      const streamId = answer.body.streamId ?? "";
      return {
        app,
        streamId,
        answer,
        async check(a) {
          const inputs = await emulatorInputs();
          if (a!.status === 201) {
            expect(inputs.map((i: Json) => i.meta.streamId)).toEqual([streamId]);
            expect((await call("GET", `/api/streams/${streamId}`, undefined, app.headers)).body.status).toBe("preparing");
          } else {
            expect(a!.body).toMatchObject({ error: "CLOUDFLARE_ERROR" });
            expect(inputs).toEqual([]);
            // Nothing half-written: the user can start again at once.
            expect((await postStream(app, { userId, recording: { mode: "off" } })).status).toBe(201);
          }
        },
      };
    },
  },
  "get live input (poll)": {
    method: "GET",
    path: INPUT,
    async run(fault) {
      const app = await registerApp();
      const s = await startStream(app);
      await injectFault(fault);
      await runTimer(s.streamId, "poll-input");
      return {
        app,
        streamId: s.streamId,
        answer: null,
        async check() {
          const timers = await timersOf(s.streamId);
          // A failed read changes nothing, and the poll is never lost.
          expect(timers).toHaveProperty("poll-input");
          expect((await call("GET", `/api/streams/${s.streamId}`, undefined, app.headers)).body).toMatchObject({ status: "preparing", ingest: "idle" });
        },
      };
    },
  },
  "delete live input (stop)": {
    method: "DELETE",
    path: INPUT,
    async run(fault) {
      const { app, streamId } = await streamWithOutput();
      await injectFault(fault);
      const answer = await call("POST", `/api/admin/streams/${streamId}/stop`, undefined, ADMIN);
      return {
        app,
        streamId,
        answer,
        async check(a) {
          expect(a!.status).toBe(200);
          // The answer says what was true: stopped only when Cloudflare's input is gone.
          if (a!.body.status === "stopped") expect(await inputFor(streamId)).toBeUndefined();
          else expect(a!.body.status).toBe("stopping");
          expect((await call("GET", `/api/streams/${streamId}`, undefined, app.headers)).body.status).toBe("stopped");
          expect(await emulatorInputs()).toEqual([]);
        },
      };
    },
  },
  "create output": {
    method: "POST",
    path: OUTPUTS,
    async run(fault) {
      const app = await registerApp();
      const s = await startStream(app);
      await injectFault(fault);
      const answer = await call("POST", `/api/streams/${s.streamId}/outputs`, { url: yt("new") }, app.headers);
      return {
        app,
        streamId: s.streamId,
        answer,
        async check(a) {
          const remote = (await inputFor(s.streamId)).outputs.map((o: Json) => o.streamKey);
          const ours = await visibleOutputs(app, s.streamId);
          if (a!.status === 200) {
            expect(remote).toEqual(["new"]);
            expect(ours.map((o: Json) => o.outputId)).toEqual([a!.body.outputId]);
          } else {
            expect(a!.body.error).toBe("CLOUDFLARE_ERROR");
            expect(remote).toEqual([]);
            expect(ours).toEqual([]);
          }
          expect(await env.APPS.getByName(app.packageName).outputCount()).toBe(ours.length);
        },
      };
    },
  },
  "list outputs (poll)": {
    method: "GET",
    path: OUTPUTS,
    async run(fault) {
      const { app, streamId } = await streamWithOutput();
      await injectFault(fault);
      await runTimer(streamId, "poll-outputs");
      return {
        app,
        streamId,
        answer: null,
        async check() {
          expect(await visibleOutputs(app, streamId)).toMatchObject([{ error: null, enabled: true }]);
        },
      };
    },
  },
  "update output (enable flag)": {
    method: "PUT",
    path: `${OUTPUTS}/*`,
    async run(fault) {
      const { app, streamId, outputId } = await streamWithOutput();
      await injectFault(fault);
      const answer = await call("PATCH", `/api/streams/${streamId}/outputs/${outputId}`, { enabled: false }, app.headers);
      return {
        app,
        streamId,
        answer,
        async check(a) {
          const remote = (await inputFor(streamId)).outputs[0].enabled;
          const ours = (await visibleOutputs(app, streamId))[0].enabled;
          expect(ours).toBe(remote);
          // Told "disabled" exactly when it is.
          expect(a!.status === 200).toBe(remote === false);
          if (a!.status !== 200) expect(a!.body.error).toBe("CLOUDFLARE_ERROR");
        },
      };
    },
  },
  "delete output": {
    method: "DELETE",
    path: `${OUTPUTS}/*`,
    async run(fault) {
      const { app, streamId, outputId } = await streamWithOutput();
      await injectFault(fault);
      const answer = await call("DELETE", `/api/streams/${streamId}/outputs/${outputId}`, undefined, app.headers);
      return {
        app,
        streamId,
        answer,
        async check(a) {
          const remote = (await inputFor(streamId)).outputs;
          const ours = await visibleOutputs(app, streamId);
          if (a!.status === 200 || a!.status === 202) {
            expect(a!.body.success).toBe(true);
            expect(remote).toEqual([]);
            expect(ours).toEqual([]);
            expect(await env.APPS.getByName(app.packageName).outputCount()).toBe(0);
          } else {
            expect(a!.body.error).toBe("CLOUDFLARE_ERROR");
            expect(remote).toHaveLength(1);
            expect(ours).toHaveLength(1);
          }
        },
      };
    },
  },
};

describe("fault matrix: every Cloudflare call × every fault kind", () => {
  for (const [callName, cut] of Object.entries(CALLS)) {
    for (const [kind, spec] of Object.entries(FAULTS) as Array<[FaultKind, (typeof FAULTS)[FaultKind]]>) {
      it(`${callName} × ${kind}`, async () => {
        const cell = await cut.run({ method: cut.method, path: cut.path, count: 1, ...spec });
        if (kind === "delay") await new Promise((r) => setTimeout(r, PAST_TIMEOUT_MS)); // let the late request land
        if (kind === "429") await env.BUDGET.getByName("global").clear(); // Cloudflare's block has passed
        await settle(cell.streamId);
        if (cell.streamId) await expectEqualOneForOne(cell.app, cell.streamId);
        await cell.check(cell.answer);
        // 503, 429 and a plain drop mean "not applied" or are retried safely: the client hears no error
        // unless nothing happened, and a 429 is passed on as such.
        if (cell.answer && kind === "429" && cell.answer.status >= 400) expect(cell.answer.body.message).toMatch(/429|budget/);
        await stopAll();
        expect(await emulatorInputs()).toEqual([]);
      });
    }
  }
});

describe("answers lost on every attempt", () => {
  it("a live-input create that lands after we gave up is deleted by its tombstone", async () => {
    const app = await registerApp();
    // Both attempts time out. (Inside workerd the emulator drops a call whose caller gave up, so the
    // late landing is made by hand: the input Cloudflare would have made, with the stream's meta.)
    await injectFault({ method: "POST", path: LIVE_INPUTS_PATH, delayMs: PAST_TIMEOUT_MS, count: 2 });
    const answer = await postStream(app, { userId: newUserId(), recording: { mode: "off" } });
    expect(answer).toMatchObject({ status: 502, body: { error: "CLOUDFLARE_ERROR" } });
    const streamId = await onlyStreamWithTombstones();
    await cloudflareDirect("POST", "", { meta: { managedBy: "stream-coordinator", streamId } });
    expect(await emulatorInputs()).toHaveLength(1);
    await runTimer(streamId, "tombstones");
    expect(await emulatorInputs()).toEqual([]);
  });

  it("an output create that lands after we gave up is deleted by its tombstone, and holds no slot meanwhile", async () => {
    const app = await registerApp();
    const s = await startStream(app);
    await injectFault({ method: "POST", path: OUTPUTS, delayMs: PAST_TIMEOUT_MS, count: 2 });
    const answer = await call("POST", `/api/streams/${s.streamId}/outputs`, { url: yt("late") }, app.headers);
    expect(answer).toMatchObject({ status: 502, body: { error: "CLOUDFLARE_ERROR" } });
    expect(await env.APPS.getByName(app.packageName).outputCount()).toBe(0);
    const input = await inputFor(s.streamId);
    await cloudflareDirect("POST", `/${input.uid}/outputs`, { url: "rtmp://a.rtmp.youtube.com/live2", streamKey: "late" });
    await runTimer(s.streamId, "tombstones");
    expect((await inputFor(s.streamId)).outputs).toEqual([]);
    // The URL is free again.
    expect((await call("POST", `/api/streams/${s.streamId}/outputs`, { url: yt("late") }, app.headers)).status).toBe(200);
  });

  it("an unconfirmed removal does not count against the stream's cap of 10", async () => {
    const { app, streamId, outputId } = await streamWithOutput();
    for (let i = 1; i < 10; i++) expect((await call("POST", `/api/streams/${streamId}/outputs`, { url: yt(`fill-${i}`) }, app.headers)).status).toBe(200);
    await injectFault({ method: "DELETE", path: `${OUTPUTS}/*`, status: 500, count: 2 });
    await injectFault({ method: "GET", path: OUTPUTS, status: 500, count: 2 });
    expect((await call("DELETE", `/api/streams/${streamId}/outputs/${outputId}`, undefined, app.headers)).status).toBe(202);
    // 9 outputs plus one whose removal is still being confirmed: a tenth may be added.
    expect((await call("POST", `/api/streams/${streamId}/outputs`, { url: yt("tenth") }, app.headers)).body).toMatchObject({ success: true });
    expect((await call("POST", `/api/streams/${streamId}/outputs`, { url: yt("eleventh") }, app.headers)).body.error).toBe("MAX_OUTPUTS_REACHED");
  });

  it("an enable flag Cloudflare changed but never confirmed is read back by the reconcile timer within 15 s", async () => {
    const { app, streamId, outputId } = await streamWithOutput();
    // The add's own reconcile has run: any reconcile planned from here on is the PATCH's.
    await runTimer(streamId, "outputs-reconcile");
    expect(await timersOf(streamId)).not.toHaveProperty("outputs-reconcile");
    // The change lands both times, but every answer and every read-back is lost.
    await injectFault({ method: "PUT", path: `${OUTPUTS}/*`, status: 500, afterEffect: true, count: 2 });
    await injectFault({ method: "GET", path: OUTPUTS, status: 500, count: 2 });
    const answer = await call("PATCH", `/api/streams/${streamId}/outputs/${outputId}`, { enabled: false }, app.headers);
    expect(answer).toMatchObject({ status: 502, body: { error: "CLOUDFLARE_ERROR" } });
    expect((await inputFor(streamId)).outputs[0].enabled).toBe(false);
    const timers = await timersOf(streamId);
    expect(timers["outputs-reconcile"]! - Date.now()).toBeLessThanOrEqual(15_000);
    await runTimer(streamId, "outputs-reconcile");
    expect((await visibleOutputs(app, streamId))[0].enabled).toBe(false);
  });

  it("an output removal Cloudflare never confirms is accepted (202), holds no slot, and is finished by the reconcile timer", async () => {
    const { app, streamId, outputId } = await streamWithOutput();
    // Every delete and every read-back fails: the removal cannot be confirmed before answering.
    await injectFault({ method: "DELETE", path: `${OUTPUTS}/*`, status: 500, count: 2 });
    await injectFault({ method: "GET", path: OUTPUTS, status: 500, count: 2 });
    const answer = await call("DELETE", `/api/streams/${streamId}/outputs/${outputId}`, undefined, app.headers);
    expect(answer).toMatchObject({ status: 202, body: { success: true } });
    expect(await visibleOutputs(app, streamId)).toEqual([]);
    expect(await env.APPS.getByName(app.packageName).outputCount()).toBe(0);
    // The same URL may be added again at once.
    expect((await call("POST", `/api/streams/${streamId}/outputs`, { url: yt("target") }, app.headers)).status).toBe(200);
    const timers = await timersOf(streamId);
    expect(timers["outputs-reconcile"]! - Date.now()).toBeLessThanOrEqual(15_000);
    await runTimer(streamId, "outputs-reconcile");
    const remote = (await inputFor(streamId)).outputs;
    expect(remote).toHaveLength(1);
    expect((await visibleOutputs(app, streamId)).map((o: Json) => o.outputId)).not.toContain(outputId);
  });
});

/** The stream given up most recently: its storage is wiped but for the tombstone it left. */
async function onlyStreamWithTombstones(): Promise<string> {
  const { listDurableObjectIds } = await import("cloudflare:test");
  let latest: { stream_id: string; asked_at: number } | undefined;
  for (const id of await listDurableObjectIds(env.STREAMS)) {
    const row = await runInDurableObject(env.STREAMS.get(id), (_i, state) => {
      const sql = state.storage.sql;
      const has = (table: string) => sql.exec("SELECT 1 FROM sqlite_master WHERE name = ?", table).toArray().length > 0;
      if (!has("tombstones") || (has("stream") && sql.exec("SELECT 1 FROM stream").toArray().length > 0)) return undefined;
      return sql.exec<{ stream_id: string; asked_at: number }>("SELECT stream_id, asked_at FROM tombstones WHERE kind = 'live_input' ORDER BY asked_at DESC").toArray()[0];
    });
    if (row && (!latest || row.asked_at > latest.asked_at)) latest = row;
  }
  expect(latest).toBeDefined();
  return latest!.stream_id;
}

// ── Helpers ──────────────────────────────────────────────────────────────────────────────────────

async function visibleOutputs(app: TestApp, streamId: string): Promise<Json[]> {
  return runInDurableObject(env.STREAMS.getByName(streamId), (_i, state) =>
    state.storage.sql
      .exec<Json>("SELECT output_id AS outputId, cf_uid AS cfUid, state, enabled, error FROM outputs WHERE state != 'deleting' ORDER BY created_at")
      .toArray()
      .map((r: Json) => ({ ...r, enabled: r.enabled === 1 })),
  ).then((rows) => (void app, rows));
}

async function timersOf(streamId: string): Promise<Record<string, number>> {
  return runInDurableObject(env.STREAMS.getByName(streamId), (_i, state) =>
    Object.fromEntries(state.storage.sql.exec<{ name: string; due_at: number }>("SELECT name, due_at FROM schedule").toArray().map((r) => [r.name, r.due_at])),
  );
}

/** Makes one timer due now and runs the stream's alarm (the real path). */
async function runTimer(streamId: string, name: string): Promise<void> {
  const stub = env.STREAMS.getByName(streamId);
  await runInDurableObject(stub, async (_i, state) => {
    // Due now (and present: a poll the policy has not planned yet is forced, as if its turn had come).
    state.storage.sql.exec("INSERT INTO schedule (name, due_at) VALUES (?, 0) ON CONFLICT(name) DO UPDATE SET due_at = 0", name);
    await state.storage.setAlarm(Date.now() + 60_000);
  });
  await runDurableObjectAlarm(stub);
}

/**
 * Settling: whatever the stream promised to settle within one reconcile interval (unsettled outputs,
 * tombstones, a stop's cleanup) is made due and run, a few rounds, through the real alarm.
 */
async function settle(streamId: string): Promise<void> {
  if (!streamId) return;
  for (let round = 0; round < 3; round++) {
    const due = Object.keys(await timersOf(streamId)).filter((n) => ["outputs-reconcile", "tombstones", "cleanup", "ledger-outbox"].includes(n));
    if (due.length === 0) return;
    for (const name of due) await runTimer(streamId, name);
  }
}

/** Ours and Cloudflare's, one for one: the stream's input, and each output with its enabled flag. */
async function expectEqualOneForOne(app: TestApp, streamId: string): Promise<void> {
  const record = await runInDurableObject(env.STREAMS.getByName(streamId), (_i, state) =>
    state.storage.sql.exec<Json>("SELECT phase, live_input_uid FROM stream").toArray()[0],
  );
  const inputs = (await emulatorInputs()).filter((i: Json) => i.meta.streamId === streamId);
  if (!record || record.phase === "stopped") {
    expect(inputs).toEqual([]);
    return;
  }
  expect(inputs.map((i: Json) => i.uid)).toEqual([record.live_input_uid]);
  const remote = inputs[0].outputs.map((o: Json) => ({ uid: o.uid, enabled: o.enabled })).sort((a: Json, b: Json) => a.uid.localeCompare(b.uid));
  const ours = (await visibleOutputs(app, streamId)).map((o) => ({ uid: o.cfUid, enabled: o.enabled })).sort((a, b) => a.uid.localeCompare(b.uid));
  expect(ours).toEqual(remote);
}

/** A final stop of every stream the emulator still holds an input for. */
async function stopAll(): Promise<void> {
  for (const input of await emulatorInputs()) {
    await call("POST", `/api/admin/streams/${input.meta.streamId}/stop`, undefined, ADMIN);
    await settle(input.meta.streamId);
  }
}
