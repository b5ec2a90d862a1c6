import type { AppAccount } from "./apps/app-account";
import type { UserStreams } from "./users/user-streams";
import type { StreamCoordinator } from "./stream/stream-coordinator";

/** Bindings and variables from wrangler.jsonc / .dev.vars / secrets. All vars arrive as strings. */
export interface Env {
  STREAMS: DurableObjectNamespace<StreamCoordinator>;
  APPS: DurableObjectNamespace<AppAccount>;
  USERS: DurableObjectNamespace<UserStreams>;

  CLOUDFLARE_API_BASE_URL?: string;
  CLOUDFLARE_API_TOKEN?: string;
  CLOUDFLARE_ACCOUNT_ID?: string;
  CLOUDFLARE_TIMEOUT_MS?: string;
  STREAM_CUSTOMER_CODE?: string;
  STREAM_PLAYBACK_BASE_URL?: string;

  ADMIN_TOKEN?: string;
  DEVICE_TOKEN_SECRET?: string;

  STREAM_STARTS_PER_MINUTE?: string;
  JOIN_WINDOW_SECONDS?: string;
  VIEWER_GRACE_SECONDS?: string;
}
