// RecordingWriter (Node only): the recording of each video, as Cloudflare makes it from a live input. The live
// packager's ffmpeg (playback.ts) writes it as one more output of its single read of the ingest: an HLS EVENT
// playlist per video uid, growing while live. The video model says only "started", "continued" (a reconnect
// within `recording.timeoutSeconds`: the next ffmpeg run appends after an #EXT-X-DISCONTINUITY) and "ended"
// (the window passed, or the input was deleted): then, once no ffmpeg writes it any more, #EXT-X-ENDLIST is
// appended, the duration is the sum of its segments, and one short ffmpeg remuxes it into a static DASH
// manifest and takes its first frame as the thumbnail. Every writer of one recording runs in turn (a
// reconnect's ffmpeg starts only after the previous one has exited), so the playlist never has two authors.

import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, rmSync } from "node:fs";
import { readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import path from "node:path";
import { kill } from "./ffmpeg-relay.ts";
import { CORS_HEADERS, cacheControlFor, contentTypeFor, playbackError } from "./playback-http.ts";

/** A recording's segments end at the first keyframe after this (VOD segments need not be as short as live ones). */
export const RECORDING_SEGMENT_SECONDS = 2;
/** How long a request for a recording's first playlist waits for ffmpeg to write it. */
const FIRST_PLAYLIST_WAIT_MS = 8000;
const PLAYLIST = "video.m3u8";

export type RecordingState = "recording" | "finishing" | "ended" | "failed";

/** What the finished recording measured (null before it ended, or with no media: a control-API connect). */
export interface RecordingSummary {
  state: RecordingState;
  /** Sum of the playlist's #EXTINF durations, in seconds; null while recording or with no media. */
  durationSeconds: number | null;
  segments: number;
  discontinuities: number;
  /** Bytes of the HLS segments; null until ended. */
  sizeBytes: number | null;
  /** The video's frame size (ffprobe of the first segment); null for audio only or until ended. */
  width: number | null;
  height: number | null;
  lastError: string | null;
}

/** One ffmpeg run's share of a recording: its HLS output arguments; `detach()` once that ffmpeg has exited. */
export interface RecordingLease {
  videoUid: string;
  /** `-f hls …  <dir>/video.m3u8`: put after the output's `-map` and codec options. */
  output: string[];
  detach(): void;
}

interface Recording {
  videoUid: string;
  inputUid: string;
  dir: string;
  state: RecordingState;
  /** Serialises the recording's writers: each ffmpeg run, then the finishing step. */
  chain: Promise<void>;
  finished: Promise<RecordingSummary> | null;
  summary: RecordingSummary;
  finisher: ChildProcess | null;
  deleted: boolean;
}

export interface RecordingWriterOptions {
  /** Where recordings are kept, one directory per video uid (created with the first; removed by close()). */
  dir: string;
  binary?: string;
  log?: (line: string) => void;
}

export class RecordingWriter {
  readonly dir: string;
  private readonly binary: string;
  private readonly ffprobe: string;
  private readonly log: (line: string) => void;
  private recordings = new Map<string, Recording>();
  /** Live input uid → the video its ingest records into now. */
  private current = new Map<string, string>();
  /** Exits of the finishing ffmpegs still running. */
  private finishers = new Set<Promise<void>>();
  private closed = false;

  constructor(opts: RecordingWriterOptions) {
    this.dir = opts.dir;
    this.binary = opts.binary ?? "ffmpeg";
    this.ffprobe = path.join(path.dirname(this.binary), path.basename(this.binary).replace(/ffmpeg/, "ffprobe"));
    this.log = opts.log ?? (() => undefined);
  }

  /** A new video began for this input's ingest (the input's previous one, if still open, has ended). */
  started(inputUid: string, videoUid: string): void {
    if (this.closed) return;
    const previous = this.current.get(inputUid);
    if (previous !== undefined && previous !== videoUid) void this.ended(previous);
    if (!this.recordings.has(videoUid)) this.recordings.set(videoUid, this.newRecording(inputUid, videoUid));
    this.current.set(inputUid, videoUid);
  }

  /** The ingest reconnected within the window: the next ffmpeg run appends to the same playlist. */
  continued(inputUid: string, videoUid: string): void {
    const rec = this.recordings.get(videoUid);
    if (rec && rec.state !== "recording") return; // already ended: a late event changes nothing
    this.started(inputUid, videoUid);
  }

  /**
   * The video ended. Once its last ffmpeg has exited: #EXT-X-ENDLIST, the duration, then DASH and the
   * thumbnail. Resolves with the summary (also for an unknown uid: state "failed", nothing recorded).
   */
  ended(videoUid: string): Promise<RecordingSummary> {
    const rec = this.recordings.get(videoUid);
    if (!rec) return Promise.resolve(emptySummary("failed", `No recording of video ${videoUid}`));
    if (this.current.get(rec.inputUid) === videoUid) this.current.delete(rec.inputUid);
    if (rec.finished) return rec.finished;
    rec.state = "finishing";
    rec.summary = { ...rec.summary, state: "finishing" };
    const finished = rec.chain.then(() => this.finish(rec));
    rec.chain = finished.then(() => undefined);
    rec.finished = finished;
    return finished;
  }

  /** The video was deleted: its files go (a writer still attached loses its output and is not re-attached). */
  async deleted(videoUid: string): Promise<void> {
    const rec = this.recordings.get(videoUid);
    if (!rec) return;
    this.recordings.delete(videoUid);
    if (this.current.get(rec.inputUid) === videoUid) this.current.delete(rec.inputUid);
    rec.deleted = true;
    if (rec.finisher) kill(rec.finisher);
    await rm(rec.dir, { recursive: true, force: true });
  }

  /** Forgets every recording and removes their files (the emulator's reset). */
  async clear(): Promise<void> {
    await Promise.all([...this.recordings.keys()].map((uid) => this.deleted(uid)));
  }

  /**
   * For an ffmpeg run about to package this input's ingest: the output arguments for the video it records
   * into, once every earlier writer of that recording has exited. Null if the input records nothing now.
   */
  async attach(inputUid: string): Promise<RecordingLease | null> {
    const videoUid = this.current.get(inputUid);
    const rec = videoUid === undefined ? undefined : this.recordings.get(videoUid);
    if (!rec || rec.state !== "recording" || this.closed) return null;
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    const prior = rec.chain;
    rec.chain = prior.then(() => released);
    await prior;
    if (rec.deleted || this.closed) {
      release();
      return null;
    }
    const append = (await fileSize(path.join(rec.dir, PLAYLIST))) > 0;
    const tag = randomBytes(3).toString("hex");
    let detached = false;
    return {
      videoUid: rec.videoUid,
      output: recordingOutputArgs(rec.dir, tag, append),
      detach: () => {
        if (detached) return;
        detached = true;
        release();
      },
    };
  }

  summary(videoUid: string): RecordingSummary | null {
    return this.recordings.get(videoUid)?.summary ?? null;
  }

  has(videoUid: string): boolean {
    return this.recordings.has(videoUid);
  }

  /** The finishing ffmpeg processes running now (for tests). */
  pids(): number[] {
    return [...this.recordings.values()].flatMap((r) => (r.finisher?.pid !== undefined ? [r.finisher.pid] : []));
  }

  /**
   * `/playback/<videoUid>/…`: the playlist (growing while recording) and its segments; DASH and the
   * thumbnail once the recording has ended and been remuxed.
   */
  async serve(videoUid: string, file: string): Promise<Response> {
    const rec = this.recordings.get(videoUid);
    if (!rec) return playbackError(404, "NO_MEDIA", `Video ${videoUid}'s media is not on this emulator: it was recorded before the emulator restarted (media is not kept across restarts)`);
    const isSegment = /\.(ts|m4s)$/.test(file) && !file.startsWith("init-");
    const fromFinisher = file === "video.mpd" || file === "thumbnail.jpg" || file.endsWith(".m4s");
    if (fromFinisher && rec.state !== "ended") {
      if (rec.state === "failed") return playbackError(404, "NO_MEDIA", `Video ${videoUid} has no ${file}: ${rec.summary.lastError ?? "nothing was recorded"}`);
      return playbackError(503, "NOT_READY", `Video ${videoUid}'s ${file} is made when its recording ends; try again shortly`, { "retry-after": "2" });
    }
    const read = async () => {
      const body = await readFile(path.join(rec.dir, file)).catch(() => null);
      return body && body.length > 0 ? body : null;
    };
    let body = await read();
    // The first playlist appears a few seconds after the publish starts (as for the live one).
    const deadline = Date.now() + FIRST_PLAYLIST_WAIT_MS;
    while (!body && file === PLAYLIST && rec.state === "recording" && !rec.deleted && Date.now() < deadline) {
      await sleep(100);
      body = await read();
    }
    if (rec.deleted) return playbackError(404, "NOT_FOUND", `Video ${videoUid} was deleted`);
    if (!body) {
      if (file === PLAYLIST && rec.state === "recording") return playbackError(503, "NOT_READY", `ffmpeg has not written video ${videoUid}'s playlist yet; try again shortly`, { "retry-after": "1" });
      if (file === PLAYLIST || rec.summary.segments === 0) return playbackError(404, "NO_MEDIA", `Video ${videoUid} has no recorded media (a connection made through the control API carries none)`);
      if (file === "thumbnail.jpg") return playbackError(404, "NO_VIDEO", `Video ${videoUid} is audio only: there is no thumbnail`);
      return playbackError(404, "NOT_FOUND", `Video ${videoUid} has no ${file}`);
    }
    // An ended recording's files never change again; while recording, the playlist does.
    const cacheControl = isSegment || rec.state === "ended" ? "public, max-age=3600" : cacheControlFor(file);
    return new Response(body, { headers: { "content-type": contentTypeFor(file), "content-length": String(body.length), "cache-control": cacheControl, ...CORS_HEADERS } });
  }

  /**
   * Stops the finishing ffmpegs, waits for them and removes every recording (the emulator is stopping;
   * the packagers writing recordings are stopped by their own close()).
   */
  async close(): Promise<void> {
    this.closed = true;
    for (const rec of this.recordings.values()) if (rec.finisher) kill(rec.finisher);
    while (this.finishers.size > 0) await Promise.allSettled([...this.finishers]);
    this.recordings.clear();
    this.current.clear();
    rmSync(this.dir, { recursive: true, force: true });
  }

  private newRecording(inputUid: string, videoUid: string): Recording {
    const dir = path.join(this.dir, videoUid.replace(/[^A-Za-z0-9_-]/g, "_"));
    mkdirSync(dir, { recursive: true });
    return { videoUid, inputUid, dir, state: "recording", chain: Promise.resolve(), finished: null, summary: emptySummary("recording", null), finisher: null, deleted: false };
  }

  /** #EXT-X-ENDLIST, the duration, then DASH + thumbnail (a failure there leaves the HLS recording whole). */
  private async finish(rec: Recording): Promise<RecordingSummary> {
    const file = path.join(rec.dir, PLAYLIST);
    const text = await readFile(file, "utf8").catch(() => null);
    if (rec.deleted) return (rec.summary = emptySummary("failed", "deleted"));
    if (text === null) {
      rec.state = "failed";
      return (rec.summary = emptySummary("failed", "nothing was recorded (no media reached the packager)"));
    }
    const parsed = parsePlaylist(text);
    if (!parsed.ended) {
      const tmp = `${file}.endlist.tmp`;
      await writeFile(tmp, `${text.trimEnd()}\n#EXT-X-ENDLIST\n`);
      await rename(tmp, file);
    }
    const sizes = await Promise.all(parsed.segments.map((name) => fileSize(path.join(rec.dir, name))));
    rec.summary = {
      ...emptySummary("finishing", null),
      durationSeconds: round3(parsed.durationSeconds),
      segments: parsed.segments.length,
      discontinuities: parsed.discontinuities,
      sizeBytes: sizes.reduce((a, b) => a + b, 0),
    };
    if (parsed.segments.length > 0 && !this.closed) {
      const probe = await this.tool(rec, this.ffprobe, ["-v", "error", "-select_streams", "v:0", "-show_entries", "stream=width,height", "-of", "csv=p=0", path.join(rec.dir, parsed.segments[0]!)]);
      const size = /^(\d+),(\d+)/.exec(probe.stdout.trim());
      if (size) [rec.summary.width, rec.summary.height] = [Number(size[1]), Number(size[2])];
    }
    if (parsed.segments.length > 0 && !this.closed) {
      const list = path.join(rec.dir, "concat.txt");
      await writeFile(list, parsed.segments.map((s) => `file '${s.replace(/'/g, "'\\''")}'\n`).join(""));
      let error = await this.remux(rec, list, true);
      // An audio-only recording has no frame for a thumbnail: ffmpeg refuses that output.
      if (error && /does not contain any stream|matches no streams/i.test(error)) error = await this.remux(rec, list, false);
      await rm(list, { force: true });
      if (error) {
        rec.summary.lastError = error;
        this.log(`stream emulator: recording ${rec.videoUid}: DASH/thumbnail failed: ${error}`);
      }
    }
    rec.state = "ended";
    rec.summary = { ...rec.summary, state: "ended" };
    return rec.summary;
  }

  /** One ffmpeg: the segments in order (the concat demuxer joins across discontinuities) → static DASH + thumbnail. */
  private async remux(rec: Recording, list: string, thumbnail: boolean): Promise<string | null> {
    const run = await this.tool(rec, this.binary, finisherArgs(rec.dir, list, thumbnail));
    return run.error;
  }

  /** Runs one short ffmpeg/ffprobe for a recording (killed by delete and close); error: what it said on failure. */
  private tool(rec: Recording, binary: string, args: string[]): Promise<{ stdout: string; error: string | null }> {
    if (this.closed || rec.deleted) return Promise.resolve({ stdout: "", error: "stopped" });
    return new Promise((resolve) => {
      let child: ChildProcess;
      try {
        child = spawn(binary, args, { stdio: ["ignore", "pipe", "pipe"] });
      } catch (e) {
        resolve({ stdout: "", error: e instanceof Error ? e.message : String(e) });
        return;
      }
      rec.finisher = child;
      const exit = new Promise<void>((done) => child.once("close", () => done()));
      this.finishers.add(exit);
      void exit.then(() => this.finishers.delete(exit));
      // ffmpeg's complaint may span lines ("Stream map '0:v:0' matches no streams." then a hint): keep the tail.
      let stdout = "";
      let stderr = "";
      child.stdout?.on("data", (chunk: Buffer) => (stdout = (stdout + chunk.toString()).slice(-2000)));
      child.stderr?.on("data", (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-2000)));
      child.on("error", (e) => (stderr += e.message));
      child.on("close", (code, signal) => {
        rec.finisher = null;
        const said = stderr.split(/\r?\n/).map((l) => l.trim()).filter(Boolean).join(" ");
        resolve({ stdout, error: code === 0 ? null : said || `${path.basename(binary)} exited with ${code ?? signal}` });
      });
    });
  }
}

