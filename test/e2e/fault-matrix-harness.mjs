// The machinery of the e2e fault matrix (fault-matrix.test.mjs): clients, reading Cloudflare's side
// (the emulator) and ours, judging a cell's promises into findings (orphan, ghost, divergence, wrong
// answer), running a cell (alone, or in an exclusive row: set up together, faulted calls one at a time,
// settled together), and the summary table.
import assert from "node:assert/strict";
import { admin, http, sleep, unique, waitFor } from "./stack.mjs";

export const INPUTS = "/client/v4/accounts/*/stream/live_inputs";

/** What the matrix is made of (`calls`, `faults`, `kinds`) and its timings; set once by the test file. */
let matrix = null;
let stack = null;
let failed = false;
const startedAt = Date.now();
const coord = (path) => `${stack.coordinator}${path}`;
const emu = (path) => `${stack.emulator}${path}`;

/** `{calls, faults, kinds, lateMs, retryAfterSeconds, settleMs, stableMs, checkEveryMs}` */
export function configure(settings) {
  matrix = settings;
}

/** Points the harness at the stack under test. */
export function useStack(started) {
  stack = started;
}

export const anyFailed = () => failed;

// ── Emulator ─────────────────────────────────────────────────────────────────────────────────────

export async function emulatorInputs() {
  const res = await http("GET", emu("/__emulator/state"));
  assert.equal(res.status, 200, `emulator state: ${JSON.stringify(res.body)}`);
  return res.body.inputs;
}

export const inputsOf = (inputs, streamId) => inputs.filter((i) => i.meta?.streamId === streamId);

/** The coordinator's admin stats: its budget's block and the 429s it has read. */
async function budgetStats() {
  const res = await http("GET", coord("/api/admin/stats"), { headers: admin });
  assert.equal(res.status, 200, `admin stats: ${JSON.stringify(res.body)}`);
  return { blockedUntil: res.body.budget.blockedUntil, rateLimited: res.body.cloudflare.rateLimited };
}

/**
 * After a 429: waits until the coordinator has read it (counted it) and its block has passed. The block
 * starts when the coordinator reads the 429, which under load is later than the emulator served it: a
 * fixed sleep of retry-after + 100 ms let the next cell's call be refused "budget exhausted". The budget
 * object's `blockedUntil` says when it ends; isolates hold the same block locally, set from the same 429.
 */
async function blockPassed(rateLimitedBefore) {
  await waitFor("the coordinator to read the 429", async () => (await budgetStats()).rateLimited > rateLimitedBefore, { timeoutMs: 15_000, intervalMs: 200 });
  const { until } = await waitFor(
    "the coordinator's 429 block to pass",
    async () => {
      const { blockedUntil } = await budgetStats();
      if (blockedUntil === null) return { until: 0 };
      return Date.parse(blockedUntil) <= Date.now() ? { until: Date.parse(blockedUntil) } : false;
    },
    { timeoutMs: 15_000, intervalMs: 200 },
  );
  await sleep(Math.max(0, until + 300 - Date.now()));
}

async function addFault(spec) {
  const res = await http("POST", emu("/__emulator/faults"), { body: spec });
  assert.equal(res.status, 200, `add fault: ${JSON.stringify(res.body)}`);
  return res.body.id;
}

export async function callsSince(since) {
  const res = await http("GET", emu(`/__emulator/calls?since=${since}`));
  assert.equal(res.status, 200);
  return res.body.calls;
}

/**
 * The emulator's calls from `since` (to `until`) about one live input (or, without one, on the live-inputs
 * collection), in the order they arrived, as `METHOD /rest status @seconds [fault]`.
 */
async function callsAbout(uid, since, until = Infinity) {
  const about = uid ? (c) => c.path.includes(uid) : (c) => /\/live_inputs\/?$/.test(c.path);
  const rest = (c) => (uid ? c.path.split(uid)[1] || "/" : "/live_inputs");
  const calls = (await callsSince(since)).filter((c) => about(c) && Date.parse(c.time) <= until);
  calls.sort((a, b) => Date.parse(a.time) - Date.parse(b.time));
  const line = (c) => `${c.method} ${rest(c)} ${c.status} @${((Date.parse(c.time) - since) / 1000).toFixed(1)}${c.fault ? ` [${c.fault}]` : ""}`;
  return calls.map(line).join(", ") || "none";
}

