import type { Env } from "../env";
import { loadConfig } from "../config";
import { BUDGET_OBJECT_NAME } from "../budget/api-budget";
import { STAT } from "../ops/counters";
import { flushStats } from "../ops/stats-buffer";
import { authenticateAdmin } from "./auth";
import { json } from "./errors";

/**
 * GET /api/admin/stats (admin token): what a production deployment watches (docs/deploy.md, "What to
 * watch"). Counts are cumulative since `countingSince` (watch their differences between two reads); each
 * group says when it last moved. They are read from the ApiBudget object, where they are kept
 * (ops/counters.ts); this isolate's pending counts are written first. Counts another isolate holds back
 * (budget refusals ride along with its next lease) arrive with that lease.
 */
export async function handleAdminStats(request: Request, env: Env): Promise<Response> {
  await authenticateAdmin(request, env);
  const budget = env.BUDGET.getByName(BUDGET_OBJECT_NAME);
  await flushStats(budget);
  const { counters, countingSince, usedLast5Min, blockedUntil } = await budget.stats();
  const config = loadConfig(env);
  const n = (name: string) => counters[name]?.value ?? 0;
  const last = (...names: string[]) => iso(Math.max(0, ...names.map((name) => counters[name]?.updatedAt ?? 0)));
  const refusal = ["user", "cleanup", "poll"] as const;
  const failure = ["server", "client", "unreachable"] as const;
  const outcomes = ["accepted", "test", "unauthorized", "invalid_payload", "unknown_input", "disabled", "failed"] as const;
  const sweepRan = counters[STAT.sweepRuns] !== undefined;

  return json({
    generatedAt: new Date().toISOString(),
    countingSince: countingSince === null ? null : iso(countingSince),
    budget: {
      limitPer5Min: config.apiBudgetPer5Min,
      pollLimitPer5Min: Math.floor(config.apiBudgetPer5Min * config.apiBudgetPollShare),
      usedLast5Min,
      blockedUntil,
      refusals: Object.fromEntries(refusal.map((p) => [p, n(STAT.budgetRefused(p))])),
      unavailable: n(STAT.budgetUnavailable),
      lastRefusalAt: last(...refusal.map((p) => STAT.budgetRefused(p)), STAT.budgetUnavailable),
    },
    cloudflare: {
      rateLimited: n(STAT.rateLimited),
      lastRateLimitedAt: last(STAT.rateLimited),
      failures: Object.fromEntries(failure.map((k) => [k, n(STAT.cloudflareFailed(k))])),
      lastFailureAt: last(...failure.map((k) => STAT.cloudflareFailed(k))),
    },
    leakSweep: {
      runs: n(STAT.sweepRuns),
      failedRuns: n(STAT.sweepFailedRuns),
      lastRunAt: last(STAT.sweepRuns),
      lastRun: sweepRan ? { checked: n(STAT.sweepLastChecked), deleted: n(STAT.sweepLastDeleted), failed: n(STAT.sweepLastFailed) } : null,
      inputsDeleted: n(STAT.sweepInputsDeleted),
      outputsDeleted: n(STAT.sweepOutputsDeleted),
      deleteFailures: n(STAT.sweepDeleteFailures),
    },
    webhooks: {
      accepted: n(STAT.webhook("accepted")),
      tests: n(STAT.webhook("test")),
      rejected: {
        unauthorized: n(STAT.webhook("unauthorized")),
        invalidPayload: n(STAT.webhook("invalid_payload")),
        unknownInput: n(STAT.webhook("unknown_input")),
        disabled: n(STAT.webhook("disabled")),
      },
      failed: n(STAT.webhook("failed")),
      lastAcceptedAt: last(STAT.webhook("accepted")),
      lastRejectedAt: last(...outcomes.filter((o) => o !== "accepted" && o !== "test").map((o) => STAT.webhook(o))),
    },
  });
}

function iso(ms: number): string | null {
  return ms > 0 ? new Date(ms).toISOString() : null;
}

