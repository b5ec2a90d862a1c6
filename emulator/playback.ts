// PlaybackDriver with ffmpeg (Node only): while a live input's RTMP ingest is connected, one ffmpeg per
// input pulls it from the local RTMP server (as relays do) and writes, into a per-session temp directory,
// live HLS (MPEG-TS segments, sliding playlist), live DASH (fMP4) and a thumbnail JPEG, all from one read of
// the ingest. H.264/AAC (what OBS, the glasses and the README's test pattern send) is copied, not
// transcoded: the only decoding is of keyframes, for the thumbnail. ffmpeg is stopped and the directory
// removed when the publish ends (including the emulator ending it: input deleted or disabled, keys rotated,
// reset) and when the server closes.

import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { kill } from "./ffmpeg-relay.ts";
import { CORS_HEADERS, cacheControlFor, contentTypeFor, playbackError } from "./playback-http.ts";
import { RecordingWriter, type RecordingLease } from "./recording-writer.ts";
import type { PlaybackDriver, PlaybackStatus } from "./types.ts";

/** HLS `hls_time`: a segment ends at the first keyframe after 1 s, so segments last max(1 s, the GOP). */
export const HLS_SEGMENT_SECONDS = 1;
/** Segments in the sliding HLS playlist and the DASH window. */
export const PLAYLIST_SEGMENTS = 6;
/** How long a playlist, manifest or thumbnail request waits for ffmpeg's first file before a 503. */
const FIRST_FILE_WAIT_MS = 8000;
/** How long to wait for the publisher's onMetaData (codec ids) before assuming H.264/AAC. */
const CODEC_WAIT_MS = 1000;
const RESTART_DELAY_MS = 1000;
/** How long a stopped packager may take to drain its ended input and write its trailers before SIGTERM. */
const EXIT_WITHIN_MS = 1500;
/** Consecutive ffmpeg runs that wrote no playlist before the session is given up as failed. */
const MAX_FAILURES = 4;

/** FLV onMetaData codec ids (numbers, or FourCC strings from some encoders) that MPEG-TS/fMP4 take as they are. */
const COPY_VIDEO = new Set<unknown>([7, "7", "avc1", "h264", "H264"]);
const COPY_AUDIO = new Set<unknown>([10, "10", "mp4a", "aac", "AAC", 2, "2", ".mp3", "mp3"]);
const unknownCodec = (id: unknown) => id === undefined || id === null || id === 0 || id === "";

export interface PublishSpec {
  inputUid: string;
  /** The ingest session this packaging belongs to: a late stop from an older session is ignored. */
  owner: string;
  /** Where ffmpeg reads the ingest, e.g. rtmp://127.0.0.1:1935/live/<streamKey>. */
  source: string;
  /** The publisher's codec ids from onMetaData, once it has sent them. */
  codecs?: () => { video: unknown; audio: unknown };
}

interface Session {
  uid: string;
  owner: string;
  dir: string;
  /** Distinguishes this session's segment names (cacheable) from an earlier session's of the same input. */
  tag: string;
  attempt: number;
  child: ChildProcess | null;
  childClosed: Promise<void> | null;
  startedAt: number;
  transcodeVideo: boolean;
  transcodeAudio: boolean;
  /** An audio-only ingest: no thumbnail output (ffmpeg refuses an output with no stream). */
  audioOnly: boolean;
  failures: number;
  failed: boolean;
  lastError: string | null;
  stopped: boolean;
  timer: ReturnType<typeof setTimeout> | null;
}

export interface FfmpegPlaybackOptions {
  /** Parent of the per-process directory. Default `<os tmpdir>/stream-emulator-playback`. */
  root?: string;
  binary?: string;
  /** Packaging failures (ffmpeg's last stderr line). Default: nothing. */
  log?: (line: string) => void;
}

export class FfmpegPlayback implements PlaybackDriver {
  /** This process's directory; each session gets a subdirectory `<uid>-XXXXXX`. */
  readonly dir: string;
  private readonly binary: string;
  private readonly log: (line: string) => void;
  /** Each video's recording, which every packaging run also writes (`<dir>/recordings/<videoUid>/`). */
  readonly recordings: RecordingWriter;
  private sessions = new Map<string, Session>();
  private pending = new Set<Promise<void>>();
  private closed = false;

