// The typed client (client/) against the `npm start` stack: every REST call with its typed errors, the
// idempotent output add (and its retry with the same key after a lost answer), the viewer socket (async
// iteration, tickets, terminal closes), then one coordinator restart (SIGKILL of the whole group, started
// again on the same state) that a viewer of this process and examples/walkthrough.mjs, run as a child
// process, both ride out on their own. Run: `node --test test/e2e/client.test.mjs`.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import http from "node:http";
import net from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { after, before, describe, test } from "node:test";
import WebSocket from "ws";
import { buildClient } from "../../client/build.mjs";
import { ADMIN_TOKEN, bound, ffmpegAvailable, freePort, publishTestPattern, sleep, startStack, unique, waitFor } from "./stack.mjs";

// Build client/dist from client/src first, so the test never runs a stale build.
await buildClient();
const { AdminClient, AppClient, DeviceClient, Viewer, connectViewer, ApiError, NetworkError, TimeoutError, CoordinatorError, isApiError, isClientError } = await import(
  "../../client/dist/index.js"
);

// Every exchange is checked against the stack's own /openapi.json and /asyncapi.json, as stack.mjs's
// http() and openSocket() are (spec-check.mjs), through the client's `fetch` and `WebSocket` options.
const specCheck = await import("./spec-check.mjs").catch(() => null);
const sockets = []; // socketCheck() of every socket opened, to look for violations after each test

/** The platform's fetch, with every coordinator answer checked against the served spec. */
async function checkedFetch(url, init) {
  const res = await fetch(url, init);
  if (specCheck) {
    const text = await res.clone().text();
    let body = text;
    try {
      body = text ? JSON.parse(text) : null;
    } catch {
      // not JSON: the check reports it
    }
    await specCheck.checkExchange({ method: init.method, url, headers: init.headers, body: init.body, status: res.status, responseHeaders: res.headers, responseBody: body });
  }
  return res;
}

/** The `ws` package's WebSocket, with every frame either way checked against the served spec. */
class CheckedWebSocket extends WebSocket {
  constructor(url, options) {
    super(url, options);
    if (!specCheck) return;
    const spec = specCheck.socketCheck(url, options?.headers ?? {});
    sockets.push(spec);
    this.on("message", (data) => {
      try {
        spec.received(JSON.parse(String(data)));
      } catch {
        spec.received({ type: "<non-json>", raw: String(data) });
      }
    });
    const send = this.send.bind(this);
    this.send = (data, ...rest) => {
      spec.sent(JSON.parse(data));
      return send(data, ...rest);
    };
  }
}

function assertNoSpecViolation() {
  for (const spec of sockets.splice(0)) if (spec.violation()) throw spec.violation();
}

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const HAVE_FFMPEG = ffmpegAvailable();
// undici's WebSocket (installed with miniflare) stands in for a browser's: WHATWG events, no upgrade status.
const PlatformWebSocket = (await import("undici").catch(() => null))?.WebSocket;
const NO_UNDICI = "undici is not installed: no WHATWG WebSocket in Node 20 to stand in for a browser's";
const NO_FFMPEG = "ffmpeg is not installed: the go-live part needs it (CI installs it; apt-get install ffmpeg)";
const ENV = { STREAM_STARTS_PER_MINUTE: "200", OUTPUTS_POLL_SECONDS: "5" };
/** The viewers of this file back off at most this long, so the reconnect after the restart is measured quickly. */
const MAX_DELAY_MS = 2_000;

let stack;
let firstStack;
let failed = false;
const guarded = (fn) => async (t) => {
  try {
    await fn(t);
    assertNoSpecViolation();
  } catch (error) {
    failed = true;
    throw error;
  }
};

let admin;
const newAdmin = (options = {}) => new AdminClient({ baseUrl: stack.coordinator, adminToken: ADMIN_TOKEN, fetch: checkedFetch, ...options });
const appClient = (creds, options = {}) =>
  new AppClient({ baseUrl: stack.coordinator, apiKey: creds.apiKey, packageName: creds.packageName, WebSocket: CheckedWebSocket, fetch: checkedFetch, ...options });
const deviceClient = (deviceToken) => new DeviceClient({ baseUrl: stack.coordinator, deviceToken, fetch: checkedFetch });

async function newApp(prefix = "com.e2e.client") {
  const creds = await admin.registerApp(unique(`${prefix}.`).toLowerCase());
  return { creds, app: appClient(creds) };
}

/** Starts (or joins) `userId`'s stream as `app`, with a grant the admin mints for it. */
async function start(app, userId, body = {}) {
  const { token } = await admin.mintUserGrant({ userId, packageName: app.packageName });
  return app.startStream({ userId, ...body }, { grant: token });
}

