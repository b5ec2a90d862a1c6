// End-to-end: drives the `npm start` stack (wrangler dev + the Node Stream emulator with RTMP ingest)
// from outside, over HTTP, WebSocket and real RTMP. Run: `node --test test/e2e/`.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { admin, bearer, ffmpegAvailable, http, openSocket, publishTestPattern, sleep, startStack, unique, userGrant, waitFor } from "./stack.mjs";

const GRACE_SECONDS = 2;
const POLL_SLOW_SECONDS = 2;
const HAVE_FFMPEG = ffmpegAvailable();

let stack;
let failed = false;

/** Wraps a test body so a failure also prints the stack's output (once, in `after`). */
const guarded = (fn) => async (t) => {
  try {
    await fn(t);
  } catch (error) {
    failed = true;
    throw error;
  }
};

// ── Client helpers over the stack ───────────────────────────────────────────────────────────────

const coord = (path) => `${stack.coordinator}${path}`;
const wsUrl = (streamId) => `${stack.coordinator.replace(/^http/, "ws")}/api/streams/${streamId}/ws`;

async function registerApp(prefix = "com.e2e.app") {
  const packageName = unique(`${prefix}.`).toLowerCase();
  const res = await http("POST", coord("/api/admin/apps"), { body: { packageName }, headers: admin });
  assert.equal(res.status, 201, `register app: ${JSON.stringify(res.body)}`);
  assert.equal(res.body.packageName, packageName);
  assert.equal(typeof res.body.apiKey, "string");
  return { packageName, apiKey: res.body.apiKey, headers: { "x-api-key": res.body.apiKey, "x-package-name": packageName } };
}

/** Starts or joins as a platform's app would: with the grant the platform minted for this user and app. */
async function startStream(app, userId, extra = {}) {
  const grant = await userGrant(stack.coordinator, userId, app.packageName);
  const res = await http("POST", coord("/api/streams"), { body: { userId, ...extra }, headers: { ...app.headers, "x-user-grant": grant } });
  assert.ok(res.status === 201 || res.status === 200, `start stream: HTTP ${res.status} ${JSON.stringify(res.body)}`);
  assert.match(res.body.streamId, /^\S+$/);
  return res.body;
}

async function deviceToken(userId) {
  const res = await http("POST", coord("/api/admin/device-tokens"), { body: { userId, ttlSeconds: 600 }, headers: admin });
  assert.equal(res.status, 201, `device token: ${JSON.stringify(res.body)}`);
  assert.equal(typeof res.body.token, "string");
  return res.body.token;
}

const snapshot = (app, streamId) => http("GET", coord(`/api/streams/${streamId}`), { headers: app.headers });

/** An app viewer socket; resolves once its first `managed_stream_status` has arrived. */
async function viewer(app, streamId) {
  const socket = await openSocket(wsUrl(streamId), app.headers);
  await socket.next(`first managed_stream_status for ${app.packageName}`, (m) => m.type === "managed_stream_status");
  return socket;
}

async function emulatorState() {
  const res = await http("GET", `${stack.emulator}/__emulator/state`);
  assert.equal(res.status, 200);
  return res.body;
}

/** The emulator's live input(s) for one of our streams (our meta carries the streamId). */
async function inputsOf(streamId) {
  return (await emulatorState()).inputs.filter((input) => input.meta?.streamId === streamId);
}

async function inputOf(streamId) {
  const inputs = await inputsOf(streamId);
  assert.equal(inputs.length, 1, `exactly one live input for stream ${streamId}: ${JSON.stringify(inputs)}`);
  return inputs[0];
}

const stopAsAdmin = (streamId) => http("POST", coord(`/api/admin/streams/${streamId}/stop`), { headers: admin });

/** The RTMP URL a device gets from GET /api/device/stream. */
async function ingestUrl(userId) {
  const token = await deviceToken(userId);
  const res = await http("GET", coord("/api/device/stream"), { headers: bearer(token) });
  assert.equal(res.status, 200, `device stream: ${JSON.stringify(res.body)}`);
  assert.ok(res.body.start, `device stream has start credentials: ${JSON.stringify(res.body)}`);
  assert.match(res.body.start.rtmpUrl, new RegExp(`^rtmps?://127\\.0\\.0\\.1:${stack.rtmpPort}/live/\\S+$`));
  return { token, rtmpUrl: res.body.start.rtmpUrl };
}