  constructor(opts: FfmpegPlaybackOptions = {}) {
    const root = opts.root ?? path.join(os.tmpdir(), "stream-emulator-playback");
    this.binary = opts.binary ?? "ffmpeg";
    this.log = opts.log ?? (() => undefined);
    mkdirSync(root, { recursive: true });
    sweepDeadProcesses(root);
    this.dir = mkdtempSync(path.join(root, `${process.pid}-`));
    this.recordings = new RecordingWriter({ dir: path.join(this.dir, "recordings"), binary: this.binary, log: this.log });
  }

  /** Starts packaging an input's ingest (replacing any earlier session of that input). */
  start(spec: PublishSpec): void {
    if (this.closed) return;
    this.stop(spec.inputUid);
    const session: Session = {
      uid: spec.inputUid,
      owner: spec.owner,
      dir: mkdtempSync(path.join(this.dir, `${spec.inputUid}-`)),
      tag: randomBytes(3).toString("hex"),
      attempt: 0,
      child: null,
      childClosed: null,
      startedAt: 0,
      transcodeVideo: false,
      transcodeAudio: false,
      audioOnly: false,
      failures: 0,
      failed: false,
      lastError: null,
      stopped: false,
      timer: null,
    };
    this.sessions.set(spec.inputUid, session);
    // The publisher sends onMetaData just after the publish is accepted; wait a moment for its codec ids.
    const deadline = Date.now() + CODEC_WAIT_MS;
    const begin = () => {
      session.timer = null;
      if (session.stopped) return;
      const codecs = spec.codecs?.();
      if (codecs && unknownCodec(codecs.video) && unknownCodec(codecs.audio) && Date.now() < deadline) {
        session.timer = setTimeout(begin, 50);
        return;
      }
      session.transcodeVideo = codecs !== undefined && !unknownCodec(codecs.video) && !COPY_VIDEO.has(codecs.video);
      session.transcodeAudio = codecs !== undefined && !unknownCodec(codecs.audio) && !COPY_AUDIO.has(codecs.audio);
      this.run(session, spec.source);
    };
    begin();
  }

  /** Stops an input's packaging and removes its files; with `owner`, only if that session still owns it. */
  stop(inputUid: string, owner?: string): void {
    const session = this.sessions.get(inputUid);
    if (!session || (owner !== undefined && session.owner !== owner)) return;
    this.sessions.delete(inputUid);
    session.stopped = true;
    if (session.timer) clearTimeout(session.timer);
    const done = (async () => {
      if (session.child) {
        // Its RTMP input ends with the publish (rtmp.ts closes the players): let it finish the files itself.
        kill(session.child, { exitWithinMs: EXIT_WITHIN_MS });
        await session.childClosed;
      }
      await rm(session.dir, { recursive: true, force: true });
    })();
    this.pending.add(done);
    void done.finally(() => this.pending.delete(done));
  }

