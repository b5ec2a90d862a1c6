/**
 * Benchmark part (d): WebSocket fan-out and connect on the real `npm start` stack (front door → wrangler
 * dev's workerd → the StreamCoordinator object; the emulator behind it), each beside its floor measured
 * in the same run from the same client process: a bare Node `ws` server (its own process) broadcasting
 * the same JSON to the same number of sockets.
 *   - fan-out: the glasses report a status change → the last of N viewers told (N viewers of one app);
 *   - connect: viewer sockets accepted per second, 50 upgrades in flight, while ramping to N;
 *   - memory: workerd RSS growth per viewer socket.
 */
import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import WebSocket from "ws";
// @ts-expect-error -- plain JS helpers shared with the end-to-end tests
import { admin, http, startStack, unique, userGrant } from "../../test/e2e/stack.mjs";

const CONNECT_CONCURRENCY = 50;
const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);

export interface Spread {
  samples: number[];
  min: number;
  median: number;
  max: number;
}

export interface FanoutRow {
  viewers: number;
  coordinatorMs: Spread;
  floorMs: Spread;
  ratio: number;
  connectPerSecond: Spread;
  floorConnectPerSecond: Spread;
  connectRatio: number;
  /** The same fan-out and connect against the minimal Worker + object under wrangler dev. */
  runtimeFloorMs: Spread;
  runtimeFloorConnectPerSecond: Spread;
  workerdKbPerSocket: number | null;
  /** A viewer's `stream_status_check` → its answer (no write, no push), for scale. */
  statusCheckRoundTripMs: Spread;
}

export interface FanoutResult {
  path: string;
  /**
   * The extensions a client offering permessage-deflate (as browsers and `ws` do) gets through the front
   * door: "" when nothing compresses, as the bench's direct sockets (which offer nothing) assume.
   */
  frontDoorCompression: string | null;
  /** Authenticated GET /api/streams/:id per second on the same path: the stack's per-request floor. */
  requestsPerSecond: Spread | null;
  runs: number;
  rows: FanoutRow[];
  growth1000to2000: number | null;
  failedAt: { viewers: number; error: string } | null;
}

interface Viewers {
  sockets: WebSocket[];
  connectPerSecond: number;
  /** Resolves with the time the last socket got a message satisfying `match`. */
  lastTold(match: (text: string) => boolean): Promise<number>;
  close(): Promise<void>;
}

/** Opens `n` sockets, `CONNECT_CONCURRENCY` upgrades in flight, timing the ramp. */
async function connectViewers(url: string, headers: Record<string, string>, n: number): Promise<Viewers> {
  const sockets: WebSocket[] = [];
  let armed: { match: (text: string) => boolean; left: number; resolve: (t: number) => void } | null = null;
  const told = new WeakSet<WebSocket>();
  const open = () =>
    new Promise<WebSocket>((resolve, reject) => {
      // No compression offer: what reaches workerd through the front door, which strips it (the Worker
      // refuses permessage-deflate; see `frontDoorCompression`). The floor compresses nothing either.
      const ws = new WebSocket(url, { headers, handshakeTimeout: 30_000, perMessageDeflate: false });
      ws.on("message", (data) => {
        if (!armed || told.has(ws)) return;
        const text = String(data);
        // Parse as a real client would.
        JSON.parse(text);
        if (!armed.match(text)) return;
        told.add(ws);
        if (--armed.left === 0) armed.resolve(performance.now());
      });
      ws.once("open", () => resolve(ws));
      ws.once("error", reject);
      ws.once("unexpected-response", (_req, res) => reject(new Error(`upgrade refused: HTTP ${res.statusCode}`)));
    });
  const t0 = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(CONNECT_CONCURRENCY, n) }, async () => {
      while (next < n) {
        next++;
        sockets.push(await open());
      }
    }),
  );
  const connectPerSecond = Math.round((n / (performance.now() - t0)) * 1000);
  return {
    sockets,
    connectPerSecond,
    lastTold(match) {
      return new Promise((resolve) => {
        armed = { match, left: sockets.length, resolve };
      });
    },
    async close() {
      await Promise.all(
        sockets.map(
          (ws) =>
            new Promise<void>((resolve) => {
              if (ws.readyState === WebSocket.CLOSED) return resolve();
              ws.once("close", () => resolve());
              ws.close(1000);
              setTimeout(() => {
                ws.terminate();
                resolve();
              }, 3_000).unref();
            }),
        ),
      );
    },
  };
}

