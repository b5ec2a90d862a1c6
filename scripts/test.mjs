// `npm test`: the type check and the workerd suite (vitest) side by side, then the end-to-end suite
// (node --test); exits non-zero if any failed.
//
// The type check beside the workerd suite, because most of that suite's time is waiting (workerd
// start-up, the emulator's injected delays), not CPU. So their output does not interleave, each stage's output is held and printed as
// one block when that stage ends, followed by its `[npm test] <stage>: passed in N s` line. `--serial`
// runs them one after the other, streaming, as before (for reading a run as it happens).
//
// Output is the runners' own, except workerd's reports of faults the tests inject on purpose
// (scripts/quiet-faults.mjs says which). Miniflare prints those straight to the process's stderr, where
// no vitest hook sees them, so they are filtered here, on the way out.
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { InjectedFaultFilter } from "./quiet-faults.mjs";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const bin = (name) => path.join(root, "node_modules", ".bin", name);
const serial = process.argv.includes("--serial");
const vitestArgs = process.argv.slice(2).filter((arg) => arg !== "--serial");

const stages = [
  // The project (src, test, emulator, scripts), then the console's browser sources (DOM and preact JSX).
  { name: "typecheck", command: bin("tsc"), args: ["--noEmit"], then: { command: bin("tsc"), args: ["-p", "web/console/src"] } },
  { name: "workerd suite", command: bin("vitest"), args: ["run", ...vitestArgs] },
  // Two e2e files at a time (node's default here is cores − 1 = 1): each boots its own stack on free
  // ports with its own state, and most of a file's time is waiting (boot, timers, ffmpeg).
  { name: "end-to-end suite", command: process.execPath, args: ["--test", "--test-concurrency=2", "test/e2e/"] },
];

/**
 * CPU seconds used by this process's finished children, their own finished children included (Linux:
 * cutime + cstime of /proc/self/stat, in clock ticks of 1/100 s), or null elsewhere. A child's time is
 * added when it is reaped, so reading it right after each stage's process exits says what that stage
 * used, even while another stage still runs. The sum over a run, divided by the cores, is the least
 * time that run could take on this machine: what the test loop costs, beside how long it took. A lower
 * bound: a process killed together with its parent (a test's SIGKILLed stack) is reaped by init, not
 * counted.
 */
function childCpuSeconds() {
  try {
    const fields = readFileSync("/proc/self/stat", "utf8").split(") ")[1].split(" ");
    return (Number(fields[13]) + Number(fields[14])) / 100;
  } catch {
    return null;
  }
}
let cpuSeen = childCpuSeconds();
/** The CPU seconds of the children reaped since the last call. */
function takeCpu() {
  const now = childCpuSeconds();
  if (now === null || cpuSeen === null) return null;
  const used = now - cpuSeen;
  cpuSeen = now;
  return used;
}
const cpu = { total: 0, known: cpuSeen !== null };

/** Runs one stage; `write` gets each output line that is not an injected fault's report. */
function run({ command, args }, write) {
  return new Promise((resolve) => {
    const child = spawn(command, args, { cwd: root, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, FORCE_COLOR: process.stdout.isTTY ? "1" : process.env.FORCE_COLOR ?? "0" } });
    let open = 2;
    const references = new Set();
    const done = new Promise((r) => {
      for (const from of [child.stdout, child.stderr]) {
        const filter = new InjectedFaultFilter(write, references);
        let pending = "";
        from.setEncoding("utf8");
        from.on("data", (chunk) => {
          const lines = (pending + chunk).split("\n");
          pending = lines.pop();
          for (const line of lines) filter.push(line);
        });
        from.on("end", () => {
          if (pending) filter.push(pending);
          filter.end();
          if (--open === 0) r();
        });
      }
    });
    child.on("exit", (code, signal) => {
      const used = takeCpu();
      done.then(() => resolve({ code: code ?? (signal ? 1 : 0), cpu: used }));
    });
  });
}

async function runStage(stage) {
  const started = Date.now();
  const held = [];
  const write = serial ? (line) => process.stdout.write(`${line}\n`) : (line) => held.push(line);
  let { code, cpu: used } = await run(stage, write);
  if (code === 0 && stage.then) {
    const next = await run(stage.then, write);
    code = next.code;
    used = used === null || next.cpu === null ? null : used + next.cpu;
  }
  if (used !== null) cpu.total += used;
  if (held.length) process.stdout.write(`\n── ${stage.name} ──\n${held.join("\n")}\n`);
  const seconds = Math.round((Date.now() - started) / 1000);
  const cpuNote = used === null ? "" : ` (CPU ${Math.round(used)} s)`;
  console.log(`\n[npm test] ${stage.name}: ${code === 0 ? "passed" : `FAILED (exit ${code})`} in ${seconds} s${cpuNote}`);
  return code === 0 ? null : stage.name;
}

const t0 = Date.now();
let failed;
if (serial) {
  failed = [];
  for (const stage of stages) failed.push(await runStage(stage));
} else {
  // The type check beside the workerd suite; the end-to-end suite after them, alone: its stacks
  // (wrangler dev, workerd, ffmpeg) are timing-sensitive, and beside the workerd suite on 2 cores wrangler
  // dev died mid-file (fault matrix) and answers were reset (recordings) in a clean-clone run.
  const [typecheck, workerd, e2e] = stages;
  console.log(`[npm test] running ${typecheck.name} and ${workerd.name} side by side, then ${e2e.name}; each prints its output when it ends`);
  failed = [...(await Promise.all([runStage(typecheck), runStage(workerd)])), await runStage(e2e)];
}
failed = failed.filter(Boolean);
const cores = availableParallelism();
const floor = cpu.known ? `; CPU ${Math.round(cpu.total)} s in all, so on ${cores} cores no run of it can take less than ${Math.round(cpu.total / cores)} s` : "";
console.log(`[npm test] ${failed.length === 0 ? "all passed" : `failed: ${failed.join(", ")}`} in ${Math.round((Date.now() - t0) / 1000)} s${floor}`);
process.exit(failed.length === 0 ? 0 : 1);
