import type { AppAccount } from "./apps/app-account";
import type { ApiBudget } from "./budget/api-budget";
import type { LiveInputIndex } from "./cloudflare/live-input-index";
import type { UserStreams } from "./users/user-streams";
import type { StreamCoordinator } from "./stream/stream-coordinator";
import type { WatchKeyIndex } from "./users/watch-key-index";

/** Bindings and variables from wrangler.jsonc / .dev.vars / secrets. All vars arrive as strings. */
export interface Env {
  STREAMS: DurableObjectNamespace<StreamCoordinator>;
  APPS: DurableObjectNamespace<AppAccount>;
  USERS: DurableObjectNamespace<UserStreams>;
  BUDGET: DurableObjectNamespace<ApiBudget>;
  INPUT_INDEX: DurableObjectNamespace<LiveInputIndex>;
  WATCH_KEYS: DurableObjectNamespace<WatchKeyIndex>;

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
  POLL_SLOW_SECONDS?: string;
  OUTPUTS_POLL_SECONDS?: string;
  API_BUDGET_PER_5_MIN?: string;
  API_BUDGET_POLL_SHARE?: string;
  WEBHOOK_SECRET?: string;
  LEAK_SWEEP_MINUTES?: string;
  PRESENCE_AUDIT_SECONDS?: string;
  RECONCILE_SECONDS?: string;
  ORPHAN_WATCH_MINUTES?: string;
  REQUIRE_USER_GRANT?: string;

  /** Realtime SFU (rooms): https://rtc.live.cloudflare.com/v1 by default; app id (var) and secret (secret). */
  REALTIME_API_BASE_URL?: string;
  REALTIME_APP_ID?: string;
  REALTIME_APP_SECRET?: string;
  /** Cloudflare TURN key for generate-ice-servers: key id (var) and API token (secret). */
  TURN_KEY_ID?: string;
  TURN_KEY_API_TOKEN?: string;
  TURN_CREDENTIAL_TTL_SECONDS?: string;
  /** HMAC key for watch-link visitors (a keyed hash of the address; never stored raw). Falls back to DEVICE_TOKEN_SECRET. */
  WATCH_HIT_SECRET?: string;
  /** The origin of watch links (`<origin>/w/<key>`); default: the origin the request reached. */
  PUBLIC_BASE_URL?: string;
  RECORDING_RETENTION_DAYS?: string;
  STREAM_VIDEO_WEBHOOK_SECRET?: string;
}