/** Asserts that `promise` rejects with an ApiError of this status and code; returns the error. */
async function rejectsWith(promise, status, code) {
  const error = await promise.then(
    (value) => assert.fail(`expected ${status} ${code}, got ${JSON.stringify(value)}`),
    (e) => e,
  );
  assert.ok(error instanceof ApiError, `not an ApiError: ${error?.stack ?? error}`);
  assert.ok(isClientError(error) && error instanceof CoordinatorError);
  assert.equal(error.kind, "api");
  assert.equal(error.status, status, error.message);
  assert.equal(error.code, code, error.message);
  assert.ok(isApiError(error, code));
  assert.equal(typeof error.message, "string");
  return error;
}

/** A fetch that records each request's method, path and headers. */
function recordingFetch(log, { loseFirstAnswerOf } = {}) {
  let lost = false;
  return async (url, init) => {
    log.push({ method: init.method, path: new URL(url).pathname, headers: { ...init.headers } });
    const res = await checkedFetch(url, init);
    if (loseFirstAnswerOf && !lost && loseFirstAnswerOf(init.method, new URL(url).pathname)) {
      lost = true;
      await res.arrayBuffer();
      throw new TypeError("fetch failed (answer lost on purpose, after the server acted)");
    }
    return res;
  };
}

/** A viewer whose events are recorded with their times. */
function watched(app, streamId, options = {}) {
  const viewer = app.viewer(streamId, { reconnect: { maxDelayMs: MAX_DELAY_MS }, ...options });
  const events = [];
  for (const type of ["open", "reconnecting", "status", "close"]) viewer.on(type, (value) => events.push({ type, at: Date.now(), value }));
  return { viewer, events };
}

const closeViewers = [];

// ── The reconnect policy, on a scripted WebSocket (no stack) ────────────────────────────────────────

/** A WHATWG-style WebSocket whose connections follow `FakeSocket.script`: "fail" closes before open (1006), "open" opens and sends a status. */
class FakeSocket {
  static script = [];
  static opened = [];
  readyState = 0;
  listeners = new Map();
  constructor(url) {
    this.url = url;
    const action = FakeSocket.script.shift() ?? "open";
    setTimeout(() => {
      if (this.readyState !== 0) return;
      if (action === "fail") return this.end(1006);
      this.readyState = 1;
      FakeSocket.opened.push(this);
      this.fire("open", {});
      this.fire("message", { data: JSON.stringify({ type: "managed_stream_status", status: "preparing", streamId: "S", message: "m", outputs: [], viewers: 1, timestamp: new Date().toISOString() }) });
    }, 2);
  }
  addEventListener(type, fn) {
    if (!this.listeners.has(type)) this.listeners.set(type, []);
    this.listeners.get(type).push(fn);
  }
  fire(type, event) {
    for (const fn of this.listeners.get(type) ?? []) fn(event);
  }
  send() {} // never answers pings
  close(code = 1005) {
    if (this.readyState === 3) return;
    setTimeout(() => this.end(code), 1);
  }
  end(code) {
    this.readyState = 3;
    this.fire("close", { code, reason: "" });
  }
}

const fakeHost = { baseUrl: "http://fake", authHeaders: {}, getStream: async () => ({ status: "preparing", message: "running" }), createTicket: async () => ({ ticket: "tk_x" }), leaveStream: async () => ({}) };

function scripted(script, options) {
  FakeSocket.script = [...script];
  FakeSocket.opened = [];
  const viewer = new Viewer(fakeHost, "S", { WebSocket: FakeSocket, auth: "headers", pingIntervalMs: 0, ...options });
  const delays = [];
  viewer.on("reconnecting", ({ delayMs }) => delays.push(delayMs));
  return { viewer, delays };
}

