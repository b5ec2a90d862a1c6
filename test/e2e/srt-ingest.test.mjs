// SRT ingest end to end on the `npm start` stack: a stream started with `ingest: "srt"` hands the glasses the
// live input's SRT url, streamid and passphrase; ffmpeg publishing there over real SRT makes the stream
// active for a viewer, its restream output relays (to another live input of the emulator, over RTMP) and its
// HLS plays. A wrong passphrase or an unknown streamid is refused by the SRT handshake itself.
// Run: `node --test test/e2e/srt-ingest.test.mjs`.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { after, before, describe, test } from "node:test";
import { admin, bearer, ffmpegAvailable, http, openSocket, startStack, unique, userGrant, waitFor } from "./stack.mjs";

const HAVE_FFMPEG = ffmpegAvailable();
const TOKEN = "local-dev-token";
let stack;
let failed = false;
const cleanups = [];

/** ffmpeg's test pattern (H.264 + AAC in MPEG-TS) published over SRT to `target`. */
function publishSrt(target, seconds = 40) {
  const child = spawn(
    "ffmpeg",
    ["-nostdin", "-loglevel", "error", "-re", "-f", "lavfi", "-i", "testsrc=size=640x360:rate=30", "-f", "lavfi", "-i", "sine=frequency=440",
      "-t", String(seconds), "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", "30", "-pix_fmt", "yuv420p", "-c:a", "aac", "-f", "mpegts", target],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  let stderr = "";
  child.stderr.on("data", (c) => (stderr += c));
  const exited = new Promise((resolve) => child.on("exit", (code, signal) => resolve({ code, signal })));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    return exited;
  };
  cleanups.push(stop);
  return { exited, stop, stderr: () => stderr, running: () => child.exitCode === null && child.signalCode === null };
}

const srtTarget = (srt, passphrase = srt.passphrase) => `${srt.url}?streamid=${encodeURIComponent(srt.streamId)}&passphrase=${encodeURIComponent(passphrase)}`;

async function registerApp() {
  const packageName = unique("com.e2e.srt.").toLowerCase();
  const res = await http("POST", `${stack.coordinator}/api/admin/apps`, { body: { packageName }, headers: admin });
  assert.equal(res.status, 201);
  return { packageName, headers: { "x-api-key": res.body.apiKey, "x-package-name": packageName } };
}

async function startSrtStream(app, userId) {
  const grant = await userGrant(stack.coordinator, userId, app.packageName);
  const res = await http("POST", `${stack.coordinator}/api/streams`, { body: { userId, ingest: "srt", recording: { mode: "off" } }, headers: { ...app.headers, "x-user-grant": grant } });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  return res.body;
}

async function deviceStart(userId) {
  const token = (await http("POST", `${stack.coordinator}/api/admin/device-tokens`, { body: { userId }, headers: admin })).body.token;
  const res = await http("GET", `${stack.coordinator}/api/device/stream`, { headers: bearer(token) });
  assert.equal(res.status, 200);
  return res.body.start;
}

const emulatorState = async () => (await http("GET", `${stack.emulator}/__emulator/state`)).body;