/** The floor: a bare `ws` server in its own process; a message from `?trigger` is broadcast to the rest. */
const FLOOR_SERVER = `
const { WebSocketServer } = require("ws");
const wss = new WebSocketServer({ host: "127.0.0.1", port: 0 });
wss.on("listening", () => process.stdout.write(String(wss.address().port) + "\\n"));
wss.on("connection", (ws, req) => {
  if (!req.url.includes("trigger")) return;
  ws.on("message", (data) => {
    const text = String(data);
    for (const client of wss.clients) if (client !== ws && client.readyState === 1) client.send(text);
  });
});`;

async function startFloor(): Promise<{ url: string; stop: () => void }> {
  const child = spawn(process.execPath, ["-e", FLOOR_SERVER], { stdio: ["ignore", "pipe", "inherit"], cwd: process.cwd() });
  const port = await new Promise<string>((resolve, reject) => {
    child.stdout.once("data", (chunk) => resolve(String(chunk).trim()));
    child.once("exit", (code) => reject(new Error(`floor server exited ${code}`)));
  });
  return { url: `ws://127.0.0.1:${port}`, stop: () => child.kill("SIGKILL") };
}

/**
 * The runtime floor: a minimal Worker + Durable Object (scripts/bench/runtime-floor) under its own
 * `wrangler dev`, reached on its user Worker's own socket like the coordinator. What any object costs here.
 */
async function startRuntimeFloor(): Promise<{ base: string; stop: () => void }> {
  const wranglerCli = path.join(path.dirname(require.resolve("wrangler/package.json")), "wrangler-dist", "cli.js");
  const dir = mkdtempSync(path.join(tmpdir(), "bench-runtime-floor-"));
  const child = spawn(
    process.execPath,
    ["--no-warnings", wranglerCli, "dev", "--config", path.join(here, "runtime-floor", "wrangler.jsonc"), "--ip", "127.0.0.1", "--port", "0",
      "--inspector-port", "0", "--show-interactive-dev-session=false", "--log-level", "warn", "--persist-to", dir],
    { stdio: "ignore", detached: true, env: { ...process.env, WRANGLER_SEND_METRICS: "false" } },
  );
  const stop = () => {
    try {
      process.kill(-child.pid!, "SIGKILL");
    } catch {
      // gone
    }
  };
  for (let i = 0; i < 120; i++) {
    await new Promise((r) => setTimeout(r, 500));
    const port = await userWorkerPort(child.pid!);
    if (port) return { base: `ws://127.0.0.1:${port}`, stop };
  }
  stop();
  throw new Error("the runtime floor's wrangler dev did not come up");
}

const once = (ws: WebSocket) => new Promise<void>((resolve, reject) => (ws.once("open", () => resolve()), ws.once("error", reject)));

function spread(samples: number[]): Spread {
  const sorted = [...samples].sort((a, b) => a - b);
  return { samples, min: sorted[0]!, median: sorted[Math.floor(sorted.length / 2)]!, max: sorted.at(-1)! };
}

/** RSS (KB) of the workerd processes in the stack's process group. */
function workerdRssKb(pgid: number): number | null {
  try {
    const out = execFileSync("ps", ["-o", "rss=,comm=", "-g", String(pgid)], { encoding: "utf8" });
    const rss = out
      .split("\n")
      .filter((l) => l.includes("workerd"))
      .reduce((sum, l) => sum + Number(l.trim().split(/\s+/)[0]), 0);
    return rss || null;
  } catch {
    return null;
  }
}

/**
 * The user Worker's own listening socket inside wrangler dev (the workerd started with `entry=…:0`),
 * found by asking each of its ports for /healthz. Connecting there skips the front door and wrangler's
 * proxy worker, two relays every frame would otherwise cross.
 */
async function userWorkerPort(pgid: number): Promise<number | null> {
  try {
    const ps = execFileSync("ps", ["-o", "pid=,args=", "-g", String(pgid)], { encoding: "utf8" });
    const pid = ps.split("\n").find((l) => l.includes("workerd") && l.includes("entry=127.0.0.1:0"))?.trim().split(/\s+/)[0];
    if (!pid) return null;
    const ss = execFileSync("ss", ["-ltnpH"], { encoding: "utf8" });
    for (const line of ss.split("\n")) {
      if (!line.includes(`pid=${pid},`)) continue;
      const port = Number(line.trim().split(/\s+/)[3]!.split(":").at(-1));
      try {
        const res = await fetch(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(2_000) });
        if (res.ok) return port;
      } catch {
        // not the entry socket
      }
    }
  } catch {
    // ps or ss missing
  }
  return null;
}

