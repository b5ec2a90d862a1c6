/**
 * Benchmark part (f): WebRTC on the real `npm start` stack, each figure beside its floor measured in the same
 * run. Ours: a stream started with `ingest: "webrtc"`, published over WHIP at the glasses' whipUrl, watched by
 * N WHEP viewers at the stream's webrtcUrl (the emulator's werift forwarder, emulator/webrtc-ingest.ts). Floor:
 * a bare werift forwarder in its own Node process and session (scripts/bench/webrtc-floor.mjs), fed by the same kind of
 * publisher and watched by the same viewers, from the same bench process. Per viewer count (0, 1, 5, 20),
 * the two paths are measured one after the other (order alternating), both publishers live all along:
 *   - offer → first frame: a viewer's offer started → its first complete frame (and first keyframe);
 *   - glass-to-glass: each frame's timestamp (written into it by the publisher, webrtc-peers.ts) read back at
 *     every viewer when the frame's last packet arrives, over a measurement window;
 *   - CPU per forwarded viewer: the forwarder process's CPU in the window at N viewers minus at 0, over N.
 * Viewers join in batches of 5; the bench fails (bounded waits throughout) if media stalls or no viewer starts.
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { loadavg } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
// @ts-expect-error -- plain JS helpers shared with the end-to-end tests
import { admin, bearer, http, openSocket, startStack, unique, userGrant, waitFor } from "../../test/e2e/stack.mjs";
import { publishTimestamped, watchTimed, type TimedPublisher, type TimedViewer } from "./webrtc-peers.ts";

const here = path.dirname(fileURLToPath(import.meta.url));
const TICKS_PER_SECOND = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
const PUBLISH_SECONDS = 900;
const JOIN_BATCH = 5;

export interface Percentiles {
  count: number;
  p50: number;
  p95: number;
  max: number;
}

export interface WebrtcStep {
  viewers: number;
  glassToGlassMs: Percentiles | null;
  offerToFirstFrameMs: Percentiles | null;
  offerToFirstKeyframeMs: Percentiles | null;
  /** The forwarder process's CPU in the window, % of one core. */
  forwarderCpuPercent: number;
  /** Median over rounds of (CPU at N − CPU at 0) / viewers served, % of one core; null at 0 viewers. */
  cpuPerViewerPercent: number | null;
  /** Viewers (over all rounds) whose first keyframe did not come within the bound; not timed. */
  notStarted: number;
  /** Per round: glass-to-glass p50, ms (the spread behind the pooled figure). */
  glassToGlassP50ByRound: number[];
}

interface RawStep {
  glassToGlass: number[];
  firstFrame: number[];
  firstKeyframe: number[];
  cpuPercent: number;
  notStarted: number;
  started: number;
}

export interface WebrtcResult {
  windowMs: number;
  rounds: number;
  ours: WebrtcStep[];
  floor: WebrtcStep[];
  /** Machine load: 1-minute load average before and after, and all cores' busy share during the windows. */
  load: { loadavgBefore: number; loadavgAfter: number; cores: number; machineBusyPercent: number };
  keyframeRequestsAtPublisher: { ours: number; floor: number };
}

interface Path {
  name: "ours" | "floor";
  whepUrl: string;
  pid: number;
  /** WHEP sessions the forwarder still holds (ours: from /__emulator/ingest; floor: not exposed). */
  openViewers: () => Promise<number>;
}

