// The fault matrix measured from outside (issue 8, "Done when"): every Cloudflare call the coordinator
// makes × every way its answer can go wrong, against the real `npm start` stack (wrangler dev + the Node
// Stream emulator). After each cell has settled, three promises hold (docs/architecture.md, "Lost
// answers"): Cloudflare's state (the emulator's) equals ours one for one, the client was told the truth,
// and a final stop leaves nothing at the emulator for the cell's stream. Inside workerd
// (test/stream/fault-matrix.test.ts) a delayed emulator call dies with its caller, so a late landing is
// only real here: a `delayMs` fault holds the request past CLOUDFLARE_TIMEOUT_MS, and the emulator then
// performs it anyway, after the coordinator gave up on it and retried.
//
// Scheduling. Faults are global in the emulator and match method + path. Every call but the live-input
// create names the stream's own input uid in its path, so cells on different streams cannot take each
// other's fault: those run six at a time (one fault kind, every call). The live-input create (POST
// /live_inputs, one path for everyone) and every 429 (it holds back every Cloudflare call of the
// deployment for its Retry-After) are *exclusive*: their row sets up all its cells at once, then fires
// the faulted calls one at a time with nothing else calling Cloudflare on the client's behalf (the fault
// served, a late one landed, a 429's block over), then settles every cell at once.
//
// Polls cannot be fired from outside; they are triggered by what makes the coordinator read. With
// webhooks off (WEBHOOK_SECRET="") a new stream reads its live input every 2 s, so a start schedules the
// input poll. The outputs list is polled every OUTPUTS_POLL_SECONDS (5 here) while a viewer socket is open and the
// stream has outputs: that cell opens one, lets the reconcile read that follows every add go by, then
// faults the poll's read.
//
// Prints a summary (cells × orphans, ghosts, divergences, wrong answers) at the end. The machinery (clients,
// reading both sides, findings, running a cell, the table) is in fault-matrix-harness.mjs.
// Run: `node --test test/e2e/fault-matrix.test.mjs`.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import {
  INPUTS,
  addCellOutput,
  anyFailed,
  bothSides,
  callsSince,
  configure,
  emulatorInputs,
  errorShape,
  exclusiveRow,
  finding,
  inputsOf,
  ok,
  oneForOne,
  readAgainSince,
  runCell,
  running,
  startCellStream,
  startRequest,
  summary,
  told,
  useStack,
} from "./fault-matrix-harness.mjs";
import { admin, http, openSocket, startStack, waitFor } from "./stack.mjs";

const TIMEOUT_MS = 1_500;
const RECONCILE_SECONDS = 1;
const POLL_SLOW_SECONDS = 1;
const ENV = {
  CLOUDFLARE_TIMEOUT_MS: String(TIMEOUT_MS),
  RECONCILE_SECONDS: String(RECONCILE_SECONDS),
  POLL_SLOW_SECONDS: String(POLL_SLOW_SECONDS),
  // The outputs poll cells wait for the stream's own outputs list (default every 30 min).
  OUTPUTS_POLL_SECONDS: "5",
  // Join holds and grace outlast the file: output calls need the app to be viewing, and no stream may
  // stop by itself under a cell.
  JOIN_WINDOW_SECONDS: "900",
  VIEWER_GRACE_SECONDS: "900",
  // No webhooks: a never-connected stream reads its input every 2 s (the input-poll cells rely on it).
  WEBHOOK_SECRET: "",
  API_BUDGET_PER_5_MIN: "1199",
};
/** A `delayMs` fault holds the request this long, then performs it: after the coordinator's timeout and retry. */
const LATE_MS = 2_500;
const RETRY_AFTER_SECONDS = 1;
/**
 * Settling: unsettled rows within RECONCILE_SECONDS (1), tombstones at 1, 2, 4, 8 s, a stop's retry after
 * max(5 s ± 20 %, 4 × the timeout). The deadline is generous for a loaded 2-core machine; a cell that
 * keeps its promises settles in a few seconds.
 */
const SETTLE_MS = 20_000;
/** Settled means: every promise holds, and still holds this long after (a reconcile and two tombstone passes). */
const STABLE_MS = 2_000;
const CHECK_EVERY_MS = 400;

