import type { Env } from "./env";
import { router } from "./http/router";

export { AppAccount } from "./apps/app-account";
export { StreamCoordinator } from "./stream/stream-coordinator";
export { UserStreams } from "./users/user-streams";

export default {
  fetch(request: Request, env: Env, ctx: ExecutionContext): Promise<Response> {
    return router.fetch(request, env, ctx);
  },
} satisfies ExportedHandler<Env>;
