// Recordings end to end, on the `npm start` stack with ffmpeg publishing: a stream that records (window of
// WINDOW_SECONDS) is published 6 s, dropped, reconnected within the window (the same video: one playlist with one
// discontinuity), dropped past it (the input's live manifest answers 204 and the next publish is a second video),
// then stopped (the coordinator deletes its input). Both videos reach `ready`; ffprobe of each one's HLS says the
// published duration within ±1 s, and the video's `duration` is exactly what its segments add up to; the input
// is gone and its videos are still listed (the emulator's GET /stream and the stream's GET /api/streams/:id/recordings);
// at Cloudflare's retention (the emulator's clock moved past `scheduledDeletion`) they are deleted with their files. No ffmpeg is left behind, however the file ends.
// Run: `node --test test/e2e/recordings.test.mjs`.
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { admin, bearer, ffmpegAvailable, http, openSocket, sleep, startStack, unique, userGrant, waitFor } from "./stack.mjs";

const NO_FFMPEG = ffmpegAvailable() ? false : "ffmpeg is not installed";
/** The stream's recording.timeoutSeconds: a reconnect within it continues the video. */
const WINDOW_SECONDS = 5;
const READY_DELAY_SECONDS = 2;
const TOKEN = "local-dev-token";

const playbackRoot = mkdtempSync(path.join(tmpdir(), "recordings-e2e-"));
let stack;
let failed = false;
const publishers = new Set();

/** Every live ffmpeg whose command line names our playback directory (packagers and finishers), or our publishers. */
function ffmpegs() {
  const out = execFileSync("ps", ["-eo", "pid=,stat=,args="], { encoding: "utf8" });
  return out
    .split("\n")
    .map((line) => /^\s*(\d+)\s+(\S+)\s+(.*)$/.exec(line))
    .filter((m) => m && !m[2].startsWith("Z") && /^ff(mpeg|probe)/.test(m[3]) && (m[3].includes(playbackRoot) || [...publishers].some((p) => p.pid === Number(m[1]))))
    .map((m) => ({ pid: Number(m[1]), args: m[3] }));
}

after(async () => {
  for (const p of publishers) await p.stop();
  if (stack) {
    const exitMs = await stack.stop(15_000);
    if (failed || exitMs === null) console.log(`--- npm start output (printed because something failed) ---\n${stack.output()}\n--- end of output ---`);
  }
  // However the file ended, nothing of ours keeps running (the emulator's close() waits for its ffmpegs).
  await waitFor("no packager, finisher or publisher ffmpeg left", () => ffmpegs().length === 0, { timeoutMs: 10_000 }).catch((e) => {
    for (const { pid } of ffmpegs()) process.kill(pid, "SIGKILL");
    throw e;
  });
  rmSync(playbackRoot, { recursive: true, force: true, maxRetries: 5 });
});

const guarded = (fn) => async (t) => {
  try {
    await fn(t);
  } catch (error) {
    failed = true;
    throw error;
  }
};

