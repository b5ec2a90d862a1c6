// RelayDriver that restreams for real with ffmpeg (Node only): pulls the input from the local RTMP
// server and pushes it to the output URL. States: connecting → active (first muxed output reported
// by -progress; or, as a fallback, still alive after ACTIVE_AFTER_MS) → error (non-zero exit, with
// ffmpeg's last stderr line) / idle (clean exit).

import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import type { RelayDriver, RelayReport, RelaySpec } from "./types.ts";

// ffmpeg opens the output only after probing the input (~1-3 s), so "alive for 2 s" would report
// unreachable destinations as active; progress is the real signal and this is only a fallback.
const ACTIVE_AFTER_MS = 10_000;
const KILL_GRACE_MS = 2000;

/** Whether `binary` runs, asked once per binary and process: each ask spawns it (≈ 0.5 s on a busy machine). */
export function ffmpegAvailable(binary = "ffmpeg"): boolean {
  let known = availability.get(binary);
  if (known === undefined) {
    try {
      known = spawnSync(binary, ["-version"], { stdio: "ignore" }).status === 0;
    } catch {
      known = false;
    }
    availability.set(binary, known);
  }
  return known;
}
const availability = new Map<string, boolean>();

/** Output URL + stream key, as Cloudflare joins them (RTMP: path segment; SRT: streamid). */
export function relayTarget(url: string, streamKey: string): { target: string; format: string } {
  if (url.toLowerCase().startsWith("srt://")) {
    if (!streamKey) return { target: url, format: "mpegts" };
    const sep = url.includes("?") ? "&" : "?";
    return { target: `${url}${sep}streamid=${encodeURIComponent(streamKey)}`, format: "mpegts" };
  }
  if (!streamKey) return { target: url, format: "flv" };
  return { target: url.endsWith("/") ? url + streamKey : `${url}/${streamKey}`, format: "flv" };
}

interface Running {
  child: ChildProcess;
  stopped: boolean;
  timer: ReturnType<typeof setTimeout>;
}

export class FfmpegRelayDriver implements RelayDriver {
  private running = new Map<string, Running>();

  /** @param inputBaseUrl local RTMP base the input is pulled from, e.g. rtmp://127.0.0.1:1935/live/ */
  constructor(
    private readonly inputBaseUrl: string,
    private readonly binary = "ffmpeg",
  ) {}

  start(spec: RelaySpec, report: RelayReport): void {
    this.stop(spec.outputUid);
    const source = relayTarget(this.inputBaseUrl, spec.inputStreamKey).target;
    const { target, format } = relayTarget(spec.url, spec.streamKey);
    const args = ["-nostdin", "-loglevel", "error", "-progress", "pipe:1", "-stats_period", "0.5", "-i", source, "-c", "copy", "-f", format, target];
    let child: ChildProcess;
    try {
      child = spawn(this.binary, args, { stdio: ["ignore", "pipe", "pipe"] });
    } catch (e) {
      report("error", e instanceof Error ? e.message : String(e));
      return;
    }
    let active = false;
    let lastLine: string | null = null;
    const markActive = () => {
      if (active || entry.stopped) return;
      active = true;
      report("active", null);
    };
    const entry: Running = { child, stopped: false, timer: setTimeout(markActive, ACTIVE_AFTER_MS) };
    this.running.set(spec.outputUid, entry);

    child.stdout?.on("data", (chunk: Buffer) => {
      // -progress prints key=value blocks; out_time_us > 0 means data is flowing.
      if (/out_time_us=[1-9]/.test(chunk.toString())) markActive();
    });
    child.stderr?.on("data", (chunk: Buffer) => {
      const lines = chunk.toString().split(/\r?\n/).map((l) => l.trim()).filter(Boolean);
      if (lines.length) lastLine = lines[lines.length - 1]!;
    });
    child.on("error", (e) => {
      lastLine = e.message;
    });
    child.on("close", (code, signal) => {
      clearTimeout(entry.timer);
      if (this.running.get(spec.outputUid) === entry) this.running.delete(spec.outputUid);
      if (entry.stopped) return;
      if (code === 0) report("idle", null);
      else report("error", lastLine ?? `ffmpeg exited with ${code ?? signal}`);
    });
  }

  stop(outputUid: string): void {
    const entry = this.running.get(outputUid);
    if (!entry) return;
    this.running.delete(outputUid);
    entry.stopped = true;
    clearTimeout(entry.timer);
    kill(entry.child);
  }

  stopAll(): void {
    for (const uid of [...this.running.keys()]) this.stop(uid);
  }
}

/**
 * SIGTERM, then SIGKILL after KILL_GRACE_MS if ffmpeg has not exited (shared by the relays, the playback
 * packager and the recording finisher). With `exitWithinMs`, first give ffmpeg that long to end by itself:
 * a packager whose RTMP input has ended drains what it has read and writes its trailers (the last segment,
 * the final playlist), where a SIGTERM stops it at the next packet and a blocked read can outlast the grace.
 */
export function kill(child: ChildProcess, opts: { exitWithinMs?: number } = {}): void {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const alive = () => child.exitCode === null && child.signalCode === null;
  const timers: ReturnType<typeof setTimeout>[] = [];
  const later = (fn: () => void, ms: number) => timers.push(setTimeout(fn, ms).unref());
  const term = () => {
    if (!alive()) return;
    child.kill("SIGTERM");
    later(() => alive() && child.kill("SIGKILL"), KILL_GRACE_MS);
  };
  if (opts.exitWithinMs) later(term, opts.exitWithinMs);
  else term();
  child.once("close", () => timers.forEach(clearTimeout));
}