// ── Clients ──────────────────────────────────────────────────────────────────────────────────────

/** A fresh app and user per cell, with the grant the platform mints (grants are required by default). */
async function newClient() {
  const packageName = unique("com.e2e.faults.").toLowerCase();
  // Set-up calls, sent again if wrangler's proxy fails them (a POST it loses to a closing keep-alive
  // connection never reached the runtime: docs/architecture.md); a repeat that did land would be a 409 here.
  const reg = await http("POST", coord("/api/admin/apps"), { body: { packageName }, headers: admin, idempotent: true });
  assert.equal(reg.status, 201, `register app: ${JSON.stringify(reg.body)}`);
  const userId = unique("user-faults-");
  const grant = await http("POST", coord("/api/admin/user-grants"), { body: { userId, packageName }, headers: admin, idempotent: true });
  assert.equal(grant.status, 201, `user grant: ${JSON.stringify(grant.body)}`);
  const headers = { "x-api-key": reg.body.apiKey, "x-package-name": packageName };
  return { packageName, userId, headers, startHeaders: { ...headers, "x-user-grant": grant.body.token } };
}

export const startRequest = (client) =>
  http("POST", coord("/api/streams"), { body: { userId: client.userId, recording: { mode: "off" } }, headers: client.startHeaders });

/** Starts the cell's stream (no fault on this path) and finds its live input at the emulator. */
export async function startCellStream(cell) {
  const res = await startRequest(cell.client);
  assert.equal(res.status, 201, `start stream: HTTP ${res.status} ${JSON.stringify(res.body)}`);
  cell.streamId = res.body.streamId;
  cell.streams.add(cell.streamId);
  const inputs = inputsOf(await emulatorInputs(), cell.streamId);
  assert.equal(inputs.length, 1, `one live input for ${cell.streamId}: ${JSON.stringify(inputs)}`);
  cell.uid = inputs[0].uid;
}

export async function addCellOutput(cell) {
  // With an Idempotency-Key, as apps should send it: a set-up call the local runtime lost is sent again.
  const headers = { ...cell.client.headers, "idempotency-key": unique("setup-") };
  const res = await http("POST", coord(`/api/streams/${cell.streamId}/outputs`), { body: { url: cell.target }, headers });
  assert.equal(res.status, 200, `add output: HTTP ${res.status} ${JSON.stringify(res.body)}`);
  cell.outputId = res.body.outputId;
}

// ── The truth, and what the client was told ──────────────────────────────────────────────────────

/** Cloudflare's side (the emulator) and ours (the coordinator's REST view) of one stream. */
export async function bothSides(cell, streamId = cell.streamId) {
  const [inputs, snap, outs] = await Promise.all([
    emulatorInputs(),
    http("GET", coord(`/api/streams/${streamId}`), { headers: cell.client.headers }),
    http("GET", coord(`/api/streams/${streamId}/outputs`), { headers: cell.client.headers }),
  ]);
  return { inputs: inputsOf(inputs, streamId), snap, outs };
}

export const running = (snap) => snap.status === 200 && !["stopping", "stopped"].includes(snap.body.status);
export const finding = (kind, what) => ({ kind, what });

/**
 * One for one: a running stream has exactly one live input and plays it; Cloudflare's outputs on it and
 * our outputs match by destination (URL + key), count and `enabled`. A stopped stream holds nothing.
 */
