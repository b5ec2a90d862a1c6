import type { Env } from "./env";
import { errorResponse } from "./http/errors";
import { answerHead } from "./http/head";
import { router } from "./http/router";

import { sweepLeakedInputs } from "./sweep/leak-sweep";

export { AppAccount } from "./apps/app-account";
export { ApiBudget } from "./budget/api-budget";
export { LiveInputIndex } from "./cloudflare/live-input-index";
export { StreamCoordinator } from "./stream/stream-coordinator";
export { UserStreams } from "./users/user-streams";
export { WatchKeyIndex } from "./users/watch-key-index";

export default {
  fetch(request: Request, env: Env, ctx: ExecutionContext): Promise<Response> {
    // The router's `catch` answers every handler error; this one catches what escapes the router itself.
    const handle = (req: Request) => router.fetch(req, env, ctx).catch(errorResponse);
    return request.method === "HEAD" ? answerHead(request, handle) : handle(request);
  },
  scheduled(_controller: ScheduledController, env: Env, ctx: ExecutionContext): void {
    ctx.waitUntil(sweepLeakedInputs(env).then(() => undefined));
  },
} satisfies ExportedHandler<Env>;
