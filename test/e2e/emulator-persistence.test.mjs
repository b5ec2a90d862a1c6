// The Node emulator keeps its state across restarts (EMULATOR_STATE_DIR): run `emulator/server.ts` as
// `npm start` does, kill it with SIGKILL, start it again on the same directory. Run: `node --test test/e2e/`.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { freePort, http as call, sleep, waitFor } from "./stack.mjs";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const TOKEN = "local-dev-token";
const auth = { authorization: `Bearer ${TOKEN}` };

const dirs = [];
const cleanups = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function stateDir() {
  const dir = mkdtempSync(path.join(tmpdir(), "emulator-state-"));
  dirs.push(dir);
  return dir;
}

/** `node --import tsx emulator/server.ts` (one process, so SIGKILL really kills the emulator). */
async function startEmulator(dir, ports, webhookUrl = "") {
  const child = spawn(process.execPath, ["--import", "tsx", "emulator/server.ts"], {
    cwd: root,
    env: {
      ...process.env,
      STREAM_EMULATOR_PORT: String(ports.http),
      RTMP_PORT: String(ports.rtmp),
      SRT_PORT: String(ports.srt),
      EMULATOR_STATE_DIR: dir,
      STREAM_WEBHOOK_URL: webhookUrl,
      STREAM_WEBHOOK_SECRET: "hook-secret",
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout.on("data", (c) => (output += c));
  child.stderr.on("data", (c) => (output += c));
  const exited = new Promise((resolve) => child.on("exit", resolve));
  const base = `http://127.0.0.1:${ports.http}`;
  const kill = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    await exited;
  };
  cleanups.push(kill);
  await waitFor(
    "the emulator to answer /healthz",
    async () => {
      if (child.exitCode !== null) throw new Error(`emulator exited (${child.exitCode}): ${output}`);
      return (await fetch(`${base}/healthz`)).ok;
    },
    { timeoutMs: 30_000, intervalMs: 100 },
  );
  const api = `${base}/client/v4/accounts/local-account/stream/live_inputs`;
  return {
    base,
    api,
    output: () => output,
    kill,
    state: async () => (await call("GET", `${base}/__emulator/state`)).body,
    call: (method, url, body, headers = {}) => call(method, url, { body, headers: { ...auth, ...headers } }),
  };
}

async function ports() {
  // SRT too: the live inputs' srt URLs carry its port, so a restart must come back on the same one.
  return { http: await freePort(), rtmp: await freePort(), srt: await freePort() };
}

/** A webhook receiver that records each delivery; starts listening only when asked. */
function webhookReceiver(port) {
  const received = [];
  const server = http.createServer((req, res) => {
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      received.push({ secret: req.headers["cf-webhook-auth"], body: JSON.parse(body) });
      res.end("ok");
    });
  });
  cleanups.push(() => new Promise((resolve) => server.close(() => resolve())));
  return { received, url: `http://127.0.0.1:${port}/hook`, listen: () => new Promise((resolve) => server.listen(port, "127.0.0.1", resolve)) };
}

