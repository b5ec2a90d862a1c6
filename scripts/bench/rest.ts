/**
 * Benchmark part (d): REST overhead on the real `npm start` stack (front door → wrangler dev → Worker +
 * objects → emulator). Per run: single-caller latency of start-stream and output add, beside the
 * floor measured in the same run (the same Cloudflare call sent straight to the emulator: POST
 * live_inputs / POST outputs, through the same kind of client), then throughput with 50 concurrent
 * callers and every non-2xx answer counted. Overhead = our p50 − the emulator's p50.
 */
// @ts-expect-error -- plain JS helpers shared with the end-to-end tests
import { admin, http, startStack, unique, userGrant } from "../../test/e2e/stack.mjs";

const API_TOKEN = "local-dev-token";
const ACCOUNT_ID = "local-account";

export interface RestRun {
  /** GET /healthz through the same door: the local runtime's own per-request cost, no objects. */
  healthzP50Ms: number;
  startP50Ms: number;
  addP50Ms: number;
  floorCreateInputP50Ms: number;
  floorCreateOutputP50Ms: number;
  startOverheadMs: number;
  addOverheadMs: number;
  startsPerSecond: number;
  addsPerSecond: number;
  concurrentStatuses: Record<string, number>;
}

export interface RestResult {
  runs: RestRun[];
  singleSamples: number;
  concurrency: number;
  concurrentCalls: number;
}

type Stack = { coordinator: string; emulator: string };

const p50 = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
};

type Answer = { status: number; body: any };

async function timed<T = Answer>(fn: () => Promise<T>): Promise<[number, T]> {
  const t0 = performance.now();
  const value = await fn();
  return [performance.now() - t0, value];
}

async function newApp(stack: Stack) {
  const packageName = unique("com.bench.rest");
  const app = await http("POST", `${stack.coordinator}/api/admin/apps`, { body: { packageName }, headers: admin });
  if (app.status !== 201) throw new Error(`register: ${app.status} ${JSON.stringify(app.body)}`);
  return { packageName, headers: { "x-api-key": app.body.apiKey, "x-package-name": packageName } };
}

async function prepareStart(stack: Stack, app: { packageName: string; headers: Record<string, string> }) {
  const userId = unique("bench-user");
  const grant = await userGrant(stack.coordinator, userId, app.packageName);
  return { userId, headers: { ...app.headers, "x-user-grant": grant } };
}

function start(stack: Stack, prepared: { userId: string; headers: Record<string, string> }) {
  return http("POST", `${stack.coordinator}/api/streams`, { body: { userId: prepared.userId }, headers: prepared.headers });
}

function addOutput(stack: Stack, streamId: string, headers: Record<string, string>, i: number) {
  return http("POST", `${stack.coordinator}/api/streams/${streamId}/outputs`, {
    body: { url: `rtmp://127.0.0.1:1/live/bench-${i}-${unique("k")}` },
    headers,
  });
}

const emulatorApi = (stack: Stack) => `${stack.emulator}/client/v4/accounts/${ACCOUNT_ID}/stream`;
const emulatorAuth = { authorization: `Bearer ${API_TOKEN}` };

