import { streamApiFor } from "../budget/budgeted-api";
import { streamIdForInput } from "../cloudflare/live-input-index";
import { loadConfig } from "../config";
import type { Env } from "../env";
import { clock } from "../clock";

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
}

export async function sweepLeakedInputs(env: Env, now = clock.now()): Promise<SweepReport> {
  const config = loadConfig(env);
  const api = streamApiFor(env, config);
  const report: SweepReport = { checked: 0, deleted: [], failed: [] };
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
      await api.deleteLiveInputWithOutputs(input.uid);
      report.deleted.push(input.uid);
    } catch (error) {
      report.failed.push(input.uid);
      console.error("leak sweep could not delete an input", error instanceof Error ? error.message : error);
    }
  }
  if (report.deleted.length || report.failed.length) console.log("leak sweep", JSON.stringify(report));
  return report;
}