export async function measureWebrtc(viewerCounts: number[], windowMs: number, rounds: number, log: (line: string) => void): Promise<WebrtcResult> {
  const cleanups: Array<() => Promise<unknown>> = [];
  const loadavgBefore = loadavg()[0]!;
  const busy = { before: machineTicks(), busyDuringWindows: 0, totalDuringWindows: 0 };
  try {
    const floorProcess = await startFloor();
    cleanups.push(async () => floorProcess.child.kill("SIGKILL"));
    const stack = await startStack({});
    cleanups.push(() => stack.stop(10_000));
    const { whipUrl, webrtcUrl, appSocket } = await webrtcStream(stack);
    cleanups.push(() => appSocket.close());

    const oursPublisher = await connectedPublisher(whipUrl, async (p) => p.pc.connectionState === "connected" && (await ingest(stack)).whip.some((s: { state: string }) => s.state === "connected"));
    cleanups.push(() => oursPublisher.close());
    const floorPublisher = await connectedPublisher(`${floorProcess.url}/whip`, async (p) => p.pc.connectionState === "connected");
    cleanups.push(() => floorPublisher.close());
    // Let both encoders and the publishers' peers reach their steady state before anything is timed.
    await sleep(2_000);

    const ours: Path = { name: "ours", whepUrl: webrtcUrl, pid: emulatorPid(stack.child.pid), openViewers: async () => (await ingest(stack)).whep.length };
    const floor: Path = { name: "floor", whepUrl: `${floorProcess.url}/whep`, pid: floorProcess.child.pid!, openViewers: async () => 0 };
    const raw: Record<"ours" | "floor", Map<number, RawStep[]>> = { ours: new Map(), floor: new Map() };
    const counts = [0, ...viewerCounts.filter((n) => n > 0)];
    // Rounds, and the two paths in alternating order: on a shared machine the load moves by the second, and
    // each figure should see the same share of it as its floor.
    for (let round = 0; round < rounds; round++) {
      for (const [i, n] of counts.entries()) {
        for (const p of (round + i) % 2 === 0 ? [ours, floor] : [floor, ours]) {
          const step = await measureStep(p, n, windowMs, busy);
          raw[p.name].set(n, [...(raw[p.name].get(n) ?? []), step]);
          log(`    round ${round + 1}, ${p.name.padEnd(5)} ${String(n).padStart(2)} viewers: glass-to-glass p50 ${percentiles(step.glassToGlass)?.p50 ?? "–"} ms, offer → first frame p50 ${percentiles(step.firstFrame)?.p50 ?? "–"} ms, forwarder CPU ${step.cpuPercent} %${step.notStarted ? `, ${step.notStarted} viewers without a frame` : ""}`);
        }
      }
    }
    return {
      windowMs,
      rounds,
      ours: summarize(raw.ours, counts),
      floor: summarize(raw.floor, counts),
      load: { loadavgBefore: round(loadavgBefore, 2), loadavgAfter: round(loadavg()[0]!, 2), cores: machineTicks().cores, machineBusyPercent: round((100 * busy.busyDuringWindows) / Math.max(1, busy.totalDuringWindows), 1) },
      keyframeRequestsAtPublisher: { ours: oursPublisher.stats().keyframeRequests, floor: floorPublisher.stats().keyframeRequests },
    };
  } finally {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
  }
}