async function oneRun(stack: Stack, singleSamples: number, concurrency: number, concurrentCalls: number): Promise<RestRun> {
  // ── single caller: ours and the floor, interleaved so both see the same machine load ──
  const starts: number[] = [];
  const adds: number[] = [];
  const floorInputs: number[] = [];
  const floorOutputs: number[] = [];
  const healthz: number[] = [];
  for (let i = 0; i < singleSamples; i++) {
    const app = await newApp(stack);
    const prepared = await prepareStart(stack, app);
    const [ms, res] = await timed(() => start(stack, prepared));
    if (res.status !== 201) throw new Error(`start: ${res.status} ${JSON.stringify(res.body)}`);
    starts.push(ms);
    const [addMs, added] = await timed(() => addOutput(stack, res.body.streamId, app.headers, i));
    if (added.status !== 200) throw new Error(`add: ${added.status} ${JSON.stringify(added.body)}`);
    adds.push(addMs);
    const [floorMs, input] = await timed(() =>
      http("POST", `${emulatorApi(stack)}/live_inputs`, { body: { meta: { name: "bench-floor" }, recording: { mode: "automatic" } }, headers: emulatorAuth }),
    );
    if (input.status !== 200) throw new Error(`floor create: ${input.status}`);
    floorInputs.push(floorMs);
    const [floorOutMs, output] = await timed(() =>
      http("POST", `${emulatorApi(stack)}/live_inputs/${input.body.result.uid}/outputs`, {
        body: { url: "rtmp://127.0.0.1:1/live", streamKey: unique("k"), enabled: true },
        headers: emulatorAuth,
      }),
    );
    if (output.status !== 200) throw new Error(`floor output: ${output.status}`);
    floorOutputs.push(floorOutMs);
    await http("DELETE", `${emulatorApi(stack)}/live_inputs/${input.body.result.uid}`, { headers: emulatorAuth });
    healthz.push((await timed(() => http("GET", `${stack.coordinator}/healthz`)))[0]);
  }

  // ── 50 concurrent callers: starts, then one add each onto the streams just started ──
  const statuses: Record<string, number> = {};
  const count = (res: Answer) => {
    const key = res.status >= 200 && res.status < 300 ? String(res.status) : `${res.status} ${res.body?.error ?? ""} ${String(res.body?.message ?? "").slice(0, 60)}`;
    statuses[key] = (statuses[key] ?? 0) + 1;
  };
  const apps = await Promise.all(Array.from({ length: concurrency }, () => newApp(stack)));
  const prepared: Array<{ app: (typeof apps)[number]; p: { userId: string; headers: Record<string, string> } }> = [];
  for (let i = 0; i < concurrentCalls; i++) prepared.push({ app: apps[i % concurrency]!, p: await prepareStart(stack, apps[i % concurrency]!) });
  const started: Array<{ streamId: string; headers: Record<string, string> }> = [];
  const [startWallMs] = await timed(() =>
    pool(concurrency, prepared, async ({ app, p }) => {
      const res = await start(stack, p);
      count(res);
      if (res.status === 201) started.push({ streamId: res.body.streamId, headers: app.headers });
    }),
  );
  const startOk = started.length;
  // At most 10 outputs per app: each concurrent app gets as many adds as it has streams (≤ 10).
  let addOk = 0;
  const [addWallMs] = await timed(() =>
    pool(concurrency, started, async (s, i) => {
      const res = await addOutput(stack, s.streamId, s.headers, i);
      count(res);
      if (res.status === 200) addOk++;
    }),
  );
  const startP50Ms = round(p50(starts));
  const addP50Ms = round(p50(adds));
  const floorCreateInputP50Ms = round(p50(floorInputs));
  const floorCreateOutputP50Ms = round(p50(floorOutputs));
  return {
    healthzP50Ms: round(p50(healthz)),
    startP50Ms,
    addP50Ms,
    floorCreateInputP50Ms,
    floorCreateOutputP50Ms,
    startOverheadMs: round(startP50Ms - floorCreateInputP50Ms),
    addOverheadMs: round(addP50Ms - floorCreateOutputP50Ms),
    startsPerSecond: round((startOk * 1000) / startWallMs),
    addsPerSecond: round((addOk * 1000) / addWallMs),
    concurrentStatuses: statuses,
  };
}

async function pool<T>(width: number, items: T[], fn: (item: T, i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < items.length) {
        const i = next++;
        await fn(items[i]!, i);
      }
    }),
  );
}

const round = (x: number) => Math.round(x * 10) / 10;

export async function measureRest(runs: number, singleSamples: number, concurrency = 50, concurrentCalls = 100): Promise<RestResult> {
  const results: RestRun[] = [];
  // A fresh stack per run: each run starts with an empty budget window and emulator, so polls of the
  // previous run's streams neither share the machine nor the budget with what is measured.
  for (let r = 0; r < runs; r++) {
    const stack = await startStack({ STREAM_STARTS_PER_MINUTE: "10000" });
    try {
      // Warm-up: the first call of each kind compiles and opens connections.
      await oneRun(stack, 2, 5, 5);
      results.push(await oneRun(stack, singleSamples, concurrency, concurrentCalls));
    } finally {
      await stack.stop();
    }
  }
  return { runs: results, singleSamples, concurrency, concurrentCalls };
}

export function summarize(values: number[]) {
  const s = [...values].sort((a, b) => a - b);
  return { min: s[0]!, median: s[Math.floor(s.length / 2)]!, max: s.at(-1)! };
}

/** Before this work, on this machine (issue 9): 20–27 starts/s and 30–43 adds/s at 50 callers. */
export const BASELINE = { startsPerSecond: 20, addsPerSecond: 30 };

export interface RestTarget {
  value: number;
  min: number;
  max: number;
  target: number;
  direction: "≤" | "≥";
  ok: boolean;
}

/** Goal 3 of issue 9, judged on the median of the runs. */
export function restTargets(d: RestResult): Record<string, RestTarget> {
  const judge = (values: number[], direction: "≤" | "≥", target: number): RestTarget => {
    const s = summarize(values);
    return { value: s.median, min: s.min, max: s.max, target, direction, ok: direction === "≤" ? s.median <= target : s.median >= target };
  };
  const failures = d.runs.map((r) => Object.entries(r.concurrentStatuses).filter(([k]) => !/^2\d\d$/.test(k)).reduce((n, [, v]) => n + v, 0));
  return {
    d_startOverheadMs: judge(d.runs.map((r) => r.startOverheadMs), "≤", 15),
    d_addOverheadMs: judge(d.runs.map((r) => r.addOverheadMs), "≤", 10),
    d_startsPerSecondAt50: judge(d.runs.map((r) => r.startsPerSecond), "≥", 3 * BASELINE.startsPerSecond),
    d_addsPerSecondAt50: judge(d.runs.map((r) => r.addsPerSecond), "≥", 3 * BASELINE.addsPerSecond),
    // Every answer under load that is not 2xx is ours: the emulator is healthy and unfaulted here.
    d_failedUnderLoad: { ...judge(failures, "≤", 0), ok: Math.max(...failures) === 0 },
  };
}

