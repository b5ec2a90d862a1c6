// `npm test`: the type check, the workerd suite (vitest) and the end-to-end suite (node --test), in that
// order, each run to the end even if an earlier one failed; exits non-zero if any failed.
//
// Output is passed through as it comes, except workerd's reports of faults the tests inject on purpose
// (scripts/quiet-faults.mjs says which). Miniflare prints those straight to the process's stderr, where
// no vitest hook sees them, so they are filtered here, on the way out.
import { spawn } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { InjectedFaultFilter } from "./quiet-faults.mjs";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const bin = (name) => path.join(root, "node_modules", ".bin", name);

const stages = [
  { name: "typecheck", command: bin("tsc"), args: ["--noEmit"] },
  { name: "workerd suite", command: bin("vitest"), args: ["run", ...process.argv.slice(2)] },
  // Two e2e files at a time (node's default here is cores − 1 = 1): each boots its own stack on free
  // ports with its own state, and most of a file's time is waiting (boot, timers, ffmpeg); 476 s → 275 s
  // on this 2-core machine, all 123 tests passing.
  { name: "end-to-end suite", command: process.execPath, args: ["--test", "--test-concurrency=2", "test/e2e/"] },
];

function run({ command, args }) {
  return new Promise((resolve) => {
    const child = spawn(command, args, { cwd: root, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, FORCE_COLOR: process.stdout.isTTY ? "1" : process.env.FORCE_COLOR ?? "0" } });
    for (const [from, to] of [[child.stdout, process.stdout], [child.stderr, process.stderr]]) {
      const filter = new InjectedFaultFilter((line) => to.write(`${line}\n`));
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
      });
    }
    child.on("exit", (code, signal) => resolve(code ?? (signal ? 1 : 0)));
  });
}

let failed = [];
const t0 = Date.now();
for (const stage of stages) {
  const started = Date.now();
  const code = await run(stage);
  console.log(`\n[npm test] ${stage.name}: ${code === 0 ? "passed" : `FAILED (exit ${code})`} in ${Math.round((Date.now() - started) / 1000)} s`);
  if (code !== 0) failed.push(stage.name);
}
console.log(`[npm test] ${failed.length === 0 ? "all passed" : `failed: ${failed.join(", ")}`} in ${Math.round((Date.now() - t0) / 1000)} s`);
process.exit(failed.length === 0 ? 0 : 1);