const FAULTS = {
  "503": { status: 503 },
  "429": { status: 429, retryAfter: RETRY_AFTER_SECONDS },
  delay: { delayMs: LATE_MS },
  drop: { drop: true },
  "500-after-effect": { status: 500, afterEffect: true },
  "drop-after-effect": { drop: true, afterEffect: true },
};
const KINDS = ["503", "429", "delay", "drop", "500-after-effect", "drop-after-effect"];

let stack;
const coord = (path) => `${stack.coordinator}${path}`;

// ── The calls ────────────────────────────────────────────────────────────────────────────────────

/**
 * For each Cloudflare call: `setup` prepares what it needs, `path` is its (cell-specific) fault path,
 * `act` makes the coordinator issue it once under the fault and returns what the client was told (null
 * for polls), `check` returns the findings on the current truth (empty when every promise holds).
 */
const CALLS = {
  "create live input": {
    method: "POST",
    exclusive: true,
    path: () => INPUTS,
    async setup() {},
    async act(cell) {
      cell.before = new Set((await emulatorInputs()).map((i) => i.uid));
      const answer = await startRequest(cell.client);
      if (ok(answer)) {
        cell.streamId = answer.body.streamId;
        cell.streams.add(cell.streamId);
      }
      return answer;
    },
    /** The inputs made while this cell alone was calling (its faulted call served, a late one landed). */
    async afterServed(cell) {
      cell.fresh = new Set((await emulatorInputs()).map((i) => i.uid).filter((uid) => !cell.before.has(uid)));
    },
    async check(cell) {
      const a = cell.answer;
      const fresh = (await emulatorInputs()).filter((i) => cell.fresh.has(i.uid));
      if (ok(a)) {
        const f = a.status === 201 ? [] : [finding("wrong", `a new user's start answered ${told(a)}`)];
        for (const i of fresh.filter((x) => x.meta?.streamId !== cell.streamId)) f.push(finding("orphan", `live input ${i.uid} for ${i.meta?.streamId}`));
        const sides = await bothSides(cell);
        if (sides.inputs.length === 0) f.push(finding("wrong", `told ${a.status} (stream ${cell.streamId}) but Cloudflare holds no input for it`));
        return [...f, ...oneForOne(sides)];
      }
      const f = errorShape(cell, a);
      for (const i of fresh) {
        // Told "no stream", yet an input was made: ours (a running stream plays it) → wrong answer; else an orphan.
        const snap = i.meta?.streamId ? await http("GET", coord(`/api/streams/${i.meta.streamId}`), { headers: cell.client.headers }) : null;
        if (snap && running(snap) && snap.body.hlsUrl?.includes(i.uid)) f.push(finding("wrong", `told ${told(a)} but stream ${i.meta.streamId} runs on input ${i.uid}`));
        else f.push(finding("orphan", `live input ${i.uid} for ${i.meta?.streamId} after an answer of ${a.status}`));
      }
      return f;
    },
    /** Nothing half-written: after an error the user can start at once, and gets a new stream. */
    async afterSettled(cell) {
      if (ok(cell.answer)) return [];
      const again = await startRequest(cell.client);
      if (ok(again)) {
        cell.streams.add(again.body.streamId);
        cell.streamId = again.body.streamId;
      }
      if (again.status === 201) return [];
      if (again.status === 200) return [finding("wrong", `told ${cell.answer.status}, yet the next start joined an existing stream ${again.body.streamId}`)];
      return [finding("ghost", `after the error the user cannot start: ${told(again)}`)];
    },
  },

  "get live input (input poll)": {
    method: "GET",
    path: (cell) => `${INPUTS}/${cell.uid}`,
    setup: startCellStream,
    act: async () => null, // the stream's own poll (every 2 s) takes the fault
    async check(cell) {
      const sides = await bothSides(cell);
      const f = oneForOne(sides);
      if (sides.snap.status === 200 && (sides.snap.body.status !== "preparing" || sides.snap.body.ingest !== "idle")) {
        f.push(finding("divergence", `a failed read changed the stream: ${sides.snap.body.status}/${sides.snap.body.ingest}`));
      }
      return [...f, ...(await readAgainSince(cell, ""))];
    },
  },

  "delete live input (admin stop)": {
    method: "DELETE",
    path: (cell) => `${INPUTS}/${cell.uid}`,
    async setup(cell) {
      await startCellStream(cell);
      await addCellOutput(cell);
    },
    async act(cell) {
      const answer = await http("POST", coord(`/api/admin/streams/${cell.streamId}/stop`), { headers: admin });
      cell.heldAtAnswer = inputsOf(await emulatorInputs(), cell.streamId);
      return answer;
    },
    async check(cell) {
      const a = cell.answer;
      const f = [];
      if (a.status !== 200 || !["stopped", "stopping"].includes(a.body?.status)) f.push(finding("wrong", `stop answered ${told(a)}`));
      else if (a.body.status === "stopped" && cell.heldAtAnswer.length > 0) {
        f.push(finding("wrong", `told "stopped" while Cloudflare still held input ${cell.heldAtAnswer.map((i) => i.uid)}`));
      }
      const sides = await bothSides(cell);
      if (sides.snap.body?.status !== "stopped") {
        f.push(finding(sides.inputs.length === 0 ? "divergence" : "orphan", `stream is ${sides.snap.body?.status}, Cloudflare holds ${sides.inputs.length} input(s) for it`));
      }
      return [...f, ...oneForOne(sides)];
    },
  },

  "create output": {
    method: "POST",
    path: (cell) => `${INPUTS}/${cell.uid}/outputs`,
    setup: startCellStream,
    act: (cell) => http("POST", coord(`/api/streams/${cell.streamId}/outputs`), { body: { url: cell.target }, headers: cell.client.headers }),
    async check(cell) {
      const a = cell.answer;
      const sides = await bothSides(cell);
      const f = oneForOne(sides);
      const remote = sides.inputs[0]?.outputs ?? [];
      const ours = sides.outs.body?.outputs ?? [];
      if (ok(a)) {
        if (a.status !== 200 || a.body?.success !== true) f.push(finding("wrong", `add answered ${told(a)}`));
        if (remote.length === 0) f.push(finding("wrong", `told ${a.status} (output ${a.body?.outputId}) but Cloudflare has no output`));
        if (!ours.some((o) => o.outputId === a.body?.outputId)) f.push(finding("wrong", `told outputId ${a.body?.outputId}, ours lists ${JSON.stringify(ours.map((o) => o.outputId))}`));
      } else {
        f.push(...errorShape(cell, a));
        if (remote.length > 0) f.push(finding("wrong", `told ${told(a)} but Cloudflare restreams to ${remote.length} output(s)`));
      }
      return f;
    },
  },

  "list outputs (outputs poll)": {
    method: "GET",
    path: (cell) => `${INPUTS}/${cell.uid}/outputs`,
    async setup(cell) {
      await startCellStream(cell);
      // A viewer socket: the outputs list is polled only while someone is connected.
      cell.viewer = await openSocket(`${stack.coordinator.replace(/^http/, "ws")}/api/streams/${cell.streamId}/ws`, cell.client.headers);
      await cell.viewer.next("first managed_stream_status", (m) => m.type === "managed_stream_status");
      const addedAt = Date.now() - 100;
      await addCellOutput(cell);
      // Every add is followed by a reconcile read (RECONCILE_SECONDS later); let it go by, so the poll takes the fault.
      await waitFor(
        "the reconcile read after the add",
        async () => (await callsSince(addedAt)).some((c) => c.method === "GET" && c.path.endsWith(`/live_inputs/${cell.uid}/outputs`)),
        { timeoutMs: 8_000, intervalMs: 200 },
      );
    },
    act: async () => null, // the stream's own outputs poll (every OUTPUTS_POLL_SECONDS) takes the fault
    async check(cell) {
      const sides = await bothSides(cell);
      const f = oneForOne(sides);
      const ours = sides.outs.body?.outputs ?? [];
      if (ours.length !== 1 || ours[0].error !== null || ours[0].enabled !== true) {
        f.push(finding("divergence", `a failed read changed the outputs: ${JSON.stringify(ours)}`));
      }
      return [...f, ...(await readAgainSince(cell, "/outputs"))];
    },
  },

  "update output (PATCH enabled:false)": {
    method: "PUT",
    path: (cell) => `${INPUTS}/${cell.uid}/outputs/*`,
    async setup(cell) {
      await startCellStream(cell);
      await addCellOutput(cell);
    },
    act: (cell) =>
      http("PATCH", coord(`/api/streams/${cell.streamId}/outputs/${cell.outputId}`), { body: { enabled: false }, headers: cell.client.headers }),
    async check(cell) {
      const a = cell.answer;
      const sides = await bothSides(cell);
      const f = oneForOne(sides);
      const remote = sides.inputs[0]?.outputs ?? [];
      if (remote.length !== 1) return [...f, finding("divergence", `Cloudflare holds ${remote.length} outputs, expected the one`)];
      const disabled = remote[0].enabled === false;
      if (ok(a) && !disabled) f.push(finding("wrong", `told ${told(a)} but the output is enabled at Cloudflare`));
      if (!ok(a)) {
        f.push(...errorShape(cell, a));
        if (disabled) f.push(finding("wrong", `told ${told(a)} but the output is disabled at Cloudflare`));
      }
      return f;
    },
  },

  "delete output": {
    method: "DELETE",
    path: (cell) => `${INPUTS}/${cell.uid}/outputs/*`,
    async setup(cell) {
      await startCellStream(cell);
      await addCellOutput(cell);
    },
    act: (cell) => http("DELETE", coord(`/api/streams/${cell.streamId}/outputs/${cell.outputId}`), { headers: cell.client.headers }),
    async check(cell) {
      const a = cell.answer;
      const sides = await bothSides(cell);
      const f = oneForOne(sides);
      const remote = sides.inputs[0]?.outputs ?? [];
      if (ok(a)) {
        // 200: removed; 202: removal accepted, Cloudflare to confirm: either way it must be gone once settled.
        if (![200, 202].includes(a.status) || a.body?.success !== true) f.push(finding("wrong", `delete answered ${told(a)}`));
        if (remote.length > 0) f.push(finding("wrong", `told ${a.status} but Cloudflare still has output ${remote.map((o) => o.uid)}`));
      } else {
        f.push(...errorShape(cell, a));
        if (remote.length === 0) f.push(finding("wrong", `told ${told(a)} but the output is gone at Cloudflare`));
      }
      return f;
    },
  },
};