export function restMarkdown(d: RestResult, t: Record<string, RestTarget>): string {
  const row = (name: string, x: RestTarget, unit: string, floor: string) =>
    `| ${name} | ${x.value} ${unit} (${x.min}–${x.max}) | ${floor} | ${x.direction} ${x.target} ${unit} | ${x.ok ? "met" : "**missed**"} |`;
  const floors = (key: keyof RestRun) => summarize(d.runs.map((r) => r[key] as number));
  const fi = floors("floorCreateInputP50Ms");
  const fo = floors("floorCreateOutputP50Ms");
  const hz = floors("healthzP50Ms");
  return `
## (d) REST overhead (issue 9, goal 3)

${d.runs.length} runs, each on a fresh \`npm start\` stack, requests through its front door (as clients reach it).
Single caller: ${d.singleSamples} starts and ${d.singleSamples} output adds per run, each beside the same Cloudflare call
sent straight to the emulator. Concurrent: ${d.concurrentCalls} starts, then one output add per started stream,
${d.concurrency} callers at a time. Median of the runs (min–max); overhead = our p50 − the emulator's p50.

| figure | measured | floor in the same run (p50) | target | |
|---|---|---|---|---|
${row("start-stream overhead, single caller, p50", t.d_startOverheadMs!, "ms", `POST live_inputs ${fi.median} ms (${fi.min}–${fi.max})`)}
${row("output add overhead, single caller, p50", t.d_addOverheadMs!, "ms", `POST outputs ${fo.median} ms (${fo.min}–${fo.max})`)}
${row("starts/s at 50 callers", t.d_startsPerSecondAt50!, "/s", `3 × ${BASELINE.startsPerSecond}/s before`)}
${row("output adds/s at 50 callers", t.d_addsPerSecondAt50!, "/s", `3 × ${BASELINE.addsPerSecond}/s before`)}
${row("non-2xx answers under load (per run)", t.d_failedUnderLoad!, "", "0")}

The local runtime's own cost per request, \`GET /healthz\` through the same front door (no object, no
Cloudflare call), p50: ${hz.median} ms (${hz.min}–${hz.max}). It is part of every overhead figure above.

| run | start p50 | add p50 | live_inputs floor | outputs floor | healthz | starts/s | adds/s | answers under load |
|---|---|---|---|---|---|---|---|---|
${d.runs.map((r, i) => `| ${i + 1} | ${r.startP50Ms} | ${r.addP50Ms} | ${r.floorCreateInputP50Ms} | ${r.floorCreateOutputP50Ms} | ${r.healthzP50Ms} | ${r.startsPerSecond} | ${r.addsPerSecond} | ${Object.entries(r.concurrentStatuses).map(([k, v]) => `${v} × ${k}`).join(", ")} |`).join("\n")}
`;
}

// Run alone: `npx tsx scripts/bench/rest.ts [runs]` writes bench/results/rest-latest.{json,md} (and a
// timestamped copy) and exits non-zero on a missed target, like `npm run bench` for the whole set.
if (import.meta.url === `file://${process.argv[1]}`) {
  const { mkdirSync, writeFileSync } = await import("node:fs");
  const path = await import("node:path");
  const { fileURLToPath } = await import("node:url");
  const d = await measureRest(Number(process.argv[2] ?? 3), 15);
  const targets = restTargets(d);
  const date = new Date().toISOString();
  const dir = path.join(path.dirname(fileURLToPath(import.meta.url)), "../../bench/results");
  mkdirSync(dir, { recursive: true });
  const md = `# REST benchmark\n\n${date} · ${process.platform} ${process.arch}, node ${process.version} · \`npx tsx scripts/bench/rest.ts\`\n${restMarkdown(d, targets)}`;
  for (const name of [`rest-${date.replace(/[:.]/g, "-")}`, "rest-latest"]) {
    writeFileSync(path.join(dir, `${name}.json`), `${JSON.stringify({ date, d, targets }, null, 2)}\n`);
    writeFileSync(path.join(dir, `${name}.md`), md);
  }
  console.log(md);
  const missed = Object.entries(targets).filter(([, t]) => !t.ok);
  if (missed.length) {
    console.log(`targets missed: ${missed.map(([k]) => k).join(", ")}`);
    process.exitCode = 1;
  }
}