/** Authenticated snapshot reads per second, 50 in flight: what one request costs on this path. */
async function requestRate(base: string, streamId: string, headers: Record<string, string>, n = 300): Promise<number> {
  const t0 = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: CONNECT_CONCURRENCY }, async () => {
      while (next < n) {
        next++;
        await http("GET", `${base}/api/streams/${streamId}`, { headers });
      }
    }),
  );
  return Math.round((n / (performance.now() - t0)) * 1000);
}

/** Opens one viewer socket through the front door with a default client (which offers compression). */
async function negotiatedThroughFrontDoor(
  stack: { coordinator: string },
  headers: Record<string, string>,
  packageName: string,
): Promise<string | null> {
  const userId = unique("bench-compression-user");
  const grant = await userGrant(stack.coordinator, userId, packageName);
  const started = await http("POST", `${stack.coordinator}/api/streams`, { body: { userId }, headers: { ...headers, "x-user-grant": grant } });
  if (started.status !== 201) return null;
  const ws = new WebSocket(`${stack.coordinator.replace("http", "ws")}/api/streams/${started.body.streamId}/ws`, { headers });
  try {
    await once(ws);
    return ws.extensions;
  } finally {
    ws.close();
    await http("POST", `${stack.coordinator}/api/admin/streams/${started.body.streamId}/stop`, { headers: admin });
  }
}

/** Connects `n` viewers to a floor, has its trigger socket send `text`, and times the last viewer told. */
async function broadcastFloor(viewersUrl: string, triggerUrl: string, n: number, text: string): Promise<{ connectPerSecond: number; toldMs: number }> {
  const viewers = await connectViewers(viewersUrl, {}, n);
  const trigger = new WebSocket(triggerUrl, { perMessageDeflate: false });
  await once(trigger);
  const told = viewers.lastTold((received) => received.includes('"status":"error"'));
  const t0 = performance.now();
  trigger.send(text);
  const toldMs = Math.round((await told) - t0);
  trigger.close();
  await viewers.close();
  return { connectPerSecond: viewers.connectPerSecond, toldMs };
}

