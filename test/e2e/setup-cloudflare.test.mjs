// `npm run setup:cloudflare` (scripts/setup-cloudflare.ts) against the Node emulator: it configures the
// Notifications API idempotently (one webhook destination, one stream_live_notifications policy; a changed
// URL or secret is updated in place), says clearly what is wrong when it cannot, and the emulator's live-input
// webhooks then follow the policy to the Worker with its secret. A small receiver stands in for the Worker's
// webhook endpoint (same secret check, same answers). Needs no wrangler; run: `node --test test/e2e/`.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import http from "node:http";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { register } from "tsx/esm/api";
import { freePort, waitFor } from "./stack.mjs";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
register();
const { startEmulatorServer } = await import("../../emulator/server.ts");
const setup = await import("../../scripts/setup-cloudflare.ts");

const TOKEN = "setup-test-token";
const ACCOUNT = "setup-test-account";
const SECRET_A = "first-webhook-secret-0123456789";
const SECRET_B = "second-webhook-secret-9876543210";

/** The Worker's webhook endpoint, as far as Cloudflare can tell: the secret check and the answers. */
function startReceiver() {
  const receiver = { secret: SECRET_A, mode: "ok", requests: [], url: "" };
  const server = http.createServer((req, res) => {
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      const parsed = body ? JSON.parse(body) : null;
      receiver.requests.push({ path: req.url, auth: req.headers["cf-webhook-auth"] ?? null, body: parsed });
      const send = (status, json) => res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(json));
      if (receiver.mode === "disabled") return send(503, { error: "WEBHOOKS_DISABLED", message: "no secret" });
      if (receiver.mode === "broken") return send(500, { error: "INTERNAL_ERROR", message: "boom" });
      if (req.headers["cf-webhook-auth"] !== receiver.secret) return send(401, { error: "UNAUTHORIZED", message: "Invalid webhook secret" });
      send(200, parsed && !parsed.data ? { ok: true, test: true } : { ok: true });
    });
  });
  return new Promise((resolve) =>
    server.listen(0, "127.0.0.1", () => {
      receiver.url = `http://127.0.0.1:${server.address().port}`;
      receiver.close = () => new Promise((r) => server.close(r));
      resolve(receiver);
    }),
  );
}

let emulator;
let receiver;
let env;

before(async () => {
  emulator = await startEmulatorServer({ port: 0, rtmpPort: null, apiToken: TOKEN, accountId: ACCOUNT, ffmpeg: false });
  receiver = await startReceiver();
  env = {
    CLOUDFLARE_API_TOKEN: TOKEN,
    CLOUDFLARE_ACCOUNT_ID: ACCOUNT,
    CLOUDFLARE_API_BASE_URL: `${emulator.url}/client/v4`,
    WORKER_URL: receiver.url,
    WEBHOOK_SECRET: SECRET_A,
  };
});
after(async () => {
  await emulator?.close();
  await receiver?.close();
});

/** Runs the CLI's main() in this process; returns its exit code and what it printed. */
async function run(extraEnv = {}, args = []) {
  const out = [];
  const err = [];
  const code = await setup.main(args, { ...env, ...extraEnv }, (l) => out.push(l), (l) => err.push(l));
  return { code, out: out.join("\n"), err: err.join("\n") };
}

const state = async () => (await (await fetch(`${emulator.url}/__emulator/state`)).json()).alerting;
const writes = async (sinceMs) =>
  (await (await fetch(`${emulator.url}/__emulator/calls?since=${sinceMs}`)).json()).calls.filter((c) => c.method !== "GET" && c.path.includes("/alerting/"));
const api = (method, p, body) =>
  fetch(`${emulator.url}/client/v4/accounts/${ACCOUNT}/alerting/v3${p}`, {
    method,
    headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  }).then((r) => r.json());

function assertOk(result) {
  assert.equal(result.code, 0, `exit ${result.code}\n${result.out}\n${result.err}`);
}