export function oneForOne({ inputs, snap, outs }) {
  const f = [];
  if (!running(snap)) {
    for (const i of inputs) f.push(finding("orphan", `live input ${i.uid} (${i.outputs.length} outputs) for a stream that is ${snap.body?.status ?? `HTTP ${snap.status}`}`));
    return f;
  }
  const played = inputs.filter((i) => snap.body.hlsUrl?.includes(i.uid));
  for (const i of inputs.filter((x) => !played.includes(x))) f.push(finding("orphan", `live input ${i.uid} the stream does not play (it plays ${snap.body.hlsUrl})`));
  if (played.length !== 1) {
    f.push(finding("ghost", `stream is ${snap.body.status} and plays ${snap.body.hlsUrl}, but Cloudflare holds no such input`));
    return f;
  }
  if (outs.status !== 200) {
    f.push(finding("divergence", `outputs list: HTTP ${outs.status} ${JSON.stringify(outs.body)}`));
    return f;
  }
  const remote = played[0].outputs.map((o) => ({ dest: `${o.url.replace(/\/+$/, "")}/${o.streamKey}`, enabled: o.enabled, id: o.uid }));
  const ours = outs.body.outputs.map((o) => ({ dest: o.url, enabled: o.enabled, id: o.outputId }));
  if (outs.body.total !== ours.length) f.push(finding("divergence", `outputs total ${outs.body.total} but ${ours.length} listed`));
  for (const dest of new Set([...remote, ...ours].map((o) => o.dest))) {
    const r = remote.filter((o) => o.dest === dest);
    const o = ours.filter((x) => x.dest === dest);
    for (const extra of r.slice(o.length)) f.push(finding("orphan", `output ${extra.id} → ${dest} at Cloudflare, not ours`));
    for (const extra of o.slice(r.length)) f.push(finding("ghost", `output ${extra.id} → ${dest} is ours, not at Cloudflare`));
    for (let k = 0; k < Math.min(r.length, o.length); k++) {
      if (r[k].enabled !== o[k].enabled) f.push(finding("divergence", `output ${o[k].id} → ${dest}: enabled ${o[k].enabled} ours, ${r[k].enabled} at Cloudflare`));
    }
  }
  return f;
}

/** Every error we answer is JSON `{error, message}`, never a 500; a 429 is passed on with its Retry-After. */
export function errorShape(cell, answer) {
  const f = [];
  if (answer.status === 500 || typeof answer.body?.error !== "string" || typeof answer.body?.message !== "string") {
    f.push(finding("wrong", `error answer is not a JSON {error, message}: HTTP ${answer.status} ${JSON.stringify(answer.body)?.slice(0, 300)}`));
  }
  if (cell.kind === "429" && !answer.headers.get("retry-after")) {
    f.push(finding("wrong", `Cloudflare's 429 not passed on: HTTP ${answer.status} without Retry-After ${JSON.stringify(answer.body)}`));
  }
  return f;
}

export const ok = (answer) => answer.status >= 200 && answer.status < 300;
export const told = (answer) => `HTTP ${answer.status} ${JSON.stringify(answer.body)?.slice(0, 300)}`;

/** Has the coordinator read `path` successfully since the faulted call (the poll is retried, never lost)? */
export async function readAgainSince(cell, suffix) {
  const path = (c) => c.method === "GET" && c.path.endsWith(`/live_inputs/${cell.uid}${suffix}`);
  const later = (await callsSince(cell.since)).filter((c) => path(c) && c.status === 200 && Date.parse(c.time) > Date.parse(cell.faulted.time));
  return later.length > 0 ? [] : [finding("divergence", `no successful GET …/${cell.uid}${suffix} since the faulted one: the poll was lost`)];
}

// ── One cell ─────────────────────────────────────────────────────────────────────────────────────

const cells = []; // every cell, in order, with its findings (for the summary)

/** Waits until `check` finds nothing, and still nothing `stableMs` later; else returns the last findings. */
async function settle(cell, check) {
  const deadline = Date.now() + matrix.settleMs;
  let heldSince = null;
  for (;;) {
    const f = await check(cell);
    if (f.length === 0) {
      heldSince ??= Date.now();
      if (Date.now() - heldSince >= matrix.stableMs) return [];
    } else {
      heldSince = null;
      if (Date.now() >= deadline) return f;
    }
    await sleep(matrix.checkEveryMs);
  }
}

/**
 * `wait()` resolves once every cell that joined has arrived. Cells join synchronously when they start
 * (the row's cells start together), so a row filtered by --test-name-pattern waits only for its own.
 */
class Barrier {
  constructor() {
    this.joined = 0;
    this.arrived = 0;
    this.opened = new Promise((resolve) => (this.open = resolve));
  }
  join() {
    this.joined += 1;
  }
  arrive() {
    if (++this.arrived === this.joined) this.open();
  }
  wait() {
    return this.opened;
  }
}