configure({
  calls: CALLS,
  faults: FAULTS,
  kinds: KINDS,
  lateMs: LATE_MS,
  retryAfterSeconds: RETRY_AFTER_SECONDS,
  settleMs: SETTLE_MS,
  stableMs: STABLE_MS,
  checkEveryMs: CHECK_EVERY_MS,
});

// ── The matrix ───────────────────────────────────────────────────────────────────────────────────

describe("fault matrix against npm start: every Cloudflare call × every fault kind", () => {
  before(async () => {
    stack = await startStack(ENV);
    useStack(stack);
  });

  after(async () => {
    if (!stack) return;
    const exitMs = await stack.stop(10_000);
    if (anyFailed() || exitMs === null) console.log(`--- npm start output (tail) ---\n${stack.output().slice(-6_000)}\n--- end ---`);
  });

  const CELL = { timeout: 90_000 };
  const exclusive = Object.keys(CALLS).filter((c) => CALLS[c].exclusive);
  const shared = Object.keys(CALLS).filter((c) => !CALLS[c].exclusive);

  for (const callName of exclusive) {
    describe(`${callName}: faulted calls one at a time (its fault path is everyone's)`, { concurrency: true }, () => {
      const row = exclusiveRow();
      for (const kind of KINDS) test(`${callName} × ${kind}`, CELL, () => runCell(callName, kind, row));
    });
  }

  for (const kind of KINDS.filter((k) => k !== "429")) {
    describe(`× ${kind}: every other call at once (each fault names its stream's input)`, { concurrency: true }, () => {
      for (const callName of shared) test(`${callName} × ${kind}`, CELL, () => runCell(callName, kind));
    });
  }

  describe("× 429: faulted calls one at a time (a 429 holds back every call of the deployment)", { concurrency: true }, () => {
    const row = exclusiveRow();
    for (const callName of shared) test(`${callName} × 429`, CELL, () => runCell(callName, "429", row));
  });

  test("the emulator is empty at the end; summary", { timeout: 30_000 }, async (t) => {
    let left = [];
    try {
      await waitFor("the emulator to be empty", async () => (left = await emulatorInputs()).length === 0, { timeoutMs: SETTLE_MS, intervalMs: 300 });
    } catch {
      // reported below
    }
    for (const line of summary(left)) t.diagnostic(line);
    assert.deepEqual(
      left.map((i) => ({ uid: i.uid, meta: i.meta, outputs: i.outputs.length })),
      [],
      "live inputs left at the emulator after every cell's final stop",
    );
  });
});
