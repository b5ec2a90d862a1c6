// The recording writer (emulator/recording-writer.ts) on its own, with real ffmpeg: a video's runs (a start,
// a reconnect within the window) write one HLS EVENT playlist with a discontinuity between them; its end
// appends #EXT-X-ENDLIST once its last writer has exited, measures the duration from the segments, and
// remuxes it into static DASH with a thumbnail; writers of one recording take turns; deleting and closing
// remove the files and leave no ffmpeg. The runs here are ffmpeg encoding a test pattern with the writer's
// output arguments, as the live packager does with the ingest. Run: `node --test test/e2e/recording-writer.test.mjs`.
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { register } from "tsx/esm/api";
import { ffmpegAvailable } from "./stack.mjs";

register();
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const { RecordingWriter, parsePlaylist } = await import(path.join(root, "emulator/recording-writer.ts"));
const NO_FFMPEG = ffmpegAvailable() ? false : "ffmpeg is not installed";

const base = mkdtempSync(path.join(tmpdir(), "recording-writer-"));
after(() => rmSync(base, { recursive: true, force: true }));
let dirs = 0;
const newWriter = () => new RecordingWriter({ dir: path.join(base, `w${++dirs}`) });

/** One packaging run: `seconds` of test pattern (1 s keyframes) into the lease's output, like the packager's ffmpeg. */
function run(lease, seconds, { video = true } = {}) {
  const args = ["-nostdin", "-loglevel", "error"];
  if (video) args.push("-f", "lavfi", "-i", "testsrc=size=320x240:rate=15");
  args.push("-f", "lavfi", "-i", "sine=frequency=440", "-t", String(seconds));
  if (video) args.push("-map", "0:v", "-map", "1:a", "-c:v", "libx264", "-preset", "ultrafast", "-g", "15");
  args.push("-c:a", "aac", ...lease.output);
  const child = spawn("ffmpeg", args, { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (c) => (stderr += c));
  return new Promise((resolve, reject) =>
    child.on("close", (code) => {
      lease.detach();
      if (code === 0) resolve();
      else reject(new Error(`ffmpeg exited ${code}: ${stderr}`));
    }),
  );
}

const ffprobeDuration = (url) => Number(execFileSync("ffprobe", ["-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", url], { encoding: "utf8" }).trim());
const text = async (response) => Buffer.from(await response.arrayBuffer()).toString();
const settledWithin = (promise, ms) => Promise.race([promise.then(() => true), new Promise((r) => setTimeout(() => r(false), ms))]);

describe("recording writer", { skip: NO_FFMPEG }, () => {
  test("a start and a reconnect make one EVENT playlist with one discontinuity; the end appends ENDLIST and measures the segments", async () => {
    const writer = newWriter();
    writer.started("in1", "vid1");
    await run(await writer.attach("in1"), 3);
    let playlist = await text(await writer.serve("vid1", "video.m3u8"));
    assert.match(playlist, /#EXT-X-PLAYLIST-TYPE:EVENT/);
    assert.doesNotMatch(playlist, /#EXT-X-ENDLIST/, "no ENDLIST while the video may still continue");
    assert.doesNotMatch(playlist, /#EXT-X-DISCONTINUITY/, "the first run starts the playlist clean");

    writer.continued("in1", "vid1");
    await run(await writer.attach("in1"), 4);
    playlist = await text(await writer.serve("vid1", "video.m3u8"));
    const live = parsePlaylist(playlist);
    assert.equal(live.discontinuities, 1, playlist);
    assert.equal(live.ended, false);
    assert.equal((await writer.serve("vid1", "video.mpd")).status, 503, "DASH is made when the recording ends");
    assert.equal(writer.summary("vid1").state, "recording");

    const summary = await writer.ended("vid1");
    assert.equal(summary.state, "ended");
    assert.equal(summary.discontinuities, 1);
    assert.ok(Math.abs(summary.durationSeconds - 7) <= 0.5, `duration ${summary.durationSeconds}`);
    assert.deepEqual([summary.width, summary.height], [320, 240]);
    const file = path.join(writer.dir, "vid1", "video.m3u8");
    const final = readFileSync(file, "utf8");
    assert.match(final, /#EXT-X-ENDLIST\n$/);
    assert.equal(final.match(/#EXT-X-ENDLIST/g).length, 1);
    assert.ok(Math.abs(ffprobeDuration(file) - summary.durationSeconds) < 0.1, "ffprobe agrees with the sum of the segments");
    assert.equal(summary.durationSeconds, Math.round(parsePlaylist(final).durationSeconds * 1000) / 1000);
    const bytes = parsePlaylist(final).segments.reduce((sum, name) => sum + statSync(path.join(writer.dir, "vid1", name)).size, 0);
    assert.equal(summary.sizeBytes, bytes);

    // Ended and remuxed: static DASH covering the whole recording (across the discontinuity), and a thumbnail.
    const mpd = await writer.serve("vid1", "video.mpd");
    assert.equal(mpd.status, 200);
    assert.equal(mpd.headers.get("content-type"), "application/dash+xml");
    const manifest = await text(mpd);
    assert.match(manifest, /type="static"/);
    assert.ok(Math.abs(Number(/mediaPresentationDuration="PT([\d.]+)S"/.exec(manifest)[1]) - summary.durationSeconds) <= 0.5, manifest);
    // (ffprobe 5.1's DASH demuxer reads the duration in whole seconds.)
    assert.ok(Math.abs(ffprobeDuration(path.join(writer.dir, "vid1", "video.mpd")) - summary.durationSeconds) <= 1);
    const thumb = await writer.serve("vid1", "thumbnail.jpg");
    assert.equal(thumb.status, 200);
    assert.deepEqual([...Buffer.from(await thumb.arrayBuffer()).subarray(0, 3)], [0xff, 0xd8, 0xff]);
    const segment = await writer.serve("vid1", parsePlaylist(final).segments[0]);
    assert.equal(segment.status, 200);
    assert.equal(segment.headers.get("content-type"), "video/mp2t");
    assert.equal(segment.headers.get("access-control-allow-origin"), "*");

    // Ending twice, or a late "continued", changes nothing.
    assert.equal(await writer.ended("vid1"), summary);
    writer.continued("in1", "vid1");
    assert.equal(await writer.attach("in1"), null, "an ended recording takes no more writers");
    assert.equal(readFileSync(file, "utf8"), final);
    await writer.close();
    assert.equal(existsSync(writer.dir), false);
  });

  test("a writer waits for the recording's previous writer to exit; the end waits for the last", async () => {
    const writer = newWriter();
    writer.started("in1", "vid1");
    const first = await writer.attach("in1");
    writer.continued("in1", "vid1");
    const second = writer.attach("in1");
    assert.equal(await settledWithin(second, 200), false, "the reconnect's writer is held while the first is attached");
    await run(first, 2);
    const lease = await second;
    assert.match(lease.output.join(" "), /-hls_flags append_list\+/);
    const ended = writer.ended("vid1");
    const running = run(lease, 2);
    assert.equal(await settledWithin(ended, 200), false, "ENDLIST waits for the attached writer");
    await running;
    const summary = await ended;
    assert.equal(summary.discontinuities, 1);
    assert.ok(Math.abs(summary.durationSeconds - 4) <= 0.5, `duration ${summary.durationSeconds}`);
    await writer.close();
  });

  test("a new video of the same input gets its own playlist; deleting a video removes its files", async () => {
    const writer = newWriter();
    writer.started("in1", "vid1");
    await run(await writer.attach("in1"), 2);
    writer.started("in1", "vid2"); // past the window: vid1 ends by itself
    await run(await writer.attach("in1"), 3);
    const [one, two] = await Promise.all([writer.ended("vid1"), writer.ended("vid2")]);
    assert.ok(Math.abs(one.durationSeconds - 2) <= 0.5 && Math.abs(two.durationSeconds - 3) <= 0.5, JSON.stringify([one, two]));
    assert.equal(one.discontinuities + two.discontinuities, 0);
    await writer.deleted("vid1");
    assert.equal(existsSync(path.join(writer.dir, "vid1")), false);
    assert.equal((await writer.serve("vid1", "video.m3u8")).status, 404);
    assert.equal((await writer.serve("vid2", "video.m3u8")).status, 200);
    await writer.close();
  });

  test("no media (a control-API connect) ends with no duration; an audio-only recording has no thumbnail", async () => {
    const writer = newWriter();
    writer.started("in1", "empty");
    const none = await writer.ended("empty");
    assert.equal(none.durationSeconds, null);
    const missing = await writer.serve("empty", "video.m3u8");
    assert.equal(missing.status, 404);
    assert.equal((await missing.json()).error, "NO_MEDIA");

    writer.started("in2", "audio");
    await run(await writer.attach("in2"), 2, { video: false });
    const audio = await writer.ended("audio");
    assert.equal(audio.state, "ended");
    assert.ok(Math.abs(audio.durationSeconds - 2) <= 0.5, `duration ${audio.durationSeconds}`);
    assert.deepEqual([audio.width, audio.height], [null, null]);
    assert.equal((await writer.serve("audio", "video.mpd")).status, 200);
    const thumb = await writer.serve("audio", "thumbnail.jpg");
    assert.equal(thumb.status, 404);
    assert.equal((await thumb.json()).error, "NO_VIDEO");
    await writer.close();
    assert.deepEqual(writer.pids(), []);
  });
});