  /** Stops everything, waits for every ffmpeg to exit and removes this process's directory. */
  async close(): Promise<void> {
    this.closed = true;
    for (const uid of [...this.sessions.keys()]) this.stop(uid);
    while (this.pending.size > 0) await Promise.allSettled([...this.pending]);
    await this.recordings.close();
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** ffmpeg processes running now (for tests and diagnostics): packagers, and recordings being finished. */
  pids(): number[] {
    return [...this.sessions.values()].flatMap((s) => (s.child?.pid !== undefined ? [s.child.pid] : [])).concat(this.recordings.pids());
  }

  /** `/playback/<videoUid>/…` of a video (the emulator checked it exists): its recording. */
  serveRecording(videoUid: string, file: string): Promise<Response> {
    return this.recordings.serve(videoUid, file);
  }

  status(inputUid: string): PlaybackStatus | null {
    const session = this.sessions.get(inputUid);
    if (!session) return null;
    if (session.failed) return { state: "failed", lastError: session.lastError };
    return { state: fileSize(path.join(session.dir, "video.m3u8")) > 0 ? "live" : "starting", lastError: session.lastError };
  }

  async serve(inputUid: string, file: string, _request: Request): Promise<Response> {
    const session = this.sessions.get(inputUid);
    if (!session) {
      return playbackError(
        404,
        "NO_MEDIA",
        `Live input ${inputUid} is connected, but no RTMP ingest is being packaged for it (a connection made through the control API carries no media): publish to its RTMP URL`,
      );
    }
    if (file === "thumbnail.jpg" && session.audioOnly) {
      return playbackError(404, "NO_VIDEO", `Live input ${inputUid}'s ingest is audio only: there is no thumbnail`);
    }
    const isSegment = /\.(ts|m4s)$/.test(file);
    const read = async () => {
      const body = await readFile(path.join(session.dir, file)).catch(() => null);
      return body && body.length > 0 ? body : null;
    };
    let body = await read();
    // Playlists, the manifest and the thumbnail appear a few seconds after the publish starts: a player
    // that asks at once is kept waiting rather than given an error it may not retry.
    const deadline = Date.now() + FIRST_FILE_WAIT_MS;
    while (!body && !isSegment && !session.stopped && !session.failed && Date.now() < deadline) {
      await sleep(100);
      body = await read();
    }
    if (session.stopped) return playbackError(404, "NOT_LIVE", `Live input ${inputUid} is not live: its ingest ended`);
    if (session.failed) return playbackError(502, "PACKAGER_FAILED", `ffmpeg could not package live input ${inputUid}'s ingest: ${session.lastError ?? "no output"}`);
    if (!body) {
      if (isSegment) return playbackError(404, "NOT_FOUND", `Segment ${file} is not (or no longer) in live input ${inputUid}'s playlist`);
      return playbackError(503, "NOT_READY", `ffmpeg has not written ${file} for live input ${inputUid} yet; try again shortly`, { "retry-after": "1" });
    }
    const headers = { "content-type": contentTypeFor(file), "content-length": String(body.length), "cache-control": cacheControlFor(file), ...CORS_HEADERS };
    return new Response(body, { headers });
  }

  /** One ffmpeg run; it also writes the input's recording, once that recording's previous writer has exited. */
  private run(session: Session, source: string): void {
    const lease = this.recordings.attach(session.uid);
    void lease.then(
      (recording) => {
        if (session.stopped || this.closed) return recording?.detach();
        this.spawnRun(session, source, recording);
      },
      (e: unknown) => {
        this.log(`stream emulator: playback for live input ${session.uid}: recording unavailable (${e instanceof Error ? e.message : String(e)})`);
        if (!session.stopped && !this.closed) this.spawnRun(session, source, null);
      },
    );
  }

  private spawnRun(session: Session, source: string, recording: RecordingLease | null): void {
    const tag = `${session.tag}${session.attempt++}`;
    const args = packagerArgs(source, session.dir, tag, session, recording?.output);
    session.startedAt = Date.now();
    let child: ChildProcess;
    try {
      child = spawn(this.binary, args, { stdio: ["ignore", "ignore", "pipe"] });
    } catch (e) {
      recording?.detach();
      session.failed = true;
      session.lastError = e instanceof Error ? e.message : String(e);
      return;
    }
    let lastLine: string | null = null;
    child.stderr?.on("data", (chunk: Buffer) => {
      const lines = chunk.toString().split(/\r?\n/).map((l) => l.trim()).filter(Boolean);
      if (lines.length) lastLine = lines[lines.length - 1]!;
    });
    child.on("error", (e) => {
      lastLine = e.message;
    });
    session.child = child;
    session.childClosed = new Promise<void>((resolve) => {
      child.on("close", (code, signal) => {
        session.child = null;
        // The recording's playlist is final for this run: the next writer (or its ENDLIST) may go ahead.
        recording?.detach();
        resolve();
        if (session.stopped) return;
        this.exited(session, source, code, signal, lastLine);
      });
    });
  }

  /** ffmpeg ended while the ingest is still connected: restart it (transcoding if copying failed at once). */
  private exited(session: Session, source: string, code: number | null, signal: NodeJS.Signals | null, lastLine: string | null): void {
    const wrote = fileMtime(path.join(session.dir, "video.m3u8")) >= session.startedAt;
    session.lastError = lastLine ?? `ffmpeg exited with ${code ?? signal}`;
    session.failures = wrote ? 0 : session.failures + 1;
    if (!wrote && !session.audioOnly && /does not contain any stream/.test(session.lastError)) {
      session.audioOnly = true;
    } else if (!wrote && code !== 0 && !(session.transcodeVideo && session.transcodeAudio)) {
      session.transcodeVideo = session.transcodeAudio = true;
    }
    if (session.failures >= MAX_FAILURES) {
      session.failed = true;
      this.log(`stream emulator: playback for live input ${session.uid} failed after ${MAX_FAILURES} tries: ${session.lastError}`);
      return;
    }
    this.log(`stream emulator: playback for live input ${session.uid}: ffmpeg exited (${code ?? signal}: ${session.lastError}); restarting`);
    session.timer = setTimeout(() => {
      session.timer = null;
      if (!session.stopped) this.run(session, source);
    }, RESTART_DELAY_MS);
  }
}

/**
 * One read of the ingest, three outputs: HLS (`video.m3u8` + `<tag>-NNNNN.ts`), DASH (`video.mpd` +
 * `init-<tag>-<rep>.m4s`, `chunk-<tag>-<rep>-NNNNN.m4s`) and `thumbnail.jpg` (every keyframe, at most 640 px
 * wide). Every file is written under a temporary name and renamed, so a reader never sees half a file.
 */
export function packagerArgs(
  source: string,
  dir: string,
  tag: string,
  mode: { transcodeVideo: boolean; transcodeAudio: boolean; audioOnly?: boolean },
  recordingOutput?: string[],
): string[] {
  const video = mode.transcodeVideo
    ? ["-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency", "-force_key_frames", `expr:gte(t,n_forced*${HLS_SEGMENT_SECONDS})`]
    : ["-c:v", "copy"];
  const audio = mode.transcodeAudio ? ["-c:a", "aac"] : ["-c:a", "copy"];
  const av = ["-map", "0:v?", "-map", "0:a?", ...video, ...audio];
  const at = (name: string) => path.join(dir, name);
  return [
    "-nostdin",
    "-loglevel",
    "error",
    // Only the thumbnail decodes when copying: keyframes are enough for it (a transcode needs every frame).
    ...(mode.transcodeVideo ? [] : ["-skip_frame", "nokey"]),
    "-i",
    source,
    ...av,
    "-f",
    "hls",
    "-hls_time",
    String(HLS_SEGMENT_SECONDS),
    "-hls_list_size",
    String(PLAYLIST_SEGMENTS),
    "-hls_flags",
    "delete_segments+temp_file+independent_segments+omit_endlist",
    "-hls_segment_filename",
    at(`${tag}-%05d.ts`),
    at("video.m3u8"),
    ...av,
    "-f",
    "dash",
    "-seg_duration",
    String(HLS_SEGMENT_SECONDS),
    "-window_size",
    String(PLAYLIST_SEGMENTS),
    "-extra_window_size",
    "3",
    "-use_template",
    "1",
    "-use_timeline",
    "1",
    "-init_seg_name",
    `init-${tag}-$RepresentationID$.m4s`,
    "-media_seg_name",
    `chunk-${tag}-$RepresentationID$-$Number%05d$.m4s`,
    at("video.mpd"),
    // The video's recording (recording-writer.ts): the same streams into an HLS EVENT playlist of its own.
    ...(recordingOutput ? [...av, ...recordingOutput] : []),
    ...(mode.audioOnly
      ? []
      : ["-map", "0:v?", "-an", "-vf", "scale='min(640,iw)':-2", "-q:v", "5", "-update", "1", "-atomic_writing", "1", "-f", "image2", at("thumbnail.jpg")]),
  ];
}

/** Removes directories that emulator processes no longer running left behind (SIGKILL, crash). */
function sweepDeadProcesses(root: string): void {
  let names: string[];
  try {
    names = readdirSync(root);
  } catch {
    return;
  }
  for (const name of names) {
    const pid = Number(/^(\d+)-/.exec(name)?.[1]);
    if (!pid || pid === process.pid || alive(pid)) continue;
    rmSync(path.join(root, name), { recursive: true, force: true });
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

function fileSize(file: string): number {
  try {
    return statSync(file).size;
  } catch {
    return 0;
  }
}

function fileMtime(file: string): number {
  try {
    return statSync(file).mtimeMs;
  } catch {
    return 0;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
