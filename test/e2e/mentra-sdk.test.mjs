// Conformance with the MentraOS SDK (@mentra/sdk, a dev dependency): a real lifecycle against the
// `npm start` stack, driven through the SDK's own runtime — CameraManagedExtension wired to our stream
// socket exactly as examples/mentra-sdk-camera.mjs shows app developers — and glasses that speak the
// SDK's glasses messages. Every frame the coordinator sends is checked by the SDK's type guards at run
// time and, at the end, against the SDK's message types by `tsc` (test/e2e/sdk-conformance/wire.ts).
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { after, before, describe, test } from "node:test";
import { isKeepRtmpStreamAlive, isManagedStreamStatus, isStartRtmpStream, isStopRtmpStream, isStreamStatusCheckResponse } from "@mentra/sdk";
import WebSocket from "ws";
import { managedCamera } from "../../examples/mentra-sdk-camera.mjs";
import { admin, bearer, ffmpegAvailable, http, openSocket, publishTestPattern, sleep, startStack, unique, userGrant, waitFor } from "./stack.mjs";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
/** Every value of the SDK's RtmpStreamStatus["status"] (glasses-to-cloud.d.ts). */
const SDK_GLASSES_STATUSES = ["initializing", "connecting", "reconnecting", "streaming", "error", "stopped", "active", "stopping", "disconnected", "timeout", "reconnected", "reconnect_failed"];

let stack;
let failed = false;
const sent = []; // every frame the coordinator sent, to the app and to the glasses

const coord = (p) => `${stack.coordinator}${p}`;
const wsUrl = (streamId) => `${stack.coordinator.replace(/^http/, "ws")}/api/streams/${streamId}/ws`;

function record(ws, into) {
  ws.on("message", (data) => into.push(JSON.parse(String(data))));
}

