import { connectToMiniflareSocket, getRunnerName } from "@cloudflare/vitest-pool-workers";
import { appendFileSync } from "node:fs";
import type { Plugin } from "vitest/config";

/**
 * Mutation testing only (vitest.mutation.config.ts): keeps one workerd runtime alive across Vitest runs.
 *
 * Stryker's vitest runner calls `vitest.start(files)` once per mutant. Under
 * @cloudflare/vitest-pool-workers 0.23 every run gets a new pool worker, and every pool worker starts a
 * Miniflare of its own (a new workerd process) and disposes it when the run ends; the new runtime then
 * imports the whole module graph again. That start and import were ≈ 2/3 of a Durable Object mutant's time
 * (docs/testing.md#where-a-mutants-time-went). Mutants are switched at run time (`__stryker__.activeMutant`),
 * so the runtime and the evaluated modules can stay: this plugin parks the Miniflare when a run ends and
 * hands it, with a new socket to the same runner object, to the next run. With `isolate: false` the runner
 * keeps the evaluated modules and re-executes only the test files (vitest invalidates each file it runs).
 *
 * Each test file still gets fresh modules (vitest's `isolate`, default on) and ends by resetting the runtime
 * (test/mutation/fresh-runtime.ts: every Durable Object aborted, storage and alarms deleted), which it marks
 * in the file's meta. A runtime is handed on only when every file that ran in it says so, and no error
 * happened outside a test; otherwise (a run cut short, a crash) it is disposed and the next run starts a
 * fresh one, so no mutant is judged in what an earlier one left behind.
 */
export const RUNTIME_RESET = "streamCoordinatorRuntimeReset";
interface MiniflareLike {
  dispose(): Promise<void>;
}
interface CloudflarePoolWorkerLike {
  mf?: MiniflareLike;
  socket?: { close(): void };
  parsedPoolOptions?: unknown;
  main?: string;
  start(): Promise<void>;
  stop(): Promise<void>;
  send(message: unknown): void;
}
interface Parked {
  mf: MiniflareLike;
  /** Runs this runtime served so far (it is recycled after PERSISTENT_WORKERD_MAX_RUNS, default 100). */
  runs: number;
  parsedPoolOptions: unknown;
  main?: string;
  /** The pool worker's own stop (disposes the runtime), for when the runtime is finally let go. */
  dispose(): Promise<void>;
}

export function persistentWorkerd(): Plugin {
  return {
    name: "stream-coordinator:persistent-workerd",
    configureVitest({ project, vitest }) {
      const inner = project.config.poolRunner;
      if (!inner) throw new Error("persistent-workerd must come after the cloudflareTest plugin");
      const parked: Parked[] = [];
      let reused = 0;
      let started = 0;
      // PERSISTENT_WORKERD_LOG=<file>: one line per run end (handed on or disposed, and why), for measuring.
      const log = (line: string) => {
        if (process.env.PERSISTENT_WORKERD_LOG) appendFileSync(process.env.PERSISTENT_WORKERD_LOG, `${new Date().toISOString()} ${process.pid} ${line}\n`);
      };
      // A pool worker runs one task (the files of one `run` message). Its verdict is read from the file tasks
      // of this run (vitest.state.idMap keeps the latest task per file; Stryker clears filesMap between runs).
      const fileTask = (path: string) =>
        [...vitest.state.idMap.values()].find((t) => (t as { filepath?: string }).filepath === path);
      const maxRuns = Number(process.env.PERSISTENT_WORKERD_MAX_RUNS) || 100;
      project.config.poolRunner = {
        name: inner.name,
        createPoolWorker(options) {
          const worker = inner.createPoolWorker(options) as unknown as CloudflarePoolWorkerLike;
          const ran = new Map<string, unknown>();
          const send = worker.send.bind(worker);
          worker.send = (message) => {
            const m = message as { type?: string; context?: { files?: { filepath: string }[] } };
            if (m.type === "run") for (const f of m.context?.files ?? []) ran.set(f.filepath, fileTask(f.filepath));
            send(message);
          };
          /** Every file of this run reported, and its reset completed; no error outside a test. */
          const leftClean = () =>
            ran.size > 0 &&
            vitest.state.errorsSet.size === 0 &&
            [...ran].every(([path, before]) => {
              const task = fileTask(path);
              return task !== undefined && task !== before && task.meta?.[RUNTIME_RESET as never] === true;
            });
          const freshStart = worker.start.bind(worker);
          const dispose = worker.stop.bind(worker);
          let runs = 1;
          worker.start = async () => {
            const runtime = parked.pop();
            if (!runtime) {
              started++;
              return freshStart();
            }
            runs = runtime.runs + 1;
            reused++;
            worker.mf = runtime.mf;
            worker.parsedPoolOptions = runtime.parsedPoolOptions;
            worker.main = runtime.main;
            // A new socket to the same runner object: it runs vitest's worker `init` again on it.
            worker.socket = await connectToMiniflareSocket(runtime.mf as never, getRunnerName(options.project));
          };
          worker.stop = async () => {
            const clean = leftClean() && runs < maxRuns;
            log(`${clean ? "hand on" : "dispose"} after run ${runs} (${[...ran.keys()].map((p) => `${p.split("/").pop()}: ${fileTask(p)?.result?.state}`).join(", ")})`);
            if (!worker.mf || !clean) return dispose();
            worker.socket?.close();
            worker.socket = undefined;
            const mf = worker.mf;
            parked.push({
              mf,
              runs,
              parsedPoolOptions: worker.parsedPoolOptions,
              main: worker.main,
              dispose: () => {
                worker.mf = mf;
                return dispose();
              },
            });
            worker.mf = undefined;
          };
          return worker as never;
        },
      };
      vitest.onClose(async () => {
        await Promise.all(parked.splice(0).map((p) => p.dispose().catch(() => undefined)));
        log(`closed: ${started} runtime(s) started, ${reused} run(s) reused one`);
      });
    },
  };
}
