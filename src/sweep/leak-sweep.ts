import { streamApiFor } from "../budget/budgeted-api";
import { streamIdForInput } from "../cloudflare/live-input-index";
import { loadConfig } from "../config";
import type { Env } from "../env";
import { clock } from "../clock";
import { BUDGET_OBJECT_NAME } from "../budget/api-budget";
import { STAT } from "../ops/counters";
import { flushStats } from "../ops/stats-buffer";
import { sweepVideos } from "./video-sweep";

/**
 * The leak sweep (cron): lists the live inputs that are ours (by meta) and deletes, with their outputs,
 * every one the coordinator does not know as a running stream's input, once it is older than
 * LEAK_SWEEP_MINUTES (10) (or stopped that long ago). It is
 * the safety net under every other cleanup path: a crash between creating and recording an input,
 * or a stop whose cleanup kept failing.
 */
export interface SweepReport {
  checked: number;
  deleted: string[];
  failed: string[];
  /** Outputs deleted with the inputs in `deleted` (they were still restreaming a leaked input). */
  outputsDeleted: number;
  /** Videos whose creator names one of our streams (video-sweep.ts), and those deleted as leaks. */
  videosChecked: number;
  videosDeleted: string[];
}

/**
 * Every run is counted for GET /api/admin/stats (ops/counters.ts): runs, failed runs (the list itself
 * failed), inputs and outputs deleted as leaks, deletes that failed, and the last run's figures.
 */
export async function sweepLeakedInputs(env: Env, now = clock.now()): Promise<SweepReport> {
  const report: SweepReport = { checked: 0, deleted: [], failed: [], outputsDeleted: 0, videosChecked: 0, videosDeleted: [] };
  let failedRun = false;
  try {
    await sweep(env, now, report);
  } catch (error) {
    failedRun = true;
    throw error;
  } finally {
    await flushStats(env.BUDGET.getByName(BUDGET_OBJECT_NAME), {
      add: {
        [STAT.sweepRuns]: 1,
        [STAT.sweepFailedRuns]: failedRun ? 1 : 0,
        [STAT.sweepInputsDeleted]: report.deleted.length,
        [STAT.sweepOutputsDeleted]: report.outputsDeleted,
        [STAT.sweepDeleteFailures]: report.failed.length,
      },
      set: { [STAT.sweepLastChecked]: report.checked, [STAT.sweepLastDeleted]: report.deleted.length, [STAT.sweepLastFailed]: report.failed.length },
    });
  }
  if (report.deleted.length || report.failed.length || report.videosDeleted.length) console.log("leak sweep", JSON.stringify(report));
  return report;
}

async function sweep(env: Env, now: number, report: SweepReport): Promise<void> {
  const config = loadConfig(env);
  const api = streamApiFor(env, config);
  const maxAgeMs = config.leakSweepMinutes * 60_000;

  for (const input of await api.listOurLiveInputs()) {
    report.checked += 1;
    const streamId = input.streamId ?? (await streamIdForInput(env, input.uid));
    const info = streamId ? await env.STREAMS.getByName(streamId).sweepInfo() : null;
    // A running stream owns the input it names; a stopping one is nudged to resume its own cleanup.
    // Every other input of ours (a stream that is unknown, stopped, initializing, or that uses another
    // input) is deleted once past the safety age: only a create in flight can be that young.
    const owned = info !== null && (info.phase === "running" || info.phase === "stopping") && info.liveInputUid === input.uid;
    if (owned) {
      if (info.phase === "stopping" && streamId) await env.STREAMS.getByName(streamId).forceStop().catch(() => undefined);
      continue;
    }
    const created = input.created ? Date.parse(input.created) : now;
    const since = info?.phase === "stopped" && info.stoppedAt ? Math.max(info.stoppedAt, created) : created;
    if (now - since <= maxAgeMs) continue;
    try {
      report.outputsDeleted += await api.deleteLiveInputWithOutputs(input.uid);
      report.deleted.push(input.uid);
    } catch (error) {
      report.failed.push(input.uid);
      console.error("leak sweep could not delete an input", error instanceof Error ? error.message : error);
    }
  }
  await sweepVideos(env, api, now, maxAgeMs, report);
}
