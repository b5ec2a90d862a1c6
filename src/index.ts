import type { Env } from "./env";
import { router } from "./http/router";

import { sweepLeakedInputs } from "./sweep/leak-sweep";

export { AppAccount } from "./apps/app-account";
export { ApiBudget } from "./budget/api-budget";
export { LiveInputIndex } from "./cloudflare/live-input-index";
export { StreamCoordinator } from "./stream/stream-coordinator";
export { UserStreams } from "./users/user-streams";

export default {
  fetch(request: Request, env: Env, ctx: ExecutionContext): Promise<Response> {
    return router.fetch(request, env, ctx);
  },
  scheduled(_controller: ScheduledController, env: Env, ctx: ExecutionContext): void {
    ctx.waitUntil(sweepLeakedInputs(env).then(() => undefined));
  },
} satisfies ExportedHandler<Env>;