async function measureStep(p: Path, n: number, windowMs: number, busy: { busyDuringWindows: number; totalDuringWindows: number }): Promise<RawStep> {
  const viewers: TimedViewer[] = [];
  try {
    // Viewers join JOIN_BATCH at a time, each batch connected before the next: 20 DTLS handshakes at once on
    // this 2-core machine made werift give some up after its retransmits (on both paths), and a forwarder with
    // fewer viewers than asked would be measured at a lighter load.
    for (let first = 0; first < n; first += JOIN_BATCH) {
      const batch = await Promise.allSettled(Array.from({ length: Math.min(JOIN_BATCH, n - first) }, () => withTimeout(watchTimed(p.whepUrl), 20_000, `${p.name}: a WHEP answer`)));
      const joined = batch.flatMap((j) => (j.status === "fulfilled" ? [j.value] : []));
      viewers.push(...joined);
      const refused = batch.find((j): j is PromiseRejectedResult => j.status === "rejected");
      if (refused) throw refused.reason;
      await waitFor(`${p.name}: viewers to connect`, async () => joined.every((v) => v.connectedMs() !== null), { timeoutMs: 10_000, intervalMs: 20 }).catch(() => undefined);
    }
    // Bounded: a viewer whose handshake failed under load (werift DTLS gives up after its retransmits) is
    // counted, not waited for; the step fails only when no viewer starts at all.
    await waitFor(`${p.name}: ${n} viewers' first keyframes`, async () => viewers.every((v) => v.firstKeyframeMs() !== null), { timeoutMs: 15_000, intervalMs: 20 }).catch(() => undefined);
    const started = viewers.filter((v) => v.firstKeyframeMs() !== null);
    if (n > 0 && started.length === 0) throw new Error(`${p.name}: none of ${n} viewers got a keyframe within 15 s`);
    await sleep(1_000);
    const cpuBefore = processTicks(p.pid);
    const machineBefore = machineTicks();
    for (const v of started) v.collect();
    await sleep(windowMs);
    const cpuAfter = processTicks(p.pid);
    const machineAfter = machineTicks();
    busy.busyDuringWindows += machineAfter.busy - machineBefore.busy;
    busy.totalDuringWindows += machineAfter.total - machineBefore.total;
    const glassToGlass = started.flatMap((v) => v.samples());
    if (n > 0 && glassToGlass.length < (started.length * windowMs) / 1000) throw new Error(`${p.name}: ${glassToGlass.length} frames timed at ${started.length} viewers in ${windowMs} ms (media stalled)`);
    return {
      glassToGlass,
      firstFrame: started.map((v) => v.firstFrameMs()!),
      firstKeyframe: started.map((v) => v.firstKeyframeMs()!),
      cpuPercent: round((100 * (cpuAfter - cpuBefore)) / TICKS_PER_SECOND / (windowMs / 1000), 1),
      notStarted: n - started.length,
      started: started.length,
    };
  } finally {
    await Promise.all(viewers.map((v) => v.close()));
    // Each viewer's DELETE must end its session at the forwarder: the next step starts from none.
    await waitFor(`${p.name}: viewers' sessions to end`, async () => (await p.openViewers()) === 0, { timeoutMs: 10_000 }).catch(() => undefined);
  }
}

/**
 * Pools each viewer count's rounds: percentiles over all samples; CPU and CPU per viewer as the median of the
 * rounds, per viewer = (CPU at N − CPU at 0 viewers in the same round) / the viewers that really got media.
 */
function summarize(raw: Map<number, RawStep[]>, counts: number[]): WebrtcStep[] {
  const medianOf = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const idle = raw.get(0) ?? [];
  return counts.map((n) => {
    const steps = raw.get(n) ?? [];
    const perViewer = steps.flatMap((r, round) => (r.started > 0 && idle[round] ? [(r.cpuPercent - idle[round]!.cpuPercent) / r.started] : []));
    return {
      viewers: n,
      glassToGlassMs: percentiles(steps.flatMap((r) => r.glassToGlass)),
      offerToFirstFrameMs: percentiles(steps.flatMap((r) => r.firstFrame)),
      offerToFirstKeyframeMs: percentiles(steps.flatMap((r) => r.firstKeyframe)),
      forwarderCpuPercent: medianOf(steps.map((r) => r.cpuPercent)),
      cpuPerViewerPercent: perViewer.length ? round(medianOf(perViewer), 2) : null,
      notStarted: steps.reduce((k, r) => k + r.notStarted, 0),
      glassToGlassP50ByRound: steps.map((r) => percentiles(r.glassToGlass)?.p50 ?? NaN),
    };
  });
}

/** A publisher once connected (`ready`), publishing again once if the first handshake failed under load. */
async function connectedPublisher(whipUrl: string, ready: (p: TimedPublisher) => Promise<boolean>): Promise<TimedPublisher> {
  for (let attempt = 1; ; attempt++) {
    const publisher = await publishTimestamped(whipUrl, PUBLISH_SECONDS);
    try {
      await waitFor(`the WHIP publish at ${whipUrl} to connect`, () => ready(publisher), { timeoutMs: 20_000 });
      return publisher;
    } catch (e) {
      await publisher.close();
      if (attempt === 2) throw e;
    }
  }
}

/**
 * A stream started with `ingest: "webrtc"`, the glasses' WHIP URL, and the viewer app's socket: without an app
 * watching, the coordinator stops the stream after its grace period (and deletes the live input).
 */
