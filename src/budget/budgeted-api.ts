import type { Config } from "../config";
import { StreamApi } from "../cloudflare/stream-api";
import type { Env } from "../env";
import { clock } from "../clock";
import { BUDGET_OBJECT_NAME } from "./api-budget";
import { acquireLeased, blockLeases } from "./lease-pool";
import { countLocally, flushStats } from "../ops/stats-buffer";

/**
 * A StreamApi whose calls are paid from the deployment's shared budget, through short leases kept in
 * this isolate (lease-pool.ts): most calls take a slot without a round trip to ApiBudget.
 */
export function streamApiFor(env: Env, config: Config, waitUntil?: (p: Promise<unknown>) => void): StreamApi {
  const budget = env.BUDGET.getByName(BUDGET_OBJECT_NAME);
  return new StreamApi(config, {
    acquire: (priority, settings) => acquireLeased(budget, priority, settings, () => clock.now()),
    reportRateLimited: async (seconds) => {
      // This isolate stops at once; ApiBudget then refuses every new lease until the block has passed.
      blockLeases(clock.now() + Math.max(1, seconds) * 1000);
      await budget.reportRateLimited(seconds);
    },
    count: (name, rare) => {
      countLocally(name);
      if (!rare) return;
      // Written off the caller's path: a Worker hands the write to waitUntil, an object just lets it run.
      const write = flushStats(env.BUDGET.getByName(BUDGET_OBJECT_NAME));
      waitUntil?.(write);
    },
  });
}