/** An exclusive row: every cell set up, then one faulted call at a time (the lane), then every cell settled. */
export function exclusiveRow() {
  let lane = Promise.resolve();
  return {
    setUp: new Barrier(),
    acted: new Barrier(),
    inLane(fn) {
      const turn = lane.then(fn);
      lane = turn.catch(() => {});
      return turn;
    },
  };
}

export async function runCell(callName, kind, row = null) {
  const call = matrix.calls[callName];
  const cell = { call: callName, kind, streams: new Set(), target: `rtmp://127.0.0.1:9/live/${unique("key-")}`, findings: [], status: "setup" };
  cells.push(cell);
  row?.setUp.join();
  row?.acted.join();
  const t0 = Date.now();
  let arrived = { setUp: false, acted: false };
  const arrive = (name) => {
    if (row && !arrived[name]) row[name].arrive();
    arrived[name] = true;
  };
  try {
    cell.client = await newClient();
    await call.setup(cell);
    arrive("setUp");
    await row?.setUp.wait();
    const faulted = async () => {
      cell.since = Date.now() - 50;
      const rateLimitedBefore = kind === "429" ? (await budgetStats()).rateLimited : 0;
      const faultId = await addFault({ method: call.method, path: call.path(cell), count: 1, ...matrix.faults[kind] });
      cell.status = "running";
      cell.answer = await call.act(cell);
      // The faulted call was served (a delayed one: performed late, after the coordinator gave up on it).
      cell.faulted = await waitFor(
        `${callName} × ${kind}: the faulted call to be served`,
        async () => (await callsSince(cell.since)).find((c) => c.fault === faultId),
        { timeoutMs: matrix.lateMs + 12_000, intervalMs: 150 },
      ).catch(async (error) => {
        // What the coordinator answered and which calls it did make say why the faulted one never came.
        const made = (await callsSince(cell.since).catch(() => [])).filter((c) => !cell.uid || String(c.path).includes(cell.uid)).slice(0, 20).map((c) => `${c.method} ${c.path} → ${c.status}${c.fault ? ` (fault ${c.fault})` : ""}`);
        error.message += `\nanswered: ${JSON.stringify(cell.answer?.status)} ${JSON.stringify(cell.answer?.body)?.slice(0, 300)}\ncalls since: ${made.join("; ") || "none"}`;
        throw error;
      });
      await call.afterServed?.(cell);
      cell.until = Date.now();
      // Cloudflare's block passes; the coordinator holds every call back until then.
      if (kind === "429") await blockPassed(rateLimitedBefore);
    };
    await (row
      ? row.inLane(() =>
          faulted().catch(async (error) => {
            // A fault left unused would hit the next cell's call: in the lane it is the only one, so clear it.
            await http("DELETE", emu("/__emulator/faults")).catch(() => {});
            throw error;
          }),
        )
      : faulted());
    arrive("acted");
    await row?.acted.wait();
    cell.findings.push(...(await settle(cell, call.check)));
    if (call.afterSettled) cell.findings.push(...(await call.afterSettled(cell)));
    const evidence = cell.findings.length > 0 ? await evidenceOf(cell) : "";
    await cell.viewer?.close();
    cell.findings.push(...(await finalStop(cell)));
    cell.status = "done";
    cell.ms = Date.now() - t0;
    if (cell.findings.length > 0) {
      failed = true;
      assert.fail(`${callName} × ${kind}: ${cell.findings.map((x) => `${x.kind}: ${x.what}`).join("; ")}\n${evidence}`);
    }
  } catch (error) {
    failed = true;
    if (cell.status !== "done") cell.status = "error";
    arrive("setUp");
    arrive("acted");
    await cell.viewer?.close().catch(() => {});
    // Best effort, so one broken cell does not leave its streams to the end-of-file check.
    for (const streamId of cell.streams) await http("POST", coord(`/api/admin/streams/${streamId}/stop`), { headers: admin }).catch(() => {});
    throw error;
  }
}