/** Closes sockets and kills publishers even when an assertion failed midway. */
function cleanupList(t) {
  const items = [];
  t.after(async () => {
    for (const item of items.reverse()) await item().catch(() => {});
  });
  return (fn) => items.push(fn);
}

// ── The suite ────────────────────────────────────────────────────────────────────────────────────

describe("npm start stack (end to end)", { timeout: 170_000 }, () => {
  before(
    async () => {
      stack = await startStack({
        VIEWER_GRACE_SECONDS: String(GRACE_SECONDS),
        JOIN_WINDOW_SECONDS: "2",
        POLL_SLOW_SECONDS: String(POLL_SLOW_SECONDS),
        // The relay-error test waits for the stream's own outputs list (default every 30 min).
        OUTPUTS_POLL_SECONDS: "5",
      });
    },
    { timeout: 130_000 },
  );

  after(async () => {
    if (!stack) return;
    const exitMs = await stack.stop(10_000);
    if (failed || exitMs === null) {
      console.log(`--- npm start output (printed because something failed) ---\n${stack.output()}\n--- end of output ---`);
    }
    assert.notEqual(exitMs, null, "the stack did not exit within 10 s of SIGTERM");
    const { code, signal } = await stack.exited;
    assert.equal(signal, null, `start.mjs was killed by ${signal}`);
    assert.equal(code, 0, `start.mjs exited with ${code}`);
  });

  test(
    "walkthrough: register an app, start a stream, publish a test pattern, see the input connected",
    { timeout: 60_000 },
    guarded(async (t) => {
      const defer = cleanupList(t);
      const app = await registerApp();
      const userId = unique("user-walk-");
      const started = await startStream(app, userId);
      assert.equal(started.created, true);
      assert.ok(["initializing", "preparing"].includes(started.status), `new stream status: ${started.status}`);
      for (const key of ["hlsUrl", "dashUrl", "previewUrl", "thumbnailUrl"]) {
        assert.equal(typeof started[key], "string", `${key} in ${JSON.stringify(started)}`);
      }
      assert.equal(started.webrtcUrl, null, "WHEP cannot play an RTMP input");
      assert.equal(JSON.stringify(started).includes("streamKey"), false, "ingest credentials never go to apps");
      // The app watches (as an SDK app would), so the short join window does not end the stream.
      const socket = await viewer(app, started.streamId);
      defer(() => socket.close());

      const { rtmpUrl } = await ingestUrl(userId);
      const input = await inputOf(started.streamId);
      assert.equal(input.connected, false);
      assert.ok(rtmpUrl.endsWith(`/live/${input.rtmps.streamKey}`), `${rtmpUrl} carries the input's key`);

      await t.test("publishes RTMP with ffmpeg", { skip: !HAVE_FFMPEG && "ffmpeg is not installed" }, async () => {
        const ffmpeg = publishTestPattern(rtmpUrl, 20);
        defer(() => ffmpeg.stop());
        await waitFor(
          "the emulator to show the live input connected",
          async () => {
            if (!ffmpeg.running()) throw new Error(`ffmpeg exited early: ${ffmpeg.stderr()}`);
            return (await inputOf(started.streamId)).connected;
          },
          { timeoutMs: 15_000 },
        );
        const live = await waitFor(
          'the stream snapshot to show ingest "connected" and status "active"',
          async () => {
            const res = await snapshot(app, started.streamId);
            return res.body.ingest === "connected" && res.body.status === "active" && res.body;
          },
          { timeoutMs: 15_000, intervalMs: 250 },
        );
        assert.equal(live.streamId, started.streamId);
        assert.equal(live.message, "Stream is live");
        await ffmpeg.stop();
      });
      // Leave nothing behind for the other tests.
      assert.equal((await stopAsAdmin(started.streamId)).status, 200);
    }),
  );

  test(
    "presence (issue 3): two apps and a device get status; when both apps leave, the stream stops after the grace period",
    { timeout: 40_000 },
    guarded(async (t) => {
      const defer = cleanupList(t);
      const [appA, appB] = [await registerApp("com.e2e.a"), await registerApp("com.e2e.b")];
      const userId = unique("user-presence-");
      const started = await startStream(appA, userId);
      const streamId = started.streamId;
      const joined = await startStream(appB, userId);
      assert.equal(joined.streamId, streamId, "the second app joins the user's running stream");
      assert.equal(joined.created, false);

      const a = await viewer(appA, streamId);
      defer(() => a.close());
      const b = await viewer(appB, streamId);
      defer(() => b.close());
      for (const [name, socket] of [["A", a], ["B", b]]) {
        const status = socket.last("managed_stream_status");
        assert.equal(status.streamId, streamId);
        assert.ok(["initializing", "preparing"].includes(status.status), `app ${name} status ${status.status}`);
        assert.ok(Array.isArray(status.outputs));
        for (const key of ["hlsUrl", "dashUrl", "previewUrl", "thumbnailUrl", "message", "timestamp"]) {
          assert.ok(key in status, `app ${name}'s managed_stream_status has ${key}`);
        }
      }
      await a.next("app A to see 2 viewers", (m) => m.type === "managed_stream_status" && m.viewers === 2);

      const token = await deviceToken(userId);
      const device = await openSocket(wsUrl(streamId), bearer(token));
      defer(() => device.close());
      const start = await device.next("start_rtmp_stream to the device", (m) => m.type === "start_rtmp_stream");
      assert.equal(start.streamId, streamId);
      assert.match(start.rtmpUrl, /^rtmps?:\/\/\S+\/live\/\S+$/);

      // Something for the stop to clean up at Cloudflare: an output.
      const added = await http("POST", coord(`/api/streams/${streamId}/outputs`), {
        body: { url: "rtmp://127.0.0.1:9/live/presence-key", name: "presence" },
        headers: appA.headers,
      });
      assert.equal(added.status, 200, JSON.stringify(added.body));
      const input = await inputOf(streamId);
      assert.equal(input.outputs.length, 1);

      // Both apps leave by closing their sockets; the device stays.
      await a.close();
      await b.close();
      const leftAt = Date.now();
      const stopMsg = await device.next("stop_rtmp_stream to the device", (m) => m.type === "stop_rtmp_stream", { timeoutMs: GRACE_SECONDS * 1000 + 8_000 });
      assert.equal(stopMsg.streamId, streamId);
      const waited = stopMsg.receivedAt - leftAt;
      assert.ok(waited >= GRACE_SECONDS * 1000 - 500, `the stream stopped ${waited} ms after the last viewer left, before the ${GRACE_SECONDS} s grace period`);

      const stopped = await waitFor(
        "snapshot status stopped",
        async () => {
          const res = await snapshot(appA, streamId);
          return res.body.status === "stopped" && res.body;
        },
        { timeoutMs: 10_000 },
      );
      assert.equal(stopped.ingest, "idle");
      // The coordinator closes the device's socket. (Its close frame arrives at once; workerd ends the TCP
      // connection only ~10 s later, so the client's `close` event is not awaited: CLOSING means the
      // server's close frame was received, since this side never called close().)
      await waitFor("the coordinator to close the device socket", () => device.ws.readyState !== device.ws.OPEN, { timeoutMs: 5_000 });

      const state = await emulatorState();
      assert.deepEqual(
        state.inputs.filter((i) => i.meta?.streamId === streamId || i.uid === input.uid),
        [],
        "the emulator holds no live input for the stream",
      );
      const leftovers = state.inputs.flatMap((i) => i.outputs).filter((o) => o.uid === input.outputs[0].uid || o.streamKey === "presence-key");
      assert.deepEqual(leftovers, [], "the emulator holds no output for the stream");
    }),
  );

  test(
    "outputs (issue 4): seed 002 bodies, masking for other apps, emulator equals ours, stop deletes them",
    { timeout: 40_000 },
    guarded(async (t) => {
      const defer = cleanupList(t);
      const [appA, appB] = [await registerApp("com.e2e.owner"), await registerApp("com.e2e.other")];
      const userId = unique("user-outputs-");
      const { streamId } = await startStream(appA, userId);
      await startStream(appB, userId);
      const a = await viewer(appA, streamId);
      defer(() => a.close());
      const b = await viewer(appB, streamId);
      defer(() => b.close());
      const outputsPath = coord(`/api/streams/${streamId}/outputs`);
      const add = (app, url, name) => http("POST", outputsPath, { body: name === undefined ? { url } : { url, name }, headers: app.headers });

      const url = "rtmp://a.rtmp.youtube.com/live2/owner-secret-key";
      const masked = "rtmp://a.rtmp.youtube.com/live2/****";
      const first = await add(appA, url, "YouTube");
      assert.equal(first.status, 200);
      assert.equal(typeof first.body.outputId, "string");
      assert.deepEqual(first.body, { success: true, outputId: first.body.outputId, message: "Output added successfully" });
      const outputId = first.body.outputId;

      const invalid = await add(appA, "http://example.com/live/key");
      assert.equal(invalid.status, 400);
      assert.deepEqual(invalid.body, { error: "INVALID_URL", message: "url must start with rtmp:// or rtmps://" });

      // Same destination after normalizing scheme/host case, default port and trailing slash.
      const duplicate = await add(appB, "RTMP://A.RTMP.YouTube.com:1935/live2/owner-secret-key/");
      assert.equal(duplicate.status, 409);
      assert.deepEqual(duplicate.body, { error: "DUPLICATE_URL", message: "URL already exists as output" });

      const notMine = await http("DELETE", `${outputsPath}/${outputId}`, { headers: appB.headers });
      assert.equal(notMine.status, 403);
      assert.deepEqual(notMine.body, { error: "NOT_AUTHORIZED", message: "App did not add this output" });

      // Masking: B sees the key hidden in REST and over its socket; A sees its own URL.
      const listB = await http("GET", outputsPath, { headers: appB.headers });
      assert.equal(listB.status, 200);
      assert.deepEqual(listB.body.outputs.map((o) => ({ outputId: o.outputId, url: o.url, name: o.name, addedBy: o.addedBy })), [
        { outputId, url: masked, name: "YouTube", addedBy: appA.packageName },
      ]);
      assert.equal(JSON.stringify(listB.body).includes("owner-secret-key"), false, "B's REST view never carries A's key");
      const listA = await http("GET", outputsPath, { headers: appA.headers });
      assert.equal(listA.body.outputs[0].url, url);
      const seenByB = await b.next("B's socket to list the output, masked", (m) => m.type === "managed_stream_status" && m.outputs.length === 1);
      assert.equal(seenByB.outputs[0].url, masked);
      assert.equal(seenByB.outputs[0].outputId, outputId);
      assert.equal(b.messages.some((m) => JSON.stringify(m).includes("owner-secret-key")), false, "B's socket never carries A's key");
      const seenByA = await a.next("A's socket to list the output", (m) => m.type === "managed_stream_status" && m.outputs.length === 1);
      assert.equal(seenByA.outputs[0].url, url);

      // Fill the stream to its cap of 10 (A: 9, B: 1), then one more.
      const urlsA = [url];
      for (let i = 2; i <= 9; i++) {
        const u = `rtmp://ingest${i}.example.com/app/key-a-${i}`;
        const res = await add(appA, u);
        assert.equal(res.status, 200, `output ${i}: ${JSON.stringify(res.body)}`);
        urlsA.push(u);
      }
      const urlB = "rtmps://live.example.net:443/app/key-b-1";
      const resB = await add(appB, urlB, "B's");
      assert.equal(resB.status, 200, JSON.stringify(resB.body));
      const full = await add(appA, "rtmp://ingest11.example.com/app/key-a-11");
      assert.equal(full.status, 409);
      assert.deepEqual(full.body, { error: "MAX_OUTPUTS_REACHED", message: "Maximum outputs per stream reached (10)" });

      const listAll = await http("GET", outputsPath, { headers: appA.headers });
      assert.equal(listAll.status, 200);
      assert.equal(listAll.body.streamId, streamId);
      assert.equal(listAll.body.total, 10);
      assert.equal(listAll.body.maxPerStream, 10);
      assert.equal(listAll.body.maxPerApp, 10);
      for (const o of listAll.body.outputs) {
        assert.deepEqual(Object.keys(o).filter((k) => ["outputId", "url", "name", "addedBy", "status", "error"].includes(k)).sort(), ["addedBy", "error", "name", "outputId", "status", "url"]);
        assert.ok(["active", "connecting", "error", "unknown"].includes(o.status), `seed 002 status: ${o.status}`);
      }
      const ours = [...urlsA, urlB].map(destination).sort();

      // The emulator holds exactly these, one for one (sent split into url + streamKey).
      const input = await inputOf(streamId);
      const theirs = input.outputs.map((o) => destination(`${o.url.replace(/\/+$/, "")}/${o.streamKey}`)).sort();
      assert.deepEqual(theirs, ours);

      // Stopping the stream deletes them at the emulator.
      const stop = await stopAsAdmin(streamId);
      assert.equal(stop.status, 200, JSON.stringify(stop.body));
      assert.equal(stop.body.status, "stopped");
      const state = await emulatorState();
      assert.deepEqual(state.inputs.filter((i) => i.uid === input.uid || i.meta?.streamId === streamId), []);
      const outputUids = new Set(input.outputs.map((o) => o.uid));
      assert.deepEqual(state.inputs.flatMap((i) => i.outputs).filter((o) => outputUids.has(o.uid)), []);
      // Idempotent.
      assert.equal((await stopAsAdmin(streamId)).status, 200);
    }),
  );

  test(
    "user grants (issue 8): without its grant for the user an app can neither start, join, view nor restream",
    { timeout: 30_000 },
    guarded(async (t) => {
      const defer = cleanupList(t);
      const [owner, intruder] = [await registerApp("com.e2e.granted"), await registerApp("com.e2e.intruder")];
      const userId = unique("user-grants-");
      const post = (app, headers = {}) => http("POST", coord("/api/streams"), { body: { userId }, headers: { ...app.headers, ...headers } });
      const inputsBefore = (await emulatorState()).inputs.length;
      const noGrant = await post(intruder);
      assert.equal(noGrant.status, 403);
      assert.equal(noGrant.body.error, "USER_NOT_GRANTED");
      const ownersGrant = await userGrant(stack.coordinator, userId, owner.packageName);
      assert.equal((await post(intruder, { "x-user-grant": ownersGrant })).body.error, "USER_NOT_GRANTED", "another app's grant");
      assert.equal((await emulatorState()).inputs.length, inputsBefore, "a refused start creates nothing");

      const { streamId } = await startStream(owner, userId);
      const watching = await viewer(owner, streamId);
      defer(() => watching.close());
      assert.equal((await post(intruder)).body.error, "USER_NOT_GRANTED", "join");
      await assert.rejects(openSocket(wsUrl(streamId), intruder.headers), /HTTP 403 .*NOT_A_PARTICIPANT/);
      const ticket = await http("POST", coord(`/api/streams/${streamId}/tickets`), { headers: intruder.headers });
      assert.equal(ticket.status, 404, `ticket: ${JSON.stringify(ticket.body)}`);
      const add = await http("POST", coord(`/api/streams/${streamId}/outputs`), { body: { url: "rtmp://127.0.0.1:9/live/stolen" }, headers: intruder.headers });
      assert.equal(add.status, 403);
      assert.equal(add.body.error, "NOT_A_VIEWER");
      assert.deepEqual((await inputOf(streamId)).outputs, []);
      assert.equal((await stopAsAdmin(streamId)).status, 200);
    }),
  );

  describe("status sync (issue 5)", () => {
    /** Skips when the webhook route is not there yet; otherwise it must refuse an unsigned call. */
    async function requireStatusSync(t) {
      const res = await http("POST", coord("/api/webhooks/cloudflare-stream"), { body: {} });
      if (res.status === 404 && res.body?.error === "NOT_FOUND") {
        t.skip("status sync not yet implemented");
        return false;
      }
      assert.equal(res.status, 401, `an unsigned webhook is refused: ${JSON.stringify(res.body)}`);
      return true;
    }

    test(
      "a viewer sees active within 1 s of ffmpeg publishing, and the disconnect within 1 s of it stopping",
      { timeout: 45_000 },
      guarded(async (t) => {
        if (!(await requireStatusSync(t))) return;
        if (!HAVE_FFMPEG) return t.skip("ffmpeg is not installed");
        const defer = cleanupList(t);
        const app = await registerApp("com.e2e.sync");
        const userId = unique("user-sync-");
        const { streamId } = await startStream(app, userId);
        const socket = await viewer(app, streamId);
        defer(() => socket.close());
        const { rtmpUrl } = await ingestUrl(userId);
        const from = socket.messages.length;

        const ffmpeg = publishTestPattern(rtmpUrl, 30);
        defer(() => ffmpeg.stop());
        const connected = await waitFor(
          "the emulator to show the live input connected",
          async () => {
            if (!ffmpeg.running()) throw new Error(`ffmpeg exited early: ${ffmpeg.stderr()}`);
            const input = await inputOf(streamId);
            return input.connected && input;
          },
          { timeoutMs: 15_000, intervalMs: 50 },
        );
        const connectedAt = Date.parse(connected.status.current.statusEnteredAt);
        assert.equal(connected.status.current.state, "connected");
        const active = await socket.next("managed_stream_status active", (m) => m.type === "managed_stream_status" && m.status === "active", {
          from,
          timeoutMs: 10_000,
        });
        const toActive = active.receivedAt - connectedAt;
        t.diagnostic(`active ${toActive} ms after the emulator saw the publish (${active.receivedAt - ffmpeg.startedAt} ms after ffmpeg started)`);
        assert.ok(toActive <= 1_000, `viewer saw active ${toActive} ms after ingest connected (limit 1000 ms)`);

        await sleep(500);
        const fromStop = socket.messages.length;
        const exit = await ffmpeg.stop();
        const disconnected = await waitFor(
          "the emulator to show the live input disconnected",
          async () => {
            const input = await inputOf(streamId);
            return !input.connected && input;
          },
          { timeoutMs: 10_000, intervalMs: 50 },
        );
        const disconnectedAt = Date.parse(disconnected.status.current.statusEnteredAt);
        const down = await socket.next("managed_stream_status no longer active", (m) => m.type === "managed_stream_status" && m.status !== "active", {
          from: fromStop,
          timeoutMs: 10_000,
        });
        const toDown = down.receivedAt - disconnectedAt;
        t.diagnostic(`disconnect seen ${toDown} ms after the emulator saw it (${down.receivedAt - exit.at} ms after ffmpeg exited)`);
        assert.equal(down.status, "preparing", `after a disconnect: ${JSON.stringify(down)}`);
        assert.match(down.message, /reconnect/i);
        assert.ok(toDown <= 1_000, `viewer saw the disconnect ${toDown} ms after ingest disconnected (limit 1000 ms)`);
        assert.equal((await stopAsAdmin(streamId)).status, 200);
      }),
    );

    test(
      "an injected output relay error reaches the viewer as error with its message",
      { timeout: 45_000 },
      guarded(async (t) => {
        if (!(await requireStatusSync(t))) return;
        const defer = cleanupList(t);
        const app = await registerApp("com.e2e.relay");
        const userId = unique("user-relay-");
        const { streamId } = await startStream(app, userId);
        const socket = await viewer(app, streamId);
        defer(() => socket.close());
        const added = await http("POST", coord(`/api/streams/${streamId}/outputs`), {
          body: { url: "rtmp://127.0.0.1:9/live/relay-key", name: "relay" },
          headers: app.headers,
        });
        assert.equal(added.status, 200, JSON.stringify(added.body));
        const { outputId } = added.body;
        const input = await inputOf(streamId);
        assert.equal(input.outputs.length, 1);
        const cfUid = input.outputs[0].uid;

        const from = socket.messages.length;
        const injected = await http("POST", `${stack.emulator}/__emulator/outputs/${cfUid}/relay`, { body: { state: "error", lastError: "boom" } });
        assert.equal(injected.status, 200, JSON.stringify(injected.body));
        const injectedAt = Date.now();
        const limitMs = 15_000; // the outputs list is polled every OUTPUTS_POLL_SECONDS (5 s here)
        const seen = await socket.next(
          "outputs[].status error with 'boom'",
          (m) => m.type === "managed_stream_status" && m.outputs.some((o) => o.outputId === outputId && o.status === "error" && /boom/.test(o.error ?? "")),
          { from, timeoutMs: limitMs },
        );
        t.diagnostic(`relay error reached the viewer ${seen.receivedAt - injectedAt} ms after injection`);
        const rest = await http("GET", coord(`/api/streams/${streamId}/outputs`), { headers: app.headers });
        const view = rest.body.outputs.find((o) => o.outputId === outputId);
        assert.equal(view.status, "error");
        assert.match(view.error, /boom/);
        assert.equal((await stopAsAdmin(streamId)).status, 200);
      }),
    );
  });
});

/** An RTMP destination compared as the coordinator does: scheme/host case, default port, trailing slash. */
function destination(raw) {
  const u = new URL(raw);
  const scheme = u.protocol.replace(":", "").toLowerCase();
  const port = u.port && u.port !== { rtmp: "1935", rtmps: "443" }[scheme] ? `:${u.port}` : "";
  return `${scheme}://${u.hostname.toLowerCase()}${port}${u.pathname.replace(/\/+$/, "")}${u.search}`;
}