describe("npm run setup:cloudflare against the emulator", () => {
  let first;

  test("the first run creates one webhook destination and one live-input policy", async () => {
    const result = await run();
    assertOk(result);
    assert.match(result.out, /webhook destination\s+created/);
    assert.match(result.out, /notification policy\s+created/);
    assert.match(result.out, /Done: 2 created, 0 updated, 0 kept, 0 deleted/);
    assert.doesNotMatch(result.out + result.err, new RegExp(SECRET_A), "the secret is never printed");
    first = await state();
    assert.equal(first.destinations.length, 1);
    assert.equal(first.policies.length, 1);
    const [destination] = first.destinations;
    const [policy] = first.policies;
    assert.equal(destination.url, `${receiver.url}/api/webhooks/cloudflare-stream`);
    assert.equal(destination.secret, SECRET_A);
    assert.match(destination.name, /^stream-coordinator webhook #[0-9a-f]{12}$/);
    assert.equal(policy.alert_type, "stream_live_notifications");
    assert.equal(policy.enabled, true);
    assert.deepEqual(policy.mechanisms, { webhooks: [{ id: destination.id }] });
    assert.deepEqual(policy.filters, { event_type: ["live_input.connected", "live_input.disconnected", "live_input.errored"] });
    assert.equal(first.liveInputWebhooks, "policies");
    // Our preflight and Cloudflare's own test message both reached the Worker, with the secret.
    const tests = receiver.requests.filter((r) => r.body && !r.body.data);
    assert.equal(tests.length, 2);
    assert.ok(tests.every((r) => r.auth === SECRET_A && r.path === "/api/webhooks/cloudflare-stream"));
  });

  test("a second run changes nothing: it only reads, and keeps both", async () => {
    const since = Date.now();
    const result = await run();
    assertOk(result);
    assert.match(result.out, /Done: 0 created, 0 updated, 2 kept, 0 deleted/);
    assert.deepEqual(await writes(since), []);
    assert.deepEqual(await state(), first);
  });

  test("--dry-run reports what would change and changes nothing", async () => {
    const since = Date.now();
    const result = await run({ WEBHOOK_SECRET: SECRET_B }, ["--dry-run", "--no-preflight"]);
    assertOk(result);
    assert.match(result.out, /webhook destination\s+would be updated.*new WEBHOOK_SECRET/);
    assert.match(result.out, /Dry run: 0 to be created, 1 to be updated, 1 kept/);
    assert.deepEqual(await writes(since), []);
    assert.deepEqual(await state(), first);
  });

  test("a new WEBHOOK_SECRET updates the destination in place; then it is kept again", async () => {
    receiver.secret = SECRET_B;
    const result = await run({ WEBHOOK_SECRET: SECRET_B });
    assertOk(result);
    assert.match(result.out, /webhook destination\s+updated.*new WEBHOOK_SECRET/);
    assert.match(result.out, /notification policy\s+kept/);
    const now = await state();
    assert.equal(now.destinations.length, 1);
    assert.equal(now.destinations[0].id, first.destinations[0].id);
    assert.equal(now.destinations[0].secret, SECRET_B);
    assert.notEqual(now.destinations[0].name, first.destinations[0].name);
    assert.deepEqual(now.policies, first.policies);
    assertOk(await run({ WEBHOOK_SECRET: SECRET_B }));
    assert.match((await run({ WEBHOOK_SECRET: SECRET_B })).out, /0 created, 0 updated, 2 kept/);
  });

  test("a new Worker URL updates the destination and the policy's description in place", async () => {
    const moved = `${receiver.url}/v2/`;
    const result = await run({ WEBHOOK_SECRET: SECRET_B, WORKER_URL: moved });
    assertOk(result);
    assert.match(result.out, /webhook destination\s+updated.*url/);
    assert.match(result.out, /notification policy\s+updated.*description/);
    const now = await state();
    assert.equal(now.destinations.length, 1);
    assert.equal(now.destinations[0].id, first.destinations[0].id);
    assert.equal(now.destinations[0].url, `${receiver.url}/v2/api/webhooks/cloudflare-stream`);
    assert.equal(now.policies.length, 1);
    assert.equal(now.policies[0].id, first.policies[0].id);
    // Back where it was, for the tests below.
    assertOk(await run({ WEBHOOK_SECRET: SECRET_B }));
  });

  test("live-input events then follow the policy to the Worker, with the secret and the policy's name", async () => {
    const input = await fetch(`${emulator.url}/client/v4/accounts/${ACCOUNT}/stream/live_inputs`, {
      method: "POST",
      headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
      body: "{}",
    }).then((r) => r.json());
    const uid = input.result.uid;
    const seen = receiver.requests.length;
    await fetch(`${emulator.url}/__emulator/live_inputs/${uid}/connect`, { method: "POST" });
    const delivered = await waitFor("the connected webhook at the Worker", () => receiver.requests.slice(seen).find((r) => r.body?.data?.input_id === uid));
    assert.equal(delivered.auth, SECRET_B);
    assert.equal(delivered.path, "/api/webhooks/cloudflare-stream");
    assert.equal(delivered.body.data.event_type, "live_input.connected");
    assert.equal(delivered.body.name, "stream-coordinator live inputs");
    assert.equal(delivered.body.alert_type, "stream_live_notifications");
  });

  test("duplicates of ours (an interrupted run, a copy) are deleted; someone else's policy is left alone", async () => {
    const extraDestination = await api("POST", "/destinations/webhooks", { name: "stream-coordinator webhook #000000000000", url: `${receiver.url}/old`, secret: SECRET_B });
    assert.ok(extraDestination.success, JSON.stringify(extraDestination));
    await api("POST", "/policies", {
      name: "stream-coordinator live inputs",
      alert_type: "stream_live_notifications",
      enabled: true,
      mechanisms: { webhooks: [{ id: extraDestination.result.id }] },
    });
    const theirs = await api("POST", "/policies", { name: "someone else's", alert_type: "stream_live_notifications", enabled: false, mechanisms: {} });
    const result = await run({ WEBHOOK_SECRET: SECRET_B });
    assertOk(result);
    assert.match(result.out, /notification policy\s+deleted.*duplicate/);
    assert.match(result.out, /webhook destination\s+deleted.*duplicate/);
    assert.match(result.out, /another live-input policy exists, left alone: "someone else's"/);
    const now = await state();
    assert.deepEqual(now.destinations.map((d) => d.id), [first.destinations[0].id]);
    assert.deepEqual(now.policies.map((p) => p.id).sort(), [first.policies[0].id, theirs.result.id].sort());
    await api("DELETE", `/policies/${theirs.result.id}`);
    assert.match((await run({ WEBHOOK_SECRET: SECRET_B })).out, /0 created, 0 updated, 2 kept, 0 deleted/);
  });

  test("a policy of ours that someone changed (disabled, an input filter, another destination) is put back", async () => {
    const policyId = first.policies[0].id;
    await api("PUT", `/policies/${policyId}`, { enabled: false, filters: { event_type: ["live_input.connected"], input_id: ["0123456789abcdef0123456789abcdef"] } });
    const result = await run({ WEBHOOK_SECRET: SECRET_B });
    assertOk(result);
    assert.match(result.out, /notification policy\s+updated.*was disabled.*events.*input filter removed/);
    const [policy] = (await state()).policies;
    assert.equal(policy.enabled, true);
    assert.deepEqual(policy.filters, { event_type: ["live_input.connected", "live_input.disconnected", "live_input.errored"] });
  });

  test("the npm script runs it (a real process, its exit code and output)", async () => {
    const child = spawn("npm", ["run", "--silent", "setup:cloudflare"], { cwd: root, env: { ...process.env, ...env, WEBHOOK_SECRET: SECRET_B }, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (c) => (output += c));
    child.stderr.on("data", (c) => (output += c));
    const code = await new Promise((resolve) => child.on("exit", resolve));
    assert.equal(code, 0, output);
    assert.match(output, /0 created, 0 updated, 2 kept, 0 deleted/);
  });
});

describe("npm run setup:cloudflare says what is wrong", () => {
  test("missing settings: exit 2, naming every one", async () => {
    const result = await run({ CLOUDFLARE_API_TOKEN: "", WORKER_URL: "", WEBHOOK_SECRET: "" });
    assert.equal(result.code, 2);
    assert.match(result.err, /missing CLOUDFLARE_API_TOKEN, WORKER_URL, WEBHOOK_SECRET/);
  });

  test("a short secret, a bad URL or an unknown flag: exit 2", async () => {
    assert.match((await run({ WEBHOOK_SECRET: "short" })).err, /at least 16 characters/);
    assert.equal((await run({ WEBHOOK_SECRET: "short" })).code, 2);
    const badUrl = await run({ WORKER_URL: "not a url" });
    assert.equal(badUrl.code, 2);
    assert.match(badUrl.err, /WORKER_URL is not an absolute URL/);
    assert.match((await run({ WORKER_URL: `${receiver.url}/?x=1` })).err, /without a query/);
    assert.equal((await run({}, ["--frobnicate"])).code, 2);
  });

  test("a token without the permission (403): exit 1, naming the permission and the account", async () => {
    const result = await run({ CLOUDFLARE_API_TOKEN: "a-token-without-notifications", WEBHOOK_SECRET: SECRET_B });
    assert.equal(result.code, 1);
    assert.match(result.err, /Cloudflare refused to list webhook destinations: HTTP 403/);
    assert.match(result.err, /Account · Notifications · Edit/);
    assert.match(result.err, new RegExp(ACCOUNT));
  });

  test("the Worker rejects our secret, or has none, or is not there: the preflight says so before anything changes", async () => {
    const since = Date.now();
    receiver.secret = "the-workers-other-secret-000";
    const rejected = await run({ WEBHOOK_SECRET: SECRET_B });
    assert.equal(rejected.code, 1);
    assert.match(rejected.err, /rejects this WEBHOOK_SECRET \(401 UNAUTHORIZED\).*wrangler secret put WEBHOOK_SECRET/);
    receiver.mode = "disabled";
    assert.match((await run({ WEBHOOK_SECRET: SECRET_B })).err, /has no WEBHOOK_SECRET \(503 WEBHOOKS_DISABLED\)/);
    receiver.mode = "ok";
    const gone = await run({ WEBHOOK_SECRET: SECRET_B, WORKER_URL: `http://127.0.0.1:${await freePort()}` });
    assert.equal(gone.code, 1);
    assert.match(gone.err, /The Worker is not reachable at .*deploy it first/);
    assert.deepEqual(await writes(since), []);
  });

  test("without the preflight, Cloudflare's own test of the destination fails (400), and the message says why", async () => {
    receiver.secret = "the-workers-other-secret-000";
    const result = await run({ WEBHOOK_SECRET: SECRET_A }, ["--no-preflight"]);
    assert.equal(result.code, 1);
    assert.match(result.err, /Cloudflare refused to update the webhook destination: HTTP 400/);
    assert.match(result.err, /test message to .* deploy the Worker first/);
    // Nothing half-done: the destination still has the secret of the last good run.
    assert.equal((await state()).destinations[0].secret, SECRET_B);
    receiver.secret = SECRET_B;
  });

  test("the API unreachable: exit 1, naming the address", async () => {
    const base = `http://127.0.0.1:${await freePort()}/client/v4`;
    const result = await run({ CLOUDFLARE_API_BASE_URL: base, WEBHOOK_SECRET: SECRET_B });
    assert.equal(result.code, 1);
    assert.match(result.err, new RegExp(`the Cloudflare API at ${base.replace(/[.]/g, "\\.")} is unreachable`));
  });
});