/** The recording output of a packaging run: an EVENT playlist that keeps every segment; no ENDLIST (added at the end). */
export function recordingOutputArgs(dir: string, tag: string, append: boolean): string[] {
  // append_list: a later run (a reconnect, or a restarted ffmpeg) adds its segments after an #EXT-X-DISCONTINUITY.
  const flags = `${append ? "append_list+" : ""}temp_file+independent_segments+omit_endlist`;
  return [
    "-f",
    "hls",
    "-hls_time",
    String(RECORDING_SEGMENT_SECONDS),
    "-hls_list_size",
    "0",
    "-hls_playlist_type",
    "event",
    "-hls_flags",
    flags,
    "-hls_segment_filename",
    path.join(dir, `rec-${tag}-%05d.ts`),
    path.join(dir, PLAYLIST),
  ];
}

/** The finished recording's DASH (static, fMP4) and, with `thumbnail`, its first frame as JPEG (≤ 640 px wide). */
export function finisherArgs(dir: string, concatList: string, thumbnail: boolean): string[] {
  const at = (name: string) => path.join(dir, name);
  return [
    "-nostdin",
    "-loglevel",
    "error",
    "-f",
    "concat",
    "-i",
    concatList,
    "-map",
    "0:v?",
    "-map",
    "0:a?",
    "-c",
    "copy",
    // MPEG-TS codec tags are not MP4's.
    "-tag:v",
    "avc1",
    "-tag:a",
    "mp4a",
    "-f",
    "dash",
    "-seg_duration",
    String(RECORDING_SEGMENT_SECONDS),
    "-use_template",
    "1",
    "-use_timeline",
    "1",
    "-init_seg_name",
    "init-$RepresentationID$.m4s",
    "-media_seg_name",
    "chunk-$RepresentationID$-$Number%05d$.m4s",
    at("video.mpd"),
    ...(thumbnail ? ["-map", "0:v:0", "-frames:v", "1", "-vf", "scale='min(640,iw)':-2", "-q:v", "5", "-update", "1", at("thumbnail.jpg")] : []),
  ];
}

export interface ParsedPlaylist {
  segments: string[];
  durationSeconds: number;
  discontinuities: number;
  ended: boolean;
}

/** The media playlist's segment URIs, the sum of their #EXTINF durations, its discontinuities and whether it has #EXT-X-ENDLIST. */
export function parsePlaylist(text: string): ParsedPlaylist {
  const segments: string[] = [];
  let durationSeconds = 0;
  let discontinuities = 0;
  let ended = false;
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line.startsWith("#EXTINF:")) durationSeconds += Number.parseFloat(line.slice(8)) || 0;
    else if (line === "#EXT-X-DISCONTINUITY") discontinuities++;
    else if (line === "#EXT-X-ENDLIST") ended = true;
    else if (line && !line.startsWith("#")) segments.push(line);
  }
  return { segments, durationSeconds, discontinuities, ended };
}

function emptySummary(state: RecordingState, lastError: string | null): RecordingSummary {
  return { state, durationSeconds: null, segments: 0, discontinuities: 0, sizeBytes: null, width: null, height: null, lastError };
}

const round3 = (n: number) => Math.round(n * 1000) / 1000;

async function fileSize(file: string): Promise<number> {
  return stat(file).then(
    (s) => s.size,
    () => 0,
  );
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
