import type { Config } from "../config";
import { StreamApi } from "../cloudflare/stream-api";
import type { Env } from "../env";
import { BUDGET_OBJECT_NAME } from "./api-budget";

/** A StreamApi whose calls pass the deployment's shared budget object. */
export function streamApiFor(env: Env, config: Config): StreamApi {
  const budget = env.BUDGET.getByName(BUDGET_OBJECT_NAME);
  return new StreamApi(config, {
    acquire: (priority, settings) => budget.acquire(priority, settings),
    reportRateLimited: (seconds) => budget.reportRateLimited(seconds),
  });
}