describe("viewer reconnect policy (scripted WebSocket, no stack)", () => {
  test("full jitter under a doubling, capped ceiling; the backoff resets after a stable connection", async (t) => {
    t.mock.method(Math, "random", () => 0.999);
    const { viewer, delays } = scripted(["fail", "fail", "fail", "fail", "fail", "open"], { reconnect: { initialDelayMs: 10, maxDelayMs: 40, stableAfterMs: 60 } });
    await viewer.ready({ timeoutMs: 5_000 });
    assert.deepEqual(delays, [10, 20, 40, 40, 40], "ceilings 10, 20, 40 (cap), 40, 40: the delay is just under each");
    await sleep(100); // past stableAfterMs
    t.mock.method(Math, "random", () => 0.5);
    FakeSocket.opened.at(-1).end(1006); // the connection drops
    await viewer.ready({ timeoutMs: 5_000 });
    assert.deepEqual(delays.slice(5), [5], "after a stable connection the first retry is drawn from [0, initialDelayMs) again");
    assert.equal((await viewer.close()).reason, "closed");
  });

  test("maxAttempts failed attempts in a row end it (gave_up); reconnect: false ends at the first close", async () => {
    const { viewer, delays } = scripted(["fail", "fail", "fail", "fail", "fail"], { reconnect: { initialDelayMs: 1, maxDelayMs: 2, maxAttempts: 3 } });
    const closed = await viewer.closed;
    assert.equal(closed.reason, "gave_up");
    assert.equal(delays.length, 3);
    await assert.rejects(viewer.waitFor(() => true), /viewer closed \(gave_up/);

    const once = scripted(["open"], { reconnect: false });
    await once.viewer.ready({ timeoutMs: 5_000 });
    FakeSocket.opened.at(-1).end(1006);
    assert.equal((await once.viewer.closed).reason, "gave_up");
  });

  test("a dead connection (no frame after a ping) is dropped and reconnected", async () => {
    const { viewer } = scripted(["open", "open"], { pingIntervalMs: 20, pongTimeoutMs: 20, reconnect: { initialDelayMs: 1, maxDelayMs: 2 } });
    const opens = [];
    viewer.on("open", (e) => opens.push(e));
    await waitFor("a reconnect after the missed pong", () => opens.length >= 2, { timeoutMs: 5_000, intervalMs: 10 });
    assert.equal(opens[1].reconnected, true);
    await viewer.close();
  });
});

describe("typed client (client/) against npm start", { timeout: 300_000 }, () => {
  before(async () => {
    stack = firstStack = await startStack(ENV);
    admin = newAdmin();
  });

  after(async () => {
    for (const viewer of closeViewers) await viewer.close().catch(() => {});
    if (failed) {
      if (firstStack !== stack) console.log(`--- npm start output before the restart ---\n${firstStack.output()}\n--- end ---`);
      console.log(`--- npm start output ---\n${stack?.output()}\n--- end ---`);
    }
    await stack?.stop();
  });

  test(
    "admin calls, and their errors as typed ApiErrors",
    guarded(async () => {
      assert.deepEqual(await admin.health(), { ok: true });
      assert.equal((await admin.openApi()).openapi?.startsWith("3.1"), true);
      assert.equal(typeof (await admin.asyncApi()).asyncapi, "string");
      const stats = await admin.stats();
      assert.equal(typeof stats, "object");
      await rejectsWith(newAdmin({ adminToken: "wrong" }).stats(), 401, "UNAUTHORIZED");
      const packageName = unique("com.e2e.client.admin.").toLowerCase();
      const creds = await admin.registerApp(packageName);
      assert.equal(creds.packageName, packageName);
      assert.match(creds.apiKey, /^sc_/);
      await rejectsWith(admin.registerApp(packageName), 409, "APP_EXISTS");
      await rejectsWith(admin.registerApp("x"), 400, "INVALID_REQUEST");
      const rotated = await admin.rotateKey(packageName);
      assert.notEqual(rotated.apiKey, creds.apiKey);
      await rejectsWith(admin.rotateKey("com.e2e.nobody.here"), 404, "APP_NOT_FOUND");

      const device = await admin.mintDeviceToken({ userId: "user-client-admin", ttlSeconds: 600 });
      assert.equal(device.userId, "user-client-admin");
      assert.ok(Date.parse(device.expiresAt) > Date.now());
      await rejectsWith(admin.mintDeviceToken({ userId: "user-client-admin", ttlSeconds: 1 }), 400, "INVALID_REQUEST");
      const grant = await admin.mintUserGrant({ userId: "user-client-admin", packageName });
      assert.equal(grant.packageName, packageName);
      await rejectsWith(admin.stopStream("A".repeat(21)), 404, "STREAM_NOT_FOUND");

      await rejectsWith(newAdmin({ adminToken: "wrong" }).registerApp("com.e2e.never"), 401, "UNAUTHORIZED");
      assert.deepEqual(await admin.deleteApp(packageName), { success: true, packageName });
      await rejectsWith(admin.deleteApp(packageName), 404, "APP_NOT_FOUND");
    }),
  );

  test(
    "app calls: start/join, snapshot, tickets, outputs, leave; errors typed per route; device stream",
    guarded(async () => {
      const { creds, app } = await newApp();
      const userId = unique("user-client-");
      // Grants are required: none → 403 USER_NOT_GRANTED; a grant for another user → the same.
      await rejectsWith(app.startStream({ userId }), 403, "USER_NOT_GRANTED");
      const other = await admin.mintUserGrant({ userId: "someone-else", packageName: creds.packageName });
      await rejectsWith(app.startStream({ userId }, { grant: other.token }), 403, "USER_NOT_GRANTED");
      await rejectsWith(app.startStream({ userId: "" }, { grant: other.token }), 400, "INVALID_REQUEST");

      const created = await start(app, userId);
      assert.equal(created.created, true);
      assert.match(created.streamId, /^[A-Za-z0-9_-]{21}$/);
      assert.ok(["initializing", "preparing"].includes(created.status), created.status);
      const joined = await start(app, userId);
      assert.equal(joined.created, false);
      assert.equal(joined.streamId, created.streamId);
      const { streamId } = created;

      const snap = await app.getStream(streamId);
      assert.equal(snap.streamId, streamId);
      assert.equal(snap.ingest, "idle");
      await rejectsWith(app.getStream("not-a-stream-id"), 404, "STREAM_NOT_FOUND");
      await rejectsWith(app.getStream("B".repeat(21)), 404, "STREAM_NOT_FOUND");
      await rejectsWith(appClient({ ...creds, apiKey: "sc_wrong" }).getStream(streamId), 401, "UNAUTHORIZED");

      const ticket = await app.createTicket(streamId);
      assert.match(ticket.ticket, /^tk_/);

      // The lists (app: the streams it joined; admin: every running stream), paged.
      const mine = await waitFor("the stream in the app's list", async () => {
        const page = await app.listStreams({ limit: 5 });
        return page.streams.some((x) => x.streamId === streamId) && page;
      });
      assert.equal(mine.streams.find((x) => x.streamId === streamId).userId, userId);
      const all = await waitFor("the stream in the admin's list", async () => {
        for (let cursor = null, pages = 0; pages < 20; pages++) {
          const page = await admin.listStreams({ cursor, limit: 50 });
          const found = page.streams.find((x) => x.streamId === streamId);
          if (found) return found;
          if (!(cursor = page.nextCursor)) return null;
        }
        return null;
      });
      assert.deepEqual(all.participants, [creds.packageName]);
      await rejectsWith(app.listStreams({ limit: 0 }), 400, "INVALID_REQUEST");
      await rejectsWith(admin.listStreams({ limit: 51 }), 400, "INVALID_REQUEST");

      // An app that never joined: not a participant, so not a viewer either.
      const stranger = (await newApp("com.e2e.client.stranger")).app;
      await rejectsWith(stranger.getStream(streamId), 404, "STREAM_NOT_FOUND");
      await rejectsWith(stranger.createTicket(streamId), 404, "STREAM_NOT_FOUND");
      await rejectsWith(stranger.listOutputs(streamId), 403, "NOT_A_VIEWER");
      await rejectsWith(stranger.addOutput(streamId, { url: "rtmp://127.0.0.1:9/live/stranger" }), 403, "NOT_A_VIEWER");

      // Outputs: validation, caps, duplicates (the join hold counts as viewing).
      await rejectsWith(app.addOutput(streamId, { url: "http://example.com/live/key" }), 400, "INVALID_URL");
      await rejectsWith(app.addOutput(streamId, { url: "rtmp://127.0.0.1:9/live/k", name: "n".repeat(101) }), 400, "INVALID_REQUEST");
      await rejectsWith(app.addOutput(streamId, { url: "rtmp://127.0.0.1:9/live/k" }, { idempotencyKey: "k".repeat(129) }), 400, "INVALID_REQUEST");
      await rejectsWith(app.addOutput("C".repeat(21), { url: "rtmp://127.0.0.1:9/live/k" }), 404, "STREAM_NOT_FOUND");

      const sent = [];
      const recording = appClient(creds, { fetch: recordingFetch(sent) });
      const first = await recording.addOutput(streamId, { url: "rtmp://127.0.0.1:9/live/first", name: "First" });
      assert.equal(first.success, true);
      assert.match(sent.at(-1).headers["idempotency-key"], /^[0-9a-f-]{36}$/, "an Idempotency-Key by default");
      const keyA = sent.at(-1).headers["idempotency-key"];
      await recording.addOutput(streamId, { url: "rtmp://127.0.0.1:9/live/second" });
      assert.notEqual(sent.at(-1).headers["idempotency-key"], keyA, "a fresh key per call");
      await recording.addOutput(streamId, { url: "rtmp://127.0.0.1:9/live/nokey" }, { idempotencyKey: false });
      assert.equal(sent.at(-1).headers["idempotency-key"], undefined);
      await rejectsWith(app.addOutput(streamId, { url: "RTMP://127.0.0.1:9/live/first/" }), 409, "DUPLICATE_URL");

      // The same key: the same output, created once; another URL with it: 422.
      const again = await app.addOutput(streamId, { url: "rtmp://127.0.0.1:9/live/first", name: "First" }, { idempotencyKey: keyA });
      assert.equal(again.outputId, first.outputId);
      await rejectsWith(app.addOutput(streamId, { url: "rtmp://127.0.0.1:9/live/other" }, { idempotencyKey: keyA }), 422, "IDEMPOTENCY_KEY_REUSED");

      // A lost answer (the add happened): the client retries with the same key and gets the same output.
      const lossy = [];
      const retried = await appClient(creds, { fetch: recordingFetch(lossy, { loseFirstAnswerOf: (m, p) => m === "POST" && p.endsWith("/outputs") }) }).addOutput(streamId, {
        url: "rtmp://127.0.0.1:9/live/lost-answer",
        name: "Lost answer",
      });
      assert.equal(lossy.length, 2, "one retry");
      assert.equal(lossy[0].headers["idempotency-key"], lossy[1].headers["idempotency-key"], "the retry carries the same key");
      const list = await app.listOutputs(streamId);
      assert.equal(list.streamId, streamId);
      assert.equal(list.maxPerStream, 10);
      assert.equal(list.outputs.filter((o) => o.url === "rtmp://127.0.0.1:9/live/lost-answer").length, 1, "added once");
      assert.equal(list.outputs.find((o) => o.url.endsWith("lost-answer")).outputId, retried.outputId);
      assert.equal(list.total, 4);

      // Cap: 10 per stream → 409 MAX_OUTPUTS_REACHED.
      for (let i = list.total; i < 10; i++) await app.addOutput(streamId, { url: `rtmp://127.0.0.1:9/live/fill-${i}` });
      await rejectsWith(app.addOutput(streamId, { url: "rtmp://127.0.0.1:9/live/eleventh" }), 409, "MAX_OUTPUTS_REACHED");

      // PATCH / DELETE: owner only.
      assert.deepEqual(await app.setOutputEnabled(streamId, first.outputId, false), { success: true, message: "Output disabled" });
      await rejectsWith(app.setOutputEnabled(streamId, "nope", true), 404, "OUTPUT_NOT_FOUND");
      const partner = (await newApp("com.e2e.client.partner")).app;
      await start(partner, userId);
      await rejectsWith(partner.removeOutput(streamId, first.outputId), 403, "NOT_AUTHORIZED");
      await rejectsWith(partner.setOutputEnabled(streamId, first.outputId, true), 403, "NOT_AUTHORIZED");
      const removed = await app.removeOutput(streamId, first.outputId);
      assert.equal(removed.success, true);
      assert.equal(typeof removed.pending, "boolean");
      await rejectsWith(app.removeOutput(streamId, first.outputId), 404, "OUTPUT_NOT_FOUND");

      // The device: its stream with ingest credentials.
      const { token } = await admin.mintDeviceToken({ userId });
      const info = await deviceClient(token).getStream();
      assert.equal(info.streamId, streamId);
      assert.match(info.start?.rtmpUrl ?? "", /^rtmps?:\/\//);
      await rejectsWith(deviceClient("nope").getStream(), 401, "UNAUTHORIZED");
      const lonely = await admin.mintDeviceToken({ userId: unique("user-client-nostream-") });
      await rejectsWith(deviceClient(lonely.token).getStream(), 404, "NO_ACTIVE_STREAM");

      // Leave, stop; a ticket for a stopped stream: 409 STREAM_ENDED.
      const left = await partner.leaveStream(streamId);
      assert.equal(left.streamId, streamId);
      const stopped = await admin.stopStream(streamId);
      assert.equal(stopped.status, "stopped");
      await rejectsWith(app.createTicket(streamId), 409, "STREAM_ENDED");
    }),
  );

  test(
    "network failures, timeouts and 503 + Retry-After are their own kinds; retries back off",
    guarded(async () => {
      const closedPort = await freePort();
      const offline = new AdminClient({ baseUrl: `http://127.0.0.1:${closedPort}`, adminToken: "x", retry: false });
      const network = await offline.health().catch((e) => e);
      assert.ok(network instanceof NetworkError, String(network));
      assert.equal(network.kind, "network");
      assert.equal(network.request, "GET /healthz");

      // A server that accepts and never answers; and one that answers 503 + Retry-After: 1.
      const hits = [];
      const server = http.createServer((req, res) => {
        hits.push({ at: Date.now(), url: req.url });
        if (req.url === "/healthz") return; // hang
        res.writeHead(503, { "content-type": "application/json", "retry-after": "1" });
        res.end(JSON.stringify({ error: "SERVICE_UNAVAILABLE", message: "briefly unavailable" }));
      });
      await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
      const base = `http://127.0.0.1:${server.address().port}`;
      try {
        const t0 = Date.now();
        const timeout = await new AdminClient({ baseUrl: base, adminToken: "x", timeoutMs: 300, retry: false })
          .health()
          .catch((e) => e);
        assert.ok(timeout instanceof TimeoutError, String(timeout));
        assert.equal(timeout.timeoutMs, 300);
        assert.ok(Date.now() - t0 < 2_000);

        hits.length = 0;
        const busy = await new AdminClient({ baseUrl: base, adminToken: "x", retry: { retries: 2, initialDelayMs: 10, maxDelayMs: 20 } })
          .stopStream("D".repeat(21))
          .catch((e) => e);
        assert.ok(busy instanceof ApiError, String(busy));
        assert.equal(busy.code, "SERVICE_UNAVAILABLE");
        assert.equal(busy.retryAfter, 1);
        assert.equal(busy.retryable, true);
        assert.equal(hits.length, 3, "first attempt + 2 retries");
        for (let i = 1; i < hits.length; i++) assert.ok(hits[i].at - hits[i - 1].at >= 950, `retry ${i} waited Retry-After (${hits[i].at - hits[i - 1].at} ms)`);

        // Not repeatable (a retry would say APP_EXISTS): one attempt only.
        hits.length = 0;
        await new AdminClient({ baseUrl: base, adminToken: "x" }).registerApp("com.e2e.once").catch((e) => e);
        assert.equal(hits.length, 1);
      } finally {
        server.closeAllConnections();
        await new Promise((resolve) => server.close(resolve));
      }
    }),
  );

  test(
    "viewer: current status at once, async iteration, tickets, stream_status_check, and terminal closes",
    guarded(async (t) => {
      const { creds, app } = await newApp();
      const userId = unique("user-client-viewer-");
      const { streamId } = await start(app, userId);

      // Headers (Node `ws`): the first status arrives at once; `for await` yields it, then each change.
      const { viewer, events } = watched(app, streamId);
      closeViewers.push(viewer);
      const seen = [];
      const iteration = (async () => {
        for await (const status of viewer) {
          seen.push(status.viewers);
          if (status.viewers === 2) break;
        }
      })();
      const first = await viewer.ready({ timeoutMs: 10_000 });
      assert.equal(first.type, "managed_stream_status");
      assert.equal(first.streamId, streamId);
      assert.equal(viewer.status, first);
      assert.equal(viewer.readyState, "open");

      // Tickets (the browser path): a fresh single-use ticket before the connect, sent as ?ticket=.
      const calls = [];
      const ticketApp = appClient(creds, { fetch: recordingFetch(calls) });
      const { creds: partnerCreds, app: partner } = await newApp("com.e2e.client.partner");
      await start(partner, userId);
      const byTicket = partner.viewer(streamId, { auth: "ticket" });
      closeViewers.push(byTicket);
      const viaTicket = await byTicket.ready({ timeoutMs: 10_000 });
      assert.equal(viaTicket.streamId, streamId);
      await iteration; // the partner made it 2 viewers
      assert.deepEqual(seen.slice(0, 1), [1]);
      assert.equal(seen.at(-1), 2);
      const ticketViewer = ticketApp.viewer(streamId, { auth: "ticket" });
      closeViewers.push(ticketViewer);
      await ticketViewer.ready({ timeoutMs: 10_000 });
      assert.deepEqual(
        calls.map((c) => `${c.method} ${c.path}`),
        [`POST /api/streams/${streamId}/tickets`],
      );
      assert.equal(calls[0].headers["x-api-key"], creds.apiKey);

      const check = await viewer.checkStream();
      assert.equal(check.hasActiveStream, true);
      assert.equal(check.streamInfo.streamId, streamId);

      // Terminal: this app leaves → `left` (no reconnect); iteration ends normally.
      const leftAt = Date.now();
      const ticketClosed = await ticketViewer.leave();
      assert.equal(ticketClosed.reason, "left");
      assert.ok(ticketClosed.code === undefined || ticketClosed.code === 1000, String(ticketClosed.code));
      assert.ok(Date.now() - leftAt < 2_000, `closed for good ${Date.now() - leftAt} ms after the leave`);
      // (the same app's other socket — `viewer` — got the same goodbye)
      const viewerClosed = await viewer.closed;
      assert.equal(viewerClosed.reason, "left");
      assert.equal(viewerClosed.status.status, "stopped");
      assert.equal(events.filter((e) => e.type === "reconnecting").length, 0, "no reconnect after a leave");
      for await (const _ of viewer.statuses({ includeLatest: false })) assert.fail("a closed viewer yields nothing new");

      // Refused for good: an app that never joined (403 NOT_A_PARTICIPANT), an unknown stream (404);
      // iteration then throws the refusal.
      const { creds: strangerCreds, app: stranger } = await newApp("com.e2e.client.stranger");
      const refused = stranger.viewer(streamId);
      const refusal = await refused.closed;
      assert.equal(refusal.reason, "refused");
      assert.ok(refusal.error instanceof ApiError);
      assert.equal(refusal.error.status, 403);
      assert.equal(refusal.error.code, "NOT_A_PARTICIPANT");
      await assert.rejects(
        (async () => {
          for await (const _ of refused);
        })(),
        (e) => e instanceof ApiError && e.code === "NOT_A_PARTICIPANT",
      );
      const unknown = await app.viewer("E".repeat(21)).closed;
      assert.equal(unknown.reason, "refused");
      assert.equal(unknown.error.code, "STREAM_NOT_FOUND");
      const strangerByTicket = await stranger.viewer(streamId, { auth: "ticket" }).closed;
      assert.equal(strangerByTicket.reason, "refused");
      assert.equal(strangerByTicket.error.code, "STREAM_NOT_FOUND", "no ticket for an app that never joined");

      // A WHATWG WebSocket as browsers and Node 22+ have (undici's): no upgrade status is exposed, so a
      // refused headers upgrade is explained by REST, and tickets work as in a browser.
      await t.test("with a platform (WHATWG) WebSocket: tickets, and refusals explained over REST", { skip: PlatformWebSocket ? false : NO_UNDICI }, async () => {
        const platform = appClient(partnerCreds, { WebSocket: PlatformWebSocket });
        const browserLike = platform.viewer(streamId, { auth: "ticket" });
        const status = await browserLike.ready({ timeoutMs: 10_000 });
        assert.equal(status.streamId, streamId);
        assert.equal((await browserLike.close()).reason, "closed");
        const strangerPlatform = appClient(strangerCreds, { WebSocket: PlatformWebSocket }).viewer(streamId, { auth: "headers" });
        const closed = await strangerPlatform.closed;
        assert.equal(closed.reason, "refused");
        assert.equal(closed.error.code, "STREAM_NOT_FOUND", "GET /api/streams/:id explains the refused upgrade");
      });

      // A browser page without the API key: each ticket comes from the app's backend; leave() over the socket.
      const tickets = [];
      const keyless = connectViewer({
        baseUrl: stack.coordinator,
        streamId,
        WebSocket: PlatformWebSocket ?? CheckedWebSocket,
        getTicket: async () => {
          const { ticket } = await partner.createTicket(streamId); // the backend's call
          tickets.push(ticket);
          return ticket;
        },
      });
      assert.equal((await keyless.ready({ timeoutMs: 10_000 })).streamId, streamId);
      assert.equal(tickets.length, 1);
      const keylessLeft = await keyless.leave(); // managed_stream_stop: the partner app leaves
      assert.equal(keylessLeft.reason, "left");
      assert.equal((await byTicket.closed).reason, "left", "the partner's other socket got the same goodbye");
      await start(partner, userId); // and joins again
      const byTicketAgain = partner.viewer(streamId, { auth: "ticket" });
      closeViewers.push(byTicketAgain);
      await byTicketAgain.ready({ timeoutMs: 10_000 });

      // The stream stops → `stopped` for the partner's socket; a new viewer finds it ended (410).
      await admin.stopStream(streamId);
      const stopped = await byTicketAgain.closed;
      assert.equal(stopped.reason, "stopped");
      assert.equal(stopped.status.status, "stopped");
      const late = await partner.viewer(streamId).closed;
      assert.equal(late.reason, "stopped");
      assert.equal(late.error.status, 410);
      assert.equal(late.error.code, "STREAM_ENDED");
    }),
  );

  test(
    "coordinator restart mid-way: a viewer and examples/walkthrough.mjs reconnect on their own and carry on",
    { timeout: 240_000 },
    guarded(async (t) => {
      // Our own viewer, on a stream that is live with ffmpeg if there is one.
      const { app } = await newApp();
      const userId = unique("user-client-restart-");
      const { streamId } = await start(app, userId);
      const { viewer, events } = watched(app, streamId);
      closeViewers.push(viewer);
      await viewer.ready({ timeoutMs: 10_000 });
      let publisher = null;
      if (HAVE_FFMPEG) {
        const { token } = await admin.mintDeviceToken({ userId });
        const info = await deviceClient(token).getStream();
        publisher = publishTestPattern(info.start.rtmpUrl, 120);
        await viewer.waitFor((s) => s.status === "active", { timeoutMs: 30_000 });
      }

      // The example, as a user runs it, on its own app and user; restart once it holds the stream.
      const lines = [];
      const example = spawn(process.execPath, ["examples/walkthrough.mjs"], {
        cwd: root,
        env: {
          ...process.env,
          COORDINATOR_URL: stack.coordinator,
          ADMIN_TOKEN,
          PACKAGE_NAME: unique("com.e2e.walkthrough.").toLowerCase(),
          USER_ID: unique("user-walkthrough-"),
          OUTPUT_URL: `rtmp://127.0.0.1:${stack.rtmpPort}/live/walkthrough-output`,
          HOLD_SECONDS: "3",
          FFMPEG: HAVE_FFMPEG ? "ffmpeg" : "off",
        },
        stdio: ["ignore", "pipe", "pipe"],
      });
      let buffered = "";
      const onData = (chunk) => {
        buffered += chunk;
        const parts = buffered.split("\n");
        buffered = parts.pop();
        lines.push(...parts);
      };
      example.stdout.on("data", onData);
      example.stderr.on("data", onData);
      const exited = new Promise((resolve) => example.on("exit", (code, signal) => resolve({ code, signal })));
      const output = () => [...lines, buffered].join("\n");
      try {
        await waitFor("the example to hold the stream", () => lines.some((l) => l.includes("holding for")) || example.exitCode !== null, {
          timeoutMs: 90_000,
          intervalMs: 100,
        });
        assert.equal(example.exitCode, null, `the example ended early:\n${output()}`);

        // The restart: SIGKILL the whole npm start group (coordinator, emulator, RTMP), start it again.
        const killedAt = Date.now();
        stack.killGroup();
        await stack.exited;
        await waitFor("the stack's ports to be free", async () => (await Promise.all(stack.ports.map(canBind))).every(Boolean), { timeoutMs: 15_000 });
        stack = await startStack(ENV, { reuse: firstStack });
        const upAt = Date.now();
        t.diagnostic(`restart: ${((upAt - killedAt) / 1000).toFixed(1)} s from the kill until /healthz answered again`);

        // Our viewer: back on its own, with the current status first.
        const reopened = await waitFor("our viewer to reconnect", () => events.find((e) => e.type === "open" && e.at > killedAt), { timeoutMs: 30_000, intervalMs: 50 });
        const firstAfter = await waitFor("the first status after the reconnect", () => events.find((e) => e.type === "status" && e.at >= reopened.at), {
          timeoutMs: 5_000,
          intervalMs: 20,
        });
        const attempts = events.filter((e) => e.type === "reconnecting" && e.at > killedAt);
        t.diagnostic(
          `viewer reconnected ${reopened.at - upAt} ms after the stack answered again (${attempts.length} attempts, delays ${attempts.map((e) => e.value.delayMs).join("/")} ms); ` +
            `first status ${firstAfter.at - reopened.at} ms after open: ${firstAfter.value.status} (${firstAfter.value.message})`,
        );
        assert.ok(reopened.at - upAt <= MAX_DELAY_MS + 3_000, `reconnected ${reopened.at - upAt} ms after the stack was back`);
        assert.ok(firstAfter.at - reopened.at <= 1_000);
        assert.equal(reopened.value.reconnected, true);
        assert.notEqual(firstAfter.value.status, "stopped");
        // In step with the stream: what REST says now is the viewer's status now, or the next one pushed.
        const rest = await app.getStream(streamId);
        await viewer.waitFor((s) => s.status === rest.status, { timeoutMs: 10_000 });
        assert.equal(viewer.readyState, "open");
        assert.equal(viewer.closedWith, undefined, "no terminal close");
        if (HAVE_FFMPEG) {
          // Ingest sessions do not survive the restart: publish again, the viewer sees it live again.
          await publisher.stop();
          const { token } = await admin.mintDeviceToken({ userId });
          const info = await deviceClient(token).getStream();
          publisher = publishTestPattern(info.start.rtmpUrl, 60);
          await viewer.waitFor((s) => s.status === "active", { timeoutMs: 30_000 });
        }

        // The example finishes by itself: output added, stream stopped, viewer closed as stopped.
        // bound, not sleep: a pending 150 s timer kept this file's process alive 2+ min after its last test.
        const result = await Promise.race([exited, bound(150_000).then(() => null)]);
        assert.ok(result, `the example did not finish within 150 s of the restart:\n${output()}`);
        t.diagnostic(`walkthrough output:\n${output()}`);
        assert.equal(result.code, 0, `the example failed:\n${output()}`);
        const text = output();
        assert.match(text, /viewer: connected/);
        assert.match(text, /viewer: reconnected/, "the example's viewer reconnected on its own");
        assert.match(text, /step 7: add a restream output/);
        assert.match(text, /added \S+/);
        assert.match(text, /done: viewer stopped, last status stopped/);
        await t.test("the example went live with ffmpeg, before and after the restart", { skip: HAVE_FFMPEG ? false : NO_FFMPEG }, () => {
          assert.match(text, /step 5: publish ffmpeg's test pattern/);
          assert.match(text, /live: Stream is live/);
          assert.match(text, /viewer's current status: active/);
        });
      } finally {
        if (example.exitCode === null) example.kill("SIGKILL");
        await publisher?.stop();
      }
    }),
  );
});

function canBind(port) {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once("error", () => resolve(false));
    server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
  });
}
