// Real playback from the Node emulator: an RTMP publish of ffmpeg's test pattern is packaged by one ffmpeg
// per live input into live HLS, DASH and a thumbnail at the live input's playback URLs (the coordinator's
// hlsUrl/dashUrl/thumbnailUrl under npm start), and everything stops and is removed when the publish ends,
// the input is disabled or deleted, or the emulator stops. Without ffmpeg: 503 JSON. Runs the emulator
// alone (`node --import tsx emulator/server.ts`, as npm start does). Run: `node --test test/e2e/playback.test.mjs`.
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { ffmpegAvailable, freePort, sleep, waitFor } from "./stack.mjs";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const TOKEN = "local-dev-token";
const HAS_FFMPEG = ffmpegAvailable();
const NO_FFMPEG = HAS_FFMPEG ? false : "ffmpeg is not installed";

const playbackRoot = mkdtempSync(path.join(tmpdir(), "playback-e2e-"));
const cleanups = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  // After a failure, packagers of a killed emulator end on their own (their RTMP input closes).
  await waitFor("packagers to exit", () => packagers().length === 0, { timeoutMs: 5_000 }).catch(() => undefined);
  rmSync(playbackRoot, { recursive: true, force: true, maxRetries: 5 });
});

/** One emulator process (`node --import tsx emulator/server.ts`), its playback files under `playbackRoot`. */
async function startEmulator(env = {}) {
  const [httpPort, rtmpPort] = [await freePort(), await freePort()];
  const child = spawn(process.execPath, ["--import", "tsx", "emulator/server.ts"], {
    cwd: root,
    env: { ...process.env, STREAM_EMULATOR_PORT: String(httpPort), RTMP_PORT: String(rtmpPort), EMULATOR_PLAYBACK_DIR: playbackRoot, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout.on("data", (c) => (output += c));
  child.stderr.on("data", (c) => (output += c));
  const exited = new Promise((resolve) => child.on("exit", (code, signal) => resolve({ code, signal })));
  cleanups.push(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    await exited;
  });
  const base = `http://127.0.0.1:${httpPort}`;
  await waitFor(
    "the emulator to answer /healthz",
    async () => {
      if (child.exitCode !== null) throw new Error(`emulator exited (${child.exitCode}): ${output}`);
      return (await fetch(`${base}/healthz`)).ok;
    },
    { timeoutMs: 30_000, intervalMs: 100 },
  );
  const api = `${base}/client/v4/accounts/local-account/stream/live_inputs`;
  const call = async (method, url, body) => {
    const res = await fetch(url, {
      method,
      headers: { authorization: `Bearer ${TOKEN}`, ...(body ? { "content-type": "application/json" } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    return { status: res.status, body: await res.json() };
  };
  return {
    child,
    base,
    rtmp: `rtmp://127.0.0.1:${rtmpPort}/live/`,
    exited,
    output: () => output,
    /** This process's playback directory (`<pid>-XXXXXX` under playbackRoot). */
    dir: () => readdirSync(playbackRoot).filter((n) => n.startsWith(`${child.pid}-`)).map((n) => path.join(playbackRoot, n))[0] ?? null,
    create: async () => {
      const r = await call("POST", api, {});
      assert.equal(r.status, 200);
      return r.body.result;
    },
    call: (method, uid, body) => call(method, `${api}/${uid}`, body),
    state: async () => (await fetch(`${base}/__emulator/state`)).json(),
  };
}

/** The README's test pattern, with 1 s keyframes (so 1 s segments), published for up to `seconds`. */
function publish(url, seconds = 40) {
  const args = ["-nostdin", "-loglevel", "error", "-re", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=15", "-f", "lavfi", "-i", "sine=frequency=440"];
  args.push("-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", "15", "-c:a", "aac", "-t", String(seconds), "-f", "flv", url);
  const child = spawn("ffmpeg", args, { stdio: ["ignore", "ignore", "ignore"] });
  const exited = new Promise((resolve) => child.on("exit", resolve));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
    const done = await Promise.race([exited.then(() => true), sleep(5_000)]);
    if (!done) child.kill("SIGKILL");
    await exited;
  };
  cleanups.push(stop);
  return { stop };
}

/** Every process whose command line names our playback directory: the packagers, orphaned or not. */
function packagers() {
  const out = execFileSync("ps", ["-eo", "pid=,ppid=,stat=,args="], { encoding: "utf8" });
  return out
    .split("\n")
    .map((line) => /^\s*(\d+)\s+(\d+)\s+(\S+)\s+(.*)$/.exec(line))
    .filter((m) => m && !m[3].startsWith("Z") && m[4].includes(playbackRoot) && m[4].startsWith("ffmpeg"))
    .map((m) => ({ pid: Number(m[1]), ppid: Number(m[2]), args: m[4] }));
}

async function get(url) {
  const res = await fetch(url);
  const body = Buffer.from(await res.arrayBuffer());
  const type = res.headers.get("content-type") ?? "";
  return { status: res.status, headers: res.headers, body, json: type.startsWith("application/json") ? JSON.parse(body.toString()) : null };
}

const mediaSequence = (playlist) => Number(/#EXT-X-MEDIA-SEQUENCE:(\d+)/.exec(playlist)?.[1]);

describe("emulator playback without ffmpeg", () => {
  test("media URLs answer 503 JSON saying playback needs ffmpeg", async () => {
    const emu = await startEmulator({ PATH: "/nonexistent" });
    const li = await emu.create();
    for (const url of [li.playback.hls, li.playback.dash, li.playback.hls.replace("manifest/video.m3u8", "thumbnails/thumbnail.jpg")]) {
      const r = await get(url);
      assert.equal(r.status, 503, url);
      assert.equal(r.json.error, "PLAYBACK_UNAVAILABLE");
      assert.match(r.json.message, /needs ffmpeg.*not on PATH/);
      assert.equal(r.headers.get("access-control-allow-origin"), "*");
    }
    assert.match(emu.output(), /playback off/);
    assert.equal(emu.dir(), null, "no playback directory without ffmpeg");
  });
});

describe("emulator playback with ffmpeg", { skip: NO_FFMPEG }, () => {
  let emu;
  before(async () => {
    emu = await startEmulator();
  });

  test("the live input's playback fields are the coordinator's URLs (npm start: <emulator>/playback)", async () => {
    const li = await emu.create();
    // src/cloudflare/playback.ts itself, with the base npm start gives it.
    const script = `const { playbackUrls } = await import(${JSON.stringify(path.join(root, "src/cloudflare/playback.ts"))});
      console.log(JSON.stringify(playbackUrls({ playbackBaseUrl: ${JSON.stringify(`${emu.base}/playback`)} }, ${JSON.stringify(li.uid)}, "rtmp")));`;
    const urls = JSON.parse(execFileSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], { cwd: root, encoding: "utf8" }));
    assert.deepEqual(li.playback, { hls: urls.hlsUrl, dash: urls.dashUrl });
    assert.equal(li.playback.hls, `${emu.base}/playback/${li.uid}/manifest/video.m3u8`);
    assert.equal(li.webRTCPlayback.url, `${urls.previewUrl.replace(/\/iframe$/, "")}/webRTC/play`);
    const page = await get(urls.previewUrl);
    assert.equal(page.status, 200);
    assert.match(page.headers.get("content-type"), /^text\/html/);
    const thumb = await get(urls.thumbnailUrl);
    assert.equal(thumb.status, 404, "not live yet");
  });

  test("a publish plays as live HLS, DASH and a JPEG thumbnail; when it ends, all of it goes", async () => {
    const li = await emu.create();
    const thumbnailUrl = li.playback.hls.replace("manifest/video.m3u8", "thumbnails/thumbnail.jpg");
    const before = await get(li.playback.hls);
    assert.equal(before.status, 404);
    assert.equal(before.json.error, "NOT_LIVE");
    assert.equal(before.headers.get("access-control-allow-origin"), "*");

    const started = Date.now();
    const publisher = publish(`${emu.rtmp}${li.rtmps.streamKey}`);
    // The server holds a first playlist request until ffmpeg has written it.
    const first = await waitFor("the HLS playlist", async () => {
      const r = await get(li.playback.hls);
      return r.status === 200 ? r : null;
    }, { timeoutMs: 15_000, intervalMs: 200 });
    const firstAfterMs = Date.now() - started;
    assert.ok(firstAfterMs < 8_000, `first playlist after ${firstAfterMs} ms`);
    assert.equal(first.headers.get("content-type"), "application/vnd.apple.mpegurl");
    assert.equal(first.headers.get("cache-control"), "no-store");
    assert.equal(first.headers.get("access-control-allow-origin"), "*");
    const playlist = first.body.toString();
    assert.match(playlist, /^#EXTM3U/);
    assert.doesNotMatch(playlist, /#EXT-X-ENDLIST/);
    const segments = playlist.split("\n").filter((l) => l.endsWith(".ts"));
    assert.ok(segments.length >= 1, playlist);

    const segment = await get(new URL(segments.at(-1), li.playback.hls).href);
    assert.equal(segment.status, 200);
    assert.equal(segment.headers.get("content-type"), "video/mp2t");
    assert.equal(segment.headers.get("access-control-allow-origin"), "*");
    assert.equal(segment.body[0], 0x47, "MPEG-TS sync byte");
    assert.equal(Number(segment.headers.get("content-length")), segment.body.length);

    const mpd = await get(li.playback.dash);
    assert.equal(mpd.status, 200);
    assert.equal(mpd.headers.get("content-type"), "application/dash+xml");
    assert.equal(mpd.headers.get("cache-control"), "no-store");
    const manifest = mpd.body.toString();
    assert.match(manifest, /<MPD[^>]*type="dynamic"/);
    const init = /initialization="([^"]+)"/.exec(manifest)[1].replace("$RepresentationID$", /<Representation id="([^"]+)"/.exec(manifest)[1]);
    const initSegment = await get(new URL(init, li.playback.dash).href);
    assert.equal(initSegment.status, 200);
    assert.equal(initSegment.headers.get("content-type"), "video/mp4");
    assert.equal(initSegment.body.subarray(4, 8).toString(), "ftyp");

    const thumb = await get(thumbnailUrl);
    assert.equal(thumb.status, 200);
    assert.equal(thumb.headers.get("content-type"), "image/jpeg");
    assert.equal(thumb.headers.get("cache-control"), "no-store");
    assert.deepEqual([...thumb.body.subarray(0, 3)], [0xff, 0xd8, 0xff], "JPEG magic bytes");

    const input = (await emu.state()).inputs.find((i) => i.uid === li.uid);
    assert.deepEqual(input.playback, { state: "live", lastError: null });
    const running = packagers();
    assert.equal(running.length, 1, JSON.stringify(running));
    assert.equal(running[0].ppid, emu.child.pid);
    assert.ok(running[0].args.includes(li.rtmps.streamKey));

    // The playlist slides: the media sequence grows once the window is full (6 × 1 s).
    const firstSequence = mediaSequence(playlist);
    await waitFor("the media sequence to grow", async () => {
      const r = await get(li.playback.hls);
      return r.status === 200 && mediaSequence(r.body.toString()) > firstSequence;
    }, { timeoutMs: 15_000, intervalMs: 500 });

    await publisher.stop();
    await waitFor("the playlist to be gone", async () => (await get(li.playback.hls)).status === 404, { timeoutMs: 5_000 });
    const gone = await get(li.playback.hls);
    assert.equal(gone.json.error, "NOT_LIVE");
    assert.equal((await get(thumbnailUrl)).status, 404);
    assert.equal((await get(new URL(segments.at(-1), li.playback.hls).href)).status, 404);
    await waitFor("no packager ffmpeg and no files left", () => packagers().length === 0 && readdirSync(emu.dir()).length === 0, { timeoutMs: 5_000 });
    assert.equal((await emu.state()).inputs.find((i) => i.uid === li.uid).playback, null);
  });

  test("one ffmpeg per live input; disabling or deleting a live input stops it and removes its files", async () => {
    const [b, c] = [await emu.create(), await emu.create()];
    publish(`${emu.rtmp}${b.rtmps.streamKey}`);
    publish(`${emu.rtmp}${c.rtmps.streamKey}`);
    for (const li of [b, c]) {
      await waitFor(`${li.uid}'s playlist`, async () => (await get(li.playback.hls)).status === 200, { timeoutMs: 15_000, intervalMs: 200 });
    }
    const running = packagers();
    assert.equal(running.length, 2, JSON.stringify(running));
    assert.ok(running.some((p) => p.args.includes(b.rtmps.streamKey)) && running.some((p) => p.args.includes(c.rtmps.streamKey)));
    assert.equal(readdirSync(emu.dir()).length, 2);

    assert.equal((await emu.call("PUT", b.uid, { enabled: false })).status, 200);
    const disabled = await get(b.playback.hls);
    assert.equal(disabled.status, 404);
    assert.match(disabled.json.message, /disabled/);
    assert.equal((await emu.call("DELETE", c.uid)).status, 200);
    const deleted = await get(c.playback.hls);
    assert.equal(deleted.status, 404);
    assert.equal(deleted.json.error, "NOT_FOUND");
    await waitFor("both packagers gone, files removed", () => packagers().length === 0 && readdirSync(emu.dir()).length === 0, { timeoutMs: 5_000 });
  });

  test("stopping the emulator (SIGTERM) while live leaves no ffmpeg and no files", async () => {
    const li = await emu.create();
    publish(`${emu.rtmp}${li.rtmps.streamKey}`);
    await waitFor("the playlist", async () => (await get(li.playback.hls)).status === 200, { timeoutMs: 15_000, intervalMs: 200 });
    assert.equal(packagers().length, 1);
    const dir = emu.dir();
    emu.child.kill("SIGTERM");
    const { code } = await emu.exited;
    assert.equal(code, 0, emu.output());
    assert.deepEqual(packagers(), []);
    assert.equal(existsSync(dir), false, "the process's playback directory is removed");
  });
});