async function webrtcStream(stack: { coordinator: string }): Promise<{ whipUrl: string; webrtcUrl: string; appSocket: { close(): Promise<void> } }> {
  const packageName = unique("com.bench.webrtc");
  const app = await http("POST", `${stack.coordinator}/api/admin/apps`, { body: { packageName }, headers: admin });
  const headers = { "x-api-key": app.body.apiKey, "x-package-name": packageName };
  const userId = unique("bench-webrtc");
  const grant = await userGrant(stack.coordinator, userId, packageName);
  const started = await http("POST", `${stack.coordinator}/api/streams`, { body: { userId, ingest: "webrtc" }, headers: { ...headers, "x-user-grant": grant } });
  if (started.status !== 201) throw new Error(`start: ${started.status} ${JSON.stringify(started.body)}`);
  const appSocket = await openSocket(`${stack.coordinator.replace(/^http/, "ws")}/api/streams/${started.body.streamId}/ws`, headers);
  const token = (await http("POST", `${stack.coordinator}/api/admin/device-tokens`, { body: { userId }, headers: admin })).body.token;
  const device = await http("GET", `${stack.coordinator}/api/device/stream`, { headers: bearer(token) });
  if (!device.body?.start?.whipUrl) throw new Error(`no whipUrl for the glasses: ${JSON.stringify(device.body)}`);
  return { whipUrl: device.body.start.whipUrl, webrtcUrl: started.body.webrtcUrl, appSocket };
}

const ingest = async (stack: { emulator: string }) => (await http("GET", `${stack.emulator}/__emulator/ingest`)).body;

/** The floor's process, once it listens; it exits with the bench (its stdin is the bench's pipe). */
async function startFloor(): Promise<{ child: ChildProcess; url: string }> {
  // Its own session, as the stack's processes are (startStack spawns them detached): with Linux's autogroup
  // scheduling the CPU is shared between sessions first, so a floor in the bench's session would compete
  // with the bench's own publisher and viewers while the emulator does not.
  const child = spawn(process.execPath, [path.join(here, "webrtc-floor.mjs")], { stdio: ["pipe", "pipe", "inherit"], detached: true });
  const port = await withTimeout(
    new Promise<number>((resolve, reject) => {
      child.stdout!.on("data", (d) => {
        const m = /listening (\d+)/.exec(String(d));
        if (m) resolve(Number(m[1]));
      });
      child.on("exit", (code) => reject(new Error(`the floor forwarder exited (${code})`)));
    }),
    15_000,
    "the floor forwarder to listen",
  ).catch((e) => {
    child.kill("SIGKILL");
    throw e;
  });
  return { child, url: `http://127.0.0.1:${port}` };
}

/** The emulator's Node process in the stack's process group (scripts/start.mjs runs it from its bundle). */
function emulatorPid(groupId: number): number {
  const ps = execFileSync("ps", ["-o", "pid=,args=", "-g", String(groupId)], { encoding: "utf8" });
  const line = ps.split("\n").find((l) => l.includes("emulator-server.mjs"));
  if (!line) throw new Error(`no emulator process in group ${groupId}:\n${ps}`);
  return Number(line.trim().split(/\s+/)[0]);
}

/** utime + stime of a process, in clock ticks. */
function processTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return Number(fields[11]) + Number(fields[12]);
}

/** All cores' busy and total ticks (/proc/stat's first line), and the number of cores. */
function machineTicks(): { busy: number; total: number; cores: number } {
  const lines = readFileSync("/proc/stat", "utf8").split("\n");
  const cpu = lines[0]!.trim().split(/\s+/).slice(1).map(Number);
  const idle = cpu[3]! + (cpu[4] ?? 0);
  const total = cpu.reduce((a, b) => a + b, 0);
  return { busy: total - idle, total, cores: lines.filter((l) => /^cpu\d/.test(l)).length };
}

export function percentiles(values: number[]): Percentiles | null {
  if (values.length === 0) return null;
  const s = [...values].sort((a, b) => a - b);
  const at = (q: number) => round(s[Math.min(s.length - 1, Math.floor(q * s.length))]!, 1);
  return { count: s.length, p50: at(0.5), p95: at(0.95), max: round(s.at(-1)!, 1) };
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout>;
  return Promise.race([promise, new Promise<T>((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms)))]).finally(() => clearTimeout(timer));
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const round = (x: number, digits = 1) => Math.round(x * 10 ** digits) / 10 ** digits;