/** What the owner needs to see for a failing cell: the answer, both sides, and Cloudflare's call log. */
async function evidenceOf(cell) {
  const lines = [`  client was told: ${cell.answer ? told(cell.answer) : "(poll: no client)"}`];
  const inputs = await emulatorInputs();
  const streams = new Set([...cell.streams, ...inputs.filter((i) => cell.fresh?.has(i.uid)).map((i) => i.meta?.streamId)]);
  for (const streamId of streams) {
    const sides = await bothSides(cell, streamId).catch((e) => ({ error: e.message }));
    lines.push(`  stream ${streamId}: ours ${JSON.stringify(sides.snap?.body && { status: sides.snap.body.status, hlsUrl: sides.snap.body.hlsUrl })}, outputs ${JSON.stringify(sides.outs?.body?.outputs ?? sides.outs?.body)}`);
    lines.push(`  Cloudflare: ${JSON.stringify((sides.inputs ?? []).map((i) => ({ uid: i.uid, outputs: i.outputs.map((o) => ({ uid: o.uid, url: `${o.url}/${o.streamKey}`, enabled: o.enabled })) })))}`);
  }
  const calls = cell.uid ? await callsAbout(cell.uid, cell.since) : await callsAbout(null, cell.since, cell.until);
  lines.push(`  Cloudflare calls about ${cell.uid ?? "the live-inputs collection, while this cell's fault was on"}: ${calls}`);
  return lines.join("\n");
}

/** A final stop of every stream of the cell leaves the emulator holding nothing for them. */
async function finalStop(cell) {
  const f = [];
  for (const streamId of cell.streams) {
    const res = await http("POST", coord(`/api/admin/streams/${streamId}/stop`), { headers: admin });
    if (res.status !== 200 && res.status !== 404) f.push(finding("wrong", `final stop of ${streamId}: ${told(res)}`));
  }
  const mine = (inputs) => inputs.filter((i) => cell.streams.has(i.meta?.streamId) || cell.fresh?.has(i.uid));
  try {
    await waitFor("the emulator to hold nothing for the cell", async () => mine(await emulatorInputs()).length === 0, { timeoutMs: matrix.settleMs, intervalMs: 300 });
  } catch {
    for (const i of mine(await emulatorInputs())) f.push(finding("orphan", `after the final stop, live input ${i.uid} of ${i.meta?.streamId} with ${i.outputs.length} outputs`));
  }
  return f;
}

/** A grid (calls × fault kinds, each cell `o/g/d/w` or `ok`) and one line of totals. */
export function summary(left) {
  const count = (cell, kind) => cell.findings.filter((f) => f.kind === kind).length;
  const total = (kind) => cells.reduce((n, c) => n + count(c, kind), 0);
  const mark = (cell) => {
    if (!cell) return "—";
    if (cell.status !== "done") return "ERR";
    const n = ["orphan", "ghost", "divergence", "wrong"].map((k) => count(cell, k));
    return n.every((x) => x === 0) ? "ok" : n.join("/");
  };
  const width = Math.max(...Object.keys(matrix.calls).map((c) => c.length));
  const lines = [`fault matrix (o/g/d/w = orphans/ghosts/divergences/wrong answers after settling)`];
  lines.push(`${"".padEnd(width)}  ${matrix.kinds.map((k) => k.padStart(17)).join(" ")}`);
  for (const callName of Object.keys(matrix.calls)) {
    const row = matrix.kinds.map((k) => mark(cells.find((c) => c.call === callName && c.kind === k)).padStart(17));
    lines.push(`${callName.padEnd(width)}  ${row.join(" ")}`);
  }
  const errors = cells.filter((c) => c.status !== "done").length;
  const exited = stack?.child.exitCode !== null && stack?.child.exitCode !== undefined;
  lines.push(
    `fault matrix vs npm start: ${cells.length} cells · ${total("orphan")} orphans · ${total("ghost")} ghosts · ` +
      `${total("divergence")} divergences · ${total("wrong")} wrong answers · ${errors} cells errored · ` +
      `${left.length} inputs left at the end · ${((Date.now() - startedAt) / 1000).toFixed(0)} s` +
      (exited ? ` · npm start EXITED mid-run (code ${stack.child.exitCode}; its output follows)` : ""),
  );
  return lines;
}