/** `seconds` of the test pattern with 1 s keyframes, published in real time; resolves when ffmpeg has exited. */
function publish(url, seconds) {
  const args = ["-nostdin", "-loglevel", "error", "-re", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=15", "-f", "lavfi", "-i", "sine=frequency=440"];
  args.push("-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", "15", "-c:a", "aac", "-t", String(seconds), "-f", "flv", url);
  const child = spawn("ffmpeg", args, { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (c) => (stderr += c));
  const exited = new Promise((resolve) => child.on("exit", (code) => resolve(code)));
  const entry = {
    pid: child.pid,
    exited,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      if (!(await Promise.race([exited.then(() => true), sleep(5_000)]))) child.kill("SIGKILL");
      await exited;
      publishers.delete(entry);
    },
  };
  publishers.add(entry);
  void exited.then(() => publishers.delete(entry));
  return { ...entry, done: () => exited.then((code) => assert.equal(code, 0, `publisher: ${stderr}`)) };
}

const coord = (p) => `${stack.coordinator}${p}`;
const cf = (p) => `${stack.emulator}/client/v4/accounts/local-account${p}`;
const cfGet = async (p) => http("GET", cf(p), { headers: bearer(TOKEN) });
const videosOf = async (inputUid) => {
  const res = await cfGet(`/stream?live_input_id=${inputUid}&asc=true`);
  assert.equal(res.status, 200, JSON.stringify(res.body));
  return res.body.result;
};
const inputConnected = async (uid) => (await http("GET", `${stack.emulator}/__emulator/state`)).body.inputs.find((i) => i.uid === uid)?.connected;
const ffprobeDuration = (url) => Number(execFileSync("ffprobe", ["-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", url], { encoding: "utf8" }).trim());
const text = async (url) => {
  const res = await fetch(url);
  return { status: res.status, body: await res.text(), type: res.headers.get("content-type") };
};
const extinfSum = (playlist) => [...playlist.matchAll(/#EXTINF:([\d.]+)/g)].reduce((sum, m) => sum + Number(m[1]), 0);
const count = (playlist, tag) => playlist.split("\n").filter((l) => l.trim() === tag).length;

describe("recordings on the npm start stack", { skip: NO_FFMPEG, timeout: 240_000 }, () => {
  before(
    async () => {
      stack = await startStack({ EMULATOR_PLAYBACK_DIR: playbackRoot, JOIN_WINDOW_SECONDS: "5" });
      const config = await http("POST", `${stack.emulator}/__emulator/config`, { body: { videoReadyDelaySeconds: READY_DELAY_SECONDS } });
      assert.equal(config.status, 200, JSON.stringify(config.body));
    },
    { timeout: 150_000 },
  );

  test(
    "publish 6 s, reconnect within the window, drop past it, publish, stop: two ready recordings of the published length, listed after the input is gone, deleted at retention",
    { timeout: 180_000 },
    guarded(async (t) => {
      const packageName = unique("com.e2e.rec.").toLowerCase();
      const registered = await http("POST", coord("/api/admin/apps"), { body: { packageName }, headers: admin });
      assert.equal(registered.status, 201, JSON.stringify(registered.body));
      const app = { "x-api-key": registered.body.apiKey, "x-package-name": packageName };
      const userId = unique("user-rec-");
      const grant = await userGrant(stack.coordinator, userId, packageName);
      const started = await http("POST", coord("/api/streams"), {
        body: { userId, recording: { mode: "automatic", timeoutSeconds: WINDOW_SECONDS } },
        headers: { ...app, "x-user-grant": grant },
      });
      assert.equal(started.status, 201, JSON.stringify(started.body));
      const { streamId, hlsUrl } = started.body;
      // The app watches, so the stream lasts until it is stopped.
      const socket = await openSocket(`${stack.coordinator.replace(/^http/, "ws")}/api/streams/${streamId}/ws`, app);
      t.after(() => socket.close());
      const device = await http("POST", coord("/api/admin/device-tokens"), { body: { userId, ttlSeconds: 600 }, headers: admin });
      const ingest = await http("GET", coord("/api/device/stream"), { headers: bearer(device.body.token) });
      assert.equal(ingest.status, 200, JSON.stringify(ingest.body));
      const rtmpUrl = ingest.body.start.rtmpUrl;
      const input = (await http("GET", `${stack.emulator}/__emulator/state`)).body.inputs.find((i) => i.meta?.streamId === streamId);
      assert.ok(input, "the stream's live input");
      assert.equal(input.recording.timeoutSeconds, WINDOW_SECONDS);

      // 1. Publish 6 s. While live, the video's playlist is an EVENT playlist without an end.
      let publisher = publish(rtmpUrl, 6);
      await waitFor("the input to connect", () => inputConnected(input.uid), { timeoutMs: 15_000, intervalMs: 200 });
      const [live] = await videosOf(input.uid);
      assert.equal(live.status.state, "live-inprogress");
      const growing = await waitFor("the recording's first playlist", async () => {
        const r = await text(live.playback.hls);
        return r.status === 200 && r.body.includes("#EXTINF") && r;
      }, { timeoutMs: 15_000, intervalMs: 300 });
      assert.equal(growing.type, "application/vnd.apple.mpegurl");
      assert.match(growing.body, /#EXT-X-PLAYLIST-TYPE:EVENT/);
      assert.doesNotMatch(growing.body, /#EXT-X-ENDLIST/);
      await publisher.done();
      await waitFor("the input to disconnect", async () => (await inputConnected(input.uid)) === false, { timeoutMs: 10_000 });

      // 2. Reconnect within the window: the same video goes on.
      publisher = publish(rtmpUrl, 4);
      await waitFor("the input to reconnect", () => inputConnected(input.uid), { timeoutMs: 15_000, intervalMs: 200 });
      let videos = await videosOf(input.uid);
      assert.deepEqual(videos.map((v) => [v.uid, v.status.state]), [[live.uid, "live-inprogress"]], "a reconnect within the window continues the video");
      await publisher.done();

      // 3. Past the window the video ends; the input's live manifest answers 204, as Cloudflare's does.
      await waitFor("the first video to end", async () => (await videosOf(input.uid))[0].status.state !== "live-inprogress", { timeoutMs: (WINDOW_SECONDS + 10) * 1000, intervalMs: 500 });
      const over = await fetch(hlsUrl);
      assert.equal(over.status, 204, `the live manifest once the video ended: ${over.status} ${await over.text()}`);

      // 4. The next publish is a second video; then the stream is stopped (the coordinator deletes its input).
      publisher = publish(rtmpUrl, 5);
      await waitFor("the input to connect again", () => inputConnected(input.uid), { timeoutMs: 15_000, intervalMs: 200 });
      videos = await videosOf(input.uid);
      assert.equal(videos.length, 2, JSON.stringify(videos));
      assert.equal(videos[1].status.state, "live-inprogress");
      await publisher.done();
      // An admin stop is idempotent (a stopped stream answers its snapshot), so it may be sent again.
      const stopped = await http("POST", coord(`/api/admin/streams/${streamId}/stop`), { headers: admin, idempotent: true });
      assert.equal(stopped.status, 200, JSON.stringify(stopped.body));
      await waitFor("the input to be deleted", async () => (await cfGet(`/stream/live_inputs/${input.uid}`)).status === 404, { timeoutMs: 15_000 });

      // 5. Both recordings ready, still listed though the input is gone.
      const ready = await waitFor("both videos ready", async () => {
        const list = await videosOf(input.uid);
        return list.length === 2 && list.every((v) => v.status.state === "ready") && list;
      }, { timeoutMs: 30_000, intervalMs: 500 });
      assert.deepEqual(ready.map((v) => v.uid), [live.uid, videos[1].uid]);
      for (const [video, published, discontinuities] of [[ready[0], 10, 1], [ready[1], 5, 0]]) {
        assert.equal(video.liveInput, input.uid);
        assert.equal(video.readyToStream, true);
        const playlist = await text(video.playback.hls);
        assert.equal(playlist.status, 200);
        assert.match(playlist.body, /#EXT-X-PLAYLIST-TYPE:EVENT/);
        assert.match(playlist.body, /#EXT-X-ENDLIST\s*$/);
        assert.equal(count(playlist.body, "#EXT-X-ENDLIST"), 1);
        assert.equal(count(playlist.body, "#EXT-X-DISCONTINUITY"), discontinuities, playlist.body);
        const probed = ffprobeDuration(video.playback.hls);
        assert.ok(Math.abs(probed - published) <= 1, `ffprobe says ${probed} s of video ${video.uid}, published ${published} s:\n${playlist.body}`);
        // The video's duration is the recording's: the sum of its segments (not the clock's sessions).
        assert.equal(video.duration, Math.round(extinfSum(playlist.body) * 1000) / 1000);
        assert.ok(Math.abs(video.duration - probed) < 0.05, `duration ${video.duration} vs ffprobe ${probed}`);
        assert.deepEqual(video.input, { width: 320, height: 240 });
        const mpd = await text(video.playback.dash);
        assert.equal(mpd.status, 200);
        assert.match(mpd.body, /type="static"/);
        // (ffprobe 5.1's DASH demuxer reads the duration in whole seconds: the manifest's own says more.)
        const dashSeconds = Number(/mediaPresentationDuration="PT([\d.]+)S"/.exec(mpd.body)?.[1]);
        assert.ok(Math.abs(dashSeconds - probed) <= 0.5, `DASH covers the whole recording: ${dashSeconds} s vs HLS ${probed} s\n${mpd.body}`);
        assert.ok(Math.abs(ffprobeDuration(video.playback.dash) - probed) <= 1, "ffprobe plays the DASH manifest");
        const thumb = await fetch(video.thumbnail);
        assert.equal(thumb.status, 200);
        assert.deepEqual([...Buffer.from(await thumb.arrayBuffer()).subarray(0, 3)], [0xff, 0xd8, 0xff]);
        assert.ok(video.scheduledDeletion, "the coordinator's deleteRecordingAfterDays sets a deletion date");
      }
      assert.deepEqual(ffmpegs(), [], "no packager or finisher left once the recordings are ready");

      // The stream's own record lists both (the coordinator's settle finds them by creator ~30 s after the stop).
      const listed = await waitFor("the stream's recordings to be settled ready", async () => {
        const res = await http("GET", coord(`/api/streams/${streamId}/recordings`), { headers: app });
        assert.equal(res.status, 200, JSON.stringify(res.body));
        return res.body.length === 2 && res.body.every((r) => r.state === "ready") && res.body;
      }, { timeoutMs: 60_000, intervalMs: 2_000 });
      assert.deepEqual(
        listed.map((r) => [r.recordingId, r.durationSeconds, r.hlsUrl, r.dashUrl, r.thumbnailUrl]),
        ready.map((v) => [v.uid, v.duration, v.playback.hls, v.playback.dash, v.thumbnail]),
      );

      // 6. Retention: once the emulator's clock passes scheduledDeletion the videos and their files go.
      const recordingsDir = () => readdirSync(playbackRoot).map((n) => path.join(playbackRoot, n, "recordings")).find((d) => existsSync(d));
      assert.equal(readdirSync(recordingsDir()).length, 2);
      const untilDeletion = Math.max(...ready.map((v) => Date.parse(v.scheduledDeletion))) - Date.parse((await http("GET", `${stack.emulator}/__emulator/clock`)).body.now);
      const moved = await http("POST", `${stack.emulator}/__emulator/clock`, { body: { advanceSeconds: Math.ceil(untilDeletion / 1000) + 60 } });
      assert.equal(moved.status, 200, JSON.stringify(moved.body));
      assert.deepEqual(await videosOf(input.uid), []);
      assert.equal((await fetch(ready[0].playback.hls)).status, 404);
      await waitFor("the recordings' files to be removed", () => readdirSync(recordingsDir()).length === 0, { timeoutMs: 5_000 });
    }),
  );
});