describe("SRT ingest (npm start stack)", { skip: !HAVE_FFMPEG && "ffmpeg is not installed", timeout: 240_000 }, () => {
  before(async () => {
    stack = await startStack({ POLL_SLOW_SECONDS: "2", OUTPUTS_POLL_SECONDS: "5" });
  }, { timeout: 150_000 });

  after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
    if (!stack) return;
    await stack.stop(10_000);
    if (failed) console.error(`--- stack output ---\n${stack.output()}`);
  });

  test("an SRT publish with the glasses' credentials goes live for a viewer, its output relays, and its HLS plays", async (t) => {
    try {
      const app = await registerApp();
      const userId = unique("user-srt-");
      const s = await startSrtStream(app, userId);
      assert.equal(s.ingestProtocol, "srt");
      assert.ok(s.hlsUrl, "an SRT stream plays over HLS");
      assert.equal(s.webrtcUrl, null);
      const start = await deviceStart(userId);
      assert.equal(start.ingest, "srt");
      assert.match(start.srt.url, /^srt:\/\/127\.0\.0\.1:\d+$/);

      // The restream target: another live input of the same emulator (its relay connects it over RTMP).
      const api = `${stack.emulator}/client/v4/accounts/local-account/stream/live_inputs`;
      const target = (await (await fetch(api, { method: "POST", headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" }, body: "{}" })).json()).result;

      const socket = await openSocket(`${stack.coordinator.replace(/^http/, "ws")}/api/streams/${s.streamId}/ws`, app.headers);
      cleanups.push(async () => socket.close());
      await socket.next("first status", (m) => m.type === "managed_stream_status");
      const added = await http("POST", `${stack.coordinator}/api/streams/${s.streamId}/outputs`, { body: { url: `${target.rtmps.url}${target.rtmps.streamKey}` }, headers: app.headers });
      assert.equal(added.status, 200, JSON.stringify(added.body));

      const publisher = publishSrt(srtTarget(start.srt));
      const t0 = Date.now();
      const active = await socket.next("the stream to go active", (m) => m.type === "managed_stream_status" && m.status === "active", 30_000);
      t.diagnostic(`active ${active.receivedAt - t0} ms after ffmpeg started publishing over SRT`);
      const ours = (await emulatorState()).inputs.find((i) => i.meta?.streamId === s.streamId);
      assert.equal(ours.connected, true);
      const sessions = (await http("GET", `${stack.emulator}/__emulator/ingest`)).body.srt;
      assert.deepEqual(sessions.map((x) => [x.inputUid, x.state]), [[ours.uid, "connected"]]);

      await waitFor(
        "the output's relay to connect the target input",
        async () => {
          if (!publisher.running()) throw new Error(`ffmpeg exited early: ${publisher.stderr()}`);
          const state = await emulatorState();
          const relay = state.inputs.find((i) => i.uid === ours.uid).outputs[0].relay;
          return relay.state === "active" && state.inputs.find((i) => i.uid === target.uid).connected;
        },
        { timeoutMs: 30_000, intervalMs: 250 },
      );

      const playlist = await fetch(s.hlsUrl);
      assert.equal(playlist.status, 200);
      const text = await playlist.text();
      const segment = text.split("\n").find((line) => line.endsWith(".ts"));
      assert.ok(segment, `a segment in the playlist: ${text}`);
      const media = Buffer.from(await (await fetch(new URL(segment, s.hlsUrl))).arrayBuffer());
      assert.ok(media.length > 1000 && media[0] === 0x47, "the segment is MPEG-TS with data");

      // The publish ends: the stream is told, and the SRT session is gone.
      await publisher.stop();
      await socket.next("the stream to leave active", (m) => m.type === "managed_stream_status" && m.status !== "active", 30_000);
      await waitFor("the SRT session to end", async () => (await http("GET", `${stack.emulator}/__emulator/ingest`)).body.srt.length === 0, { timeoutMs: 15_000 });
    } catch (error) {
      failed = true;
      throw error;
    }
  });

  test("a wrong passphrase or an unknown streamid is refused and connects nothing", async () => {
    try {
      const app = await registerApp();
      const userId = unique("user-srt-");
      const s = await startSrtStream(app, userId);
      const start = await deviceStart(userId);
      for (const target of [srtTarget(start.srt, "not-the-passphrase"), srtTarget({ ...start.srt, streamId: "no-such-stream" })]) {
        const publisher = publishSrt(target, 5);
        const { code } = await publisher.exited;
        assert.notEqual(code, 0, `ffmpeg must fail to connect to ${target.replace(/passphrase=[^&]+/, "passphrase=…")}`);
      }
      const ours = (await emulatorState()).inputs.find((i) => i.meta?.streamId === s.streamId);
      assert.equal(ours.connected, false);
      assert.equal(ours.status, null, "never connected");
    } catch (error) {
      failed = true;
      throw error;
    }
  });
});