describe("emulator state across restarts (EMULATOR_STATE_DIR)", { timeout: 90_000 }, () => {
  test("inputs, outputs, keys, meta and config survive SIGKILL; a connected input comes back disconnected and is webhooked once", async () => {
    const dir = stateDir();
    const p = await ports();
    const hook = webhookReceiver(await freePort());
    const first = await startEmulator(dir, p, hook.url);

    const live = (await first.call("POST", first.api, { meta: { streamId: "s-live", managedBy: "e2e" } }, { "idempotency-key": "k-live" })).body.result;
    const idle = (await first.call("POST", first.api, { meta: { streamId: "s-idle" } })).body.result;
    const out = await first.call("POST", `${first.api}/${live.uid}/outputs`, { url: "rtmp://restream.example/live", streamKey: "out-key" });
    assert.equal(out.status, 200, JSON.stringify(out.body));
    const disabled = await first.call("POST", `${first.api}/${idle.uid}/outputs`, { url: "srt://restream.example:9000", streamKey: "srt-key", enabled: false });
    assert.equal(disabled.status, 200);
    assert.equal((await call("POST", `${first.base}/__emulator/live_inputs/${live.uid}/connect`)).status, 200);
    assert.equal((await call("POST", `${first.base}/__emulator/config`, { body: { maxLiveInputs: 5 } })).status, 200);
    const before = await first.state();
    assert.equal(before.inputs.find((i) => i.uid === live.uid).connected, true);
    // Killed right after the last answer: an acknowledged change is already on disk.
    await first.kill();

    const second = await startEmulator(dir, p, hook.url);
    assert.match(second.output(), /restored 2 live inputs, 2 outputs; 1 were connected and are now disconnected/);
    const restored = await second.state();
    const strip = (input) => ({ ...input, status: undefined, connected: undefined, outputs: input.outputs.map((o) => ({ ...o, relay: undefined })) });
    assert.deepEqual(restored.inputs.map(strip), before.inputs.map(strip), "uids, keys, meta, created, outputs are as they were");
    const liveAfter = restored.inputs.find((i) => i.uid === live.uid);
    assert.equal(liveAfter.connected, false);
    assert.deepEqual(
      { state: liveAfter.status.current.state, reason: liveAfter.status.current.reason, history: liveAfter.status.history.map((h) => h.state) },
      { state: "disconnected", reason: "emulator_restart", history: ["connected"] },
    );
    assert.deepEqual(liveAfter.outputs.map((o) => o.relay.state), ["idle"], "relays did not survive the restart");
    assert.equal(restored.inputs.find((i) => i.uid === idle.uid).status, null, "a never-connected input stays so");
    // The API answers from the restored state; the idempotency key and the config override carried over.
    const got = await second.call("GET", `${second.api}/${live.uid}`);
    assert.equal(got.status, 200);
    assert.deepEqual(got.body.result.meta, { streamId: "s-live", managedBy: "e2e" });
    assert.equal((await second.call("POST", second.api, {}, { "idempotency-key": "k-live" })).body.result.uid, live.uid);
    assert.equal((await call("GET", `${second.base}/__emulator/config`)).body.maxLiveInputs, 5);
    const calls = (await call("GET", `${second.base}/__emulator/calls`)).body.calls;
    assert.ok(calls.filter((c) => c.method === "POST").length >= 4, `the call log carried over: ${JSON.stringify(calls)}`);

    // The receiver comes up only now (as wrangler dev does after the emulator): the announcement is retried.
    await sleep(1_500);
    await hook.listen();
    await waitFor("the live_input.disconnected webhook", () => hook.received.length >= 1, { timeoutMs: 10_000 });
    await sleep(1_500); // and it is sent once
    assert.deepEqual(
      hook.received.map((r) => [r.secret, r.body.data.event_type, r.body.data.input_id]),
      [["hook-secret", "live_input.disconnected", live.uid]],
    );

    // A clean stop and a third start: nothing is announced again, deletes are durable too.
    assert.equal((await second.call("DELETE", `${second.api}/${idle.uid}`)).status, 200);
    await second.kill();
    const third = await startEmulator(dir, p, hook.url);
    assert.deepEqual((await third.state()).inputs.map((i) => [i.uid, i.connected]), [[live.uid, false]]);
    await sleep(1_500);
    assert.equal(hook.received.length, 1, "no second announcement for an input already disconnected");
    await third.kill();
  });

  test("a corrupt state file is moved aside with one log line, and the emulator starts empty", async () => {
    const dir = stateDir();
    writeFileSync(path.join(dir, "emulator-state.json"), '{"version":1,"inputs":[{"uid":');
    const p = await ports();
    const emu = await startEmulator(dir, p);
    const lines = emu.output().split("\n").filter((l) => /moved it aside/.test(l));
    assert.equal(lines.length, 1, emu.output());
    assert.match(lines[0], /emulator-state\.json is not valid JSON .*moved it aside to .*emulator-state\.json\.corrupt-.* and starting empty/);
    const files = readdirSync(dir);
    assert.equal(files.filter((f) => /^emulator-state\.json\.corrupt-\d{4}-\d\d-\d\dT/.test(f)).length, 1, files.join(", "));
    assert.deepEqual((await emu.state()).inputs, []);
    // And it works and persists from there.
    const created = await emu.call("POST", emu.api, { meta: { n: 1 } });
    assert.equal(created.status, 200);
    await emu.kill();
    const again = await startEmulator(dir, p);
    assert.deepEqual((await again.state()).inputs.map((i) => i.uid), [created.body.result.uid]);
    await again.kill();
  });

  test("a state file of the wrong shape is moved aside too", async () => {
    const dir = stateDir();
    writeFileSync(path.join(dir, "emulator-state.json"), JSON.stringify({ version: 1, inputs: "nope" }));
    const emu = await startEmulator(dir, await ports());
    assert.match(emu.output(), /is not an emulator state file of version 1 .*moved it aside/);
    assert.deepEqual((await emu.state()).inputs, []);
    await emu.kill();
  });
});
