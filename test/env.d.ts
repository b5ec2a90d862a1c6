// Types the `env` that tests get from `cloudflare:test` as the coordinator's own Env.
import type { Env as CoordinatorEnv } from "../src/env";

declare global {
  namespace Cloudflare {
    interface Env extends CoordinatorEnv {
      ADMIN_TOKEN: string;
    }
  }
}
export {};