describe("MentraOS SDK conformance (end to end)", { timeout: 150_000 }, () => {
  before(async () => {
    stack = await startStack({ VIEWER_GRACE_SECONDS: "2", JOIN_WINDOW_SECONDS: "5", POLL_SLOW_SECONDS: "2" });
  }, { timeout: 130_000 });

  after(async () => {
    if (!stack) return;
    await stack.stop(10_000);
    if (failed) console.log(`--- npm start output (printed because something failed) ---\n${stack.output()}\n--- end ---`);
  });

  test("startManagedStream() resolves, checkExistingStream() finds the stream, every glasses status is accepted, stopManagedStream() ends it", { timeout: 120_000 }, async () => {
    try {
      // The platform's part: an app, a user grant, a device token; the app starts the user's stream.
      const packageName = unique("com.mentra.conformance.").toLowerCase();
      const registered = await http("POST", coord("/api/admin/apps"), { body: { packageName }, headers: admin });
      assert.equal(registered.status, 201);
      const headers = { "x-api-key": registered.body.apiKey, "x-package-name": packageName };
      const userId = unique("user-sdk-");
      const grant = await userGrant(stack.coordinator, userId, packageName);
      const started = await http("POST", coord("/api/streams"), { body: { userId }, headers: { ...headers, "x-user-grant": grant } });
      assert.equal(started.status, 201, JSON.stringify(started.body));
      const { streamId } = started.body;

      // The app: the SDK's camera on our stream socket.
      const appWs = new WebSocket(wsUrl(streamId), { headers });
      const appFrames = [];
      record(appWs, appFrames);
      const appClosed = new Promise((resolve) => appWs.on("close", (code) => resolve(code)));
      await new Promise((resolve, reject) => (appWs.once("open", resolve), appWs.once("error", reject)));
      const camera = managedCamera(appWs, packageName);
      const statuses = [];
      camera.onManagedStreamStatus((status) => statuses.push(status.status));

      // The glasses: SDK glasses messages, keep-alives answered.
      const deviceRes = await http("POST", coord("/api/admin/device-tokens"), { body: { userId, ttlSeconds: 600 }, headers: admin });
      const glasses = await openSocket(wsUrl(streamId), bearer(deviceRes.body.token));
      glasses.ws.on("message", (data) => {
        const message = JSON.parse(String(data));
        if (isKeepRtmpStreamAlive(message)) glasses.send({ type: "keep_alive_ack", streamId: message.streamId, ackId: message.ackId, timestamp: new Date() });
      });
      const report = async (status) => {
        await sleep(60); // under the socket's 20 messages per second
        glasses.send({ type: "rtmp_stream_status", streamId, status, timestamp: new Date() });
      };
      const start = await glasses.next("start_rtmp_stream", (m) => m.type === "start_rtmp_stream");
      assert.ok(isStartRtmpStream(start), "the SDK's guard accepts start_rtmp_stream");
      assert.equal(start.appId, "MANAGED_STREAM");

      // startManagedStream() resolves once the stream is live and carries HLS and DASH URLs.
      const destination = { url: "rtmp://127.0.0.1:9/live/sdk-conformance-key", name: "SDK" };
      const starting = camera.startManagedStream({ quality: "720p", restreamDestinations: [destination] });
      await report("initializing");
      await report("connecting");
      let ffmpeg = null;
      if (ffmpegAvailable()) {
        ffmpeg = publishTestPattern(start.rtmpUrl, 60);
      } else {
        const [input] = (await http("GET", `${stack.emulator}/__emulator/state`)).body.inputs.filter((i) => i.meta?.streamId === streamId);
        await http("POST", `${stack.emulator}/__emulator/live_inputs/${input.uid}/connect`);
      }
      await report("streaming");
      try {
        const urls = await starting;
        assert.equal(urls.streamId, streamId);
        assert.match(urls.hlsUrl, /\/manifest\/video\.m3u8$/);
        assert.match(urls.dashUrl, /\/manifest\/video\.mpd$/);
        assert.equal(urls.webrtcUrl, undefined, "no WHEP URL for an RTMP input");
        assert.equal(camera.isManagedStreamActive(), true);
        const answer = appFrames.find((m) => m.restreamResults);
        assert.deepEqual(answer?.restreamResults?.map((r) => r.success), [true], JSON.stringify(answer));

        // checkExistingStream() gets stream_status_check_response within its 5 s, and finds this stream.
        const t0 = Date.now();
        const existing = await camera.checkExistingStream();
        assert.ok(Date.now() - t0 < 4_000, "answered well before the SDK's 5 s timeout");
        assert.equal(existing.hasActiveStream, true);
        assert.equal(existing.streamInfo.type, "managed");
        assert.equal(existing.streamInfo.streamId, streamId);
        assert.equal(existing.streamInfo.status, "active");
        assert.equal(existing.streamInfo.hlsUrl, urls.hlsUrl);
        assert.equal(existing.streamInfo.activeViewers, 1);

        // Every status the SDK's glasses can report is accepted; the app hears what it means.
        for (const status of SDK_GLASSES_STATUSES) await report(status);
        await report("streaming");
        await waitFor("the stream active again after the last report", () => camera.getManagedStreamStatus()?.status === "active" && statuses.includes("error"));
        assert.deepEqual(glasses.messages.filter((m) => m.type === "error"), [], "no glasses report refused");

        // stopManagedStream(): this app's stream is stopped for it; the last app gone, the stream ends.
        await camera.stopManagedStream();
        assert.equal(await appClosed, 1000);
        assert.equal(appFrames.at(-1).status, "stopped");
        assert.equal(camera.isManagedStreamActive(), false, "the SDK saw its managed stream stop");
        const stop = await glasses.next("stop_rtmp_stream", (m) => m.type === "stop_rtmp_stream", { timeoutMs: 20_000 });
        assert.ok(isStopRtmpStream(stop), "the SDK's guard accepts stop_rtmp_stream");
        assert.equal(stop.appId, "MANAGED_STREAM");
        const ended = await waitFor("the stream stopped", async () => {
          const res = await http("GET", coord(`/api/streams/${streamId}`), { headers });
          return res.body.status === "stopped" && res.body;
        }, { timeoutMs: 20_000 });
        assert.equal(ended.status, "stopped");
      } finally {
        await ffmpeg?.stop();
        await glasses.close();
      }

      // Every frame to the app passes the SDK's own guards (the ones AppSession dispatches with).
      for (const frame of appFrames) {
        if (frame.type === "error") continue;
        assert.ok(isManagedStreamStatus(frame) || isStreamStatusCheckResponse(frame), `unknown to the SDK: ${JSON.stringify(frame)}`);
        if (frame.type === "managed_stream_status") for (const [key, value] of Object.entries(frame)) assert.notEqual(value, null, `${key} is null`);
      }
      sent.push(...appFrames, ...glasses.messages.map(({ receivedAt: _r, ...m }) => m));
    } catch (error) {
      failed = true;
      throw error;
    }
  });

  test("tsc: every frame the coordinator sent has the SDK's message types (plus only our documented extras)", { timeout: 60_000 }, () => {
    assert.ok(sent.length > 10, `frames captured: ${sent.length}`);
    const types = new Set(sent.map((m) => m.type));
    for (const type of ["managed_stream_status", "stream_status_check_response", "start_rtmp_stream", "stop_rtmp_stream"]) assert.ok(types.has(type), `a ${type} was captured`);
    const dir = path.join(root, ".build/sdk-conformance");
    mkdirSync(dir, { recursive: true });
    const body = sent.map((frame) => `  ${JSON.stringify(frame)},`).join("\n");
    writeFileSync(
      path.join(dir, "frames.ts"),
      `// Generated by test/e2e/mentra-sdk.test.mjs: the frames of one run.\nimport type { SentFrame } from "../../test/e2e/sdk-conformance/wire.ts";\n\nexport const frames: SentFrame[] = [\n${body}\n];\n`,
    );
    const tsc = spawnSync(process.execPath, [path.join(root, "node_modules/typescript/bin/tsc"), "-p", "test/e2e/sdk-conformance/tsconfig.json"], { cwd: root, encoding: "utf8" });
    assert.equal(tsc.status, 0, `tsc found frames that do not conform:\n${tsc.stdout}${tsc.stderr}`);
  });
});