export async function measureFanout(
  counts: number[],
  runs: number,
  log: (line: string) => void,
  via: "worker" | "front-door" = "worker",
): Promise<FanoutResult> {
  const stack = await startStack();
  const floor = await startFloor();
  const runtimeFloor = await startRuntimeFloor();
  const rows: FanoutRow[] = [];
  let failedAt: FanoutResult["failedAt"] = null;
  let pathTaken = "";
  let frontDoorCompression: string | null = null;
  const requestRates: number[] = [];
  try {
    const packageName = unique("com.bench.fanout");
    const app = await http("POST", `${stack.coordinator}/api/admin/apps`, { body: { packageName }, headers: admin });
    const headers = { "x-api-key": app.body.apiKey, "x-package-name": packageName };
    const port = via === "worker" ? await userWorkerPort(stack.child.pid) : null;
    const base = port ? `http://127.0.0.1:${port}` : stack.coordinator;
    const wsBase = base.replace("http", "ws");
    pathTaken = port
      ? "client → wrangler dev's workerd, the user Worker's own socket (front door and wrangler's proxy worker skipped) → StreamCoordinator"
      : "client → front door (scripts/front-door.mjs) → wrangler dev's proxy worker → user Worker → StreamCoordinator";
    log(`    path: ${pathTaken}`);
    frontDoorCompression = await negotiatedThroughFrontDoor(stack, headers, packageName);
    log(`    permessage-deflate offered through the front door, negotiated: ${JSON.stringify(frontDoorCompression)}`);
    for (const n of counts) {
      const ours: number[] = [];
      const floors: number[] = [];
      const connects: number[] = [];
      const floorConnects: number[] = [];
      const runtimeFloors: number[] = [];
      const runtimeFloorConnects: number[] = [];
      const memory: number[] = [];
      const roundTrips: number[] = [];
      try {
        for (let run = 0; run < runs; run++) {
          // A fresh stream per run, with the glasses connected (they trigger the status change).
          const userId = unique("bench-fanout-user");
          const grant = await userGrant(stack.coordinator, userId, packageName);
          const started = await http("POST", `${stack.coordinator}/api/streams`, { body: { userId }, headers: { ...headers, "x-user-grant": grant } });
          if (started.status !== 201) throw new Error(`start failed: ${started.status} ${JSON.stringify(started.body)}`);
          const streamId = started.body.streamId;
          const token = await http("POST", `${stack.coordinator}/api/admin/device-tokens`, { body: { userId, ttlSeconds: 600 }, headers: admin });
          const device = new WebSocket(`${wsBase}/api/streams/${streamId}/ws`, { headers: { authorization: `Bearer ${token.body.token}` } });
          await once(device);

          if (n === counts[0]) requestRates.push(await requestRate(base, streamId, headers));
          const rssBefore = workerdRssKb(stack.child.pid);
          const viewers = await connectViewers(`${wsBase}/api/streams/${streamId}/ws`, headers, n);
          const rssAfter = workerdRssKb(stack.child.pid);
          if (rssBefore && rssAfter) memory.push((rssAfter - rssBefore) / n);
          connects.push(viewers.connectPerSecond);
          await new Promise((r) => setTimeout(r, 300));

          // One viewer asks for the status (no write, no push): the object's bare round trip.
          const asker = viewers.sockets[0]!;
          const r0 = performance.now();
          await new Promise<void>((resolve) => {
            asker.once("message", () => resolve());
            asker.send(JSON.stringify({ type: "stream_status_check" }));
          });
          roundTrips.push(Math.round((performance.now() - r0) * 10) / 10);

          // The glasses report an error: every viewer must be told `error`.
          let captured = "";
          const told = viewers.lastTold((text) => {
            if (!text.includes('"status":"error"')) return false;
            captured = text;
            return true;
          });
          const t0 = performance.now();
          device.send(JSON.stringify({ type: "rtmp_stream_status", status: "error", errorDetails: "bench" }));
          ours.push(Math.round((await told) - t0));

          // The floors: the same JSON to the same number of sockets, same client process.
          const bare = await broadcastFloor(floor.url, `${floor.url}/?trigger`, n, captured);
          floorConnects.push(bare.connectPerSecond);
          floors.push(bare.toldMs);
          const room = unique("room");
          const minimal = await broadcastFloor(`${runtimeFloor.base}/ws?room=${room}`, `${runtimeFloor.base}/ws?room=${room}&trigger`, n, captured);
          runtimeFloorConnects.push(minimal.connectPerSecond);
          runtimeFloors.push(minimal.toldMs);

          device.close();
          await viewers.close();
          await http("POST", `${stack.coordinator}/api/admin/streams/${streamId}/stop`, { headers: admin });
          log(
            `    N=${n} run ${run + 1}: coordinator ${ours.at(-1)} ms (ws floor ${floors.at(-1)} ms, runtime floor ${runtimeFloors.at(-1)} ms); ` +
              `connect ${connects.at(-1)}/s (ws floor ${floorConnects.at(-1)}/s, runtime floor ${runtimeFloorConnects.at(-1)}/s)`,
          );
          await new Promise((r) => setTimeout(r, 1_000));
        }
      } catch (error) {
        failedAt = { viewers: n, error: String((error as Error).message ?? error) };
        log(`    N=${n}: failed: ${failedAt.error}`);
        break;
      }
      const coordinatorMs = spread(ours);
      const floorMs = spread(floors);
      const connectPerSecond = spread(connects);
      const floorConnectPerSecond = spread(floorConnects);
      rows.push({
        viewers: n,
        coordinatorMs,
        floorMs,
        ratio: round(coordinatorMs.median / Math.max(1, floorMs.median)),
        connectPerSecond,
        floorConnectPerSecond,
        connectRatio: round(connectPerSecond.median / floorConnectPerSecond.median),
        runtimeFloorMs: spread(runtimeFloors),
        runtimeFloorConnectPerSecond: spread(runtimeFloorConnects),
        workerdKbPerSocket: memory.length ? Math.round(spread(memory).median) : null,
        statusCheckRoundTripMs: spread(roundTrips),
      });
    }
  } finally {
    floor.stop();
    runtimeFloor.stop();
    await stack.stop();
  }
  const at = (n: number) => rows.find((r) => r.viewers === n)?.coordinatorMs.median;
  const [m1, m2] = [at(1_000), at(2_000)];
  return {
    path: pathTaken,
    frontDoorCompression,
    requestsPerSecond: requestRates.length ? spread(requestRates) : null,
    runs,
    rows,
    growth1000to2000: m1 && m2 ? round(m2 / m1) : null,
    failedAt,
  };
}

const round = (x: number) => Math.round(x * 100) / 100;

export interface Target {
  value: number;
  target: number;
  ok: boolean;
}

/** Issue 9 goals 1 and 2: fan-out ≤ 3× the floor at every N up to 2,000, linear growth, connect ≥ ⅓ floor. */
export function fanoutTargets(r: FanoutResult): Record<string, Target> {
  const targets: Record<string, Target> = {};
  for (const n of [100, 1_000, 2_000]) {
    const row = r.rows.find((x) => x.viewers === n);
    targets[`e_fanout_${n}_vs_floor`] = { value: row?.ratio ?? Infinity, target: 3, ok: !!row && row.ratio <= 3 };
  }
  targets.e_fanout_growth_1000_to_2000 = { value: r.growth1000to2000 ?? Infinity, target: 2.2, ok: r.growth1000to2000 !== null && r.growth1000to2000 <= 2.2 };
  const at1000 = r.rows.find((x) => x.viewers === 1_000);
  targets.e_connect_1000_vs_floor = { value: at1000?.connectRatio ?? 0, target: 0.33, ok: !!at1000 && at1000.connectRatio >= 1 / 3 };
  return targets;
}

export function fanoutMarkdown(r: FanoutResult, targets: Record<string, Target>): string {
  const s = (x: Spread) => `${x.median} (${x.min}–${x.max})`;
  const rows = r.rows
    .map(
      (x) =>
        `| ${x.viewers} | ${s(x.coordinatorMs)} | ${s(x.floorMs)} | ${x.ratio} | ${s(x.runtimeFloorMs)} | ${s(x.connectPerSecond)} | ${s(x.floorConnectPerSecond)} | ${x.connectRatio} | ${s(x.runtimeFloorConnectPerSecond)} | ${round(x.connectPerSecond.median / x.runtimeFloorConnectPerSecond.median)} | ${x.workerdKbPerSocket ?? "n/a"} | ${s(x.statusCheckRoundTripMs)} |`,
    )
    .join("\n");
  const t = Object.entries(targets)
    .map(([name, x]) => `| ${name} | ${x.value} | ${name.includes("connect") ? "≥" : "≤"} ${x.target} | ${x.ok ? "met" : "**missed**"} |`)
    .join("\n");
  return `
## (e) WebSocket fan-out and connect, on the \`npm start\` stack, beside a bare \`ws\` server

Path: ${r.path}. Compression: none (a client offering permessage-deflate through the front door got
${JSON.stringify(r.frontDoorCompression)}; the bench's sockets offer nothing). Floor: a bare Node \`ws\` server (own process) broadcasting the same JSON to the same
number of sockets, from the same client process in the same run. Runtime floor: a minimal Worker + Durable
Object (\`scripts/bench/runtime-floor\`) under its own \`wrangler dev\`, reached the same way, accepting
hibernatable sockets and broadcasting the same JSON: what any object costs on this runtime. Fan-out = the glasses report a status
change → the last of N viewers (one app) told. Connect = viewer upgrades accepted per second, 50 in flight,
ramping to N. Memory = growth of the workerd processes' RSS / N. Median (min–max) of ${r.runs} runs.
${r.requestsPerSecond ? `Authenticated \`GET /api/streams/:id\` on the same path, 50 in flight: ${s(r.requestsPerSecond)} /s (what one request through the local Worker costs).` : ""}

| viewers | coordinator ms | ws floor ms | ratio | runtime floor ms | connect /s | ws floor connect /s | ratio | runtime floor connect /s | ratio to runtime floor | workerd KB/socket | status check RTT ms |
|---|---|---|---|---|---|---|---|---|---|---|---|
${rows}

Growth 1,000 → 2,000 viewers: ${r.growth1000to2000 ?? "n/a"}×.${r.failedAt ? ` Stopped at N=${r.failedAt.viewers}: ${r.failedAt.error}.` : ""}

| target | measured | goal | |
|---|---|---|---|
${t}
`;
}
