import { z } from "zod";
import * as api from "../schemas/api";
import { RestreamResult, StartRtmpStream } from "../schemas/protocol";
import * as out from "../schemas/responses";
import type { ApiErrorCode } from "../schemas/responses";
import { LiveInputWebhook, WebhookTestMessage } from "../schemas/webhook";
import { REALTIME_PATH_PARAMS, REALTIME_ROUTES } from "./openapi-realtime";

/** What the webhook route accepts: a notification, or Cloudflare's test message (http/stream-webhook.ts). */
const LiveInputNotification = z.union([LiveInputWebhook, WebhookTestMessage]);

/**
 * The route table /openapi.json is generated from (src/http/openapi.ts). Each key is the router's own
 * "METHOD path" (itty-router syntax); test/http/openapi.test.ts checks that the router and this table
 * list the same routes. Request schemas are the ones the handlers give parseJson; answer schemas the
 * ones they `reply()` with. Errors every route of a kind shares (authentication, bodies, path ids,
 * 500 and 503) are added by the generator; `errors` lists the route's own, as docs/api.md does.
 */

export type Tag = "Meta" | "Admin" | "Streams" | "Outputs" | "Recordings" | "Realtime" | "Device" | "Webhooks" | "Watch";
/** `user`: the admin, the user's device, or an app (with X-User-Grant while grants are required). `appOrAdmin`: an app, or the admin. */
export type Auth = "none" | "admin" | "app" | "device" | "webhook" | "videoWebhook" | "socket" | "realtime" | "user" | "appOrAdmin";

export interface Route {
  /** Only where the one derived from the path would repeat another's (openapi.ts, `operationId`). */
  operationId?: string;
  summary: string;
  description?: string;
  tag: Tag;
  auth: Auth;
  /** The schema the handler gives parseJson (an empty body counts as `{}`). */
  body?: z.ZodType;
  /** The codes a malformed or invalid body gets (default INVALID_JSON, INVALID_REQUEST). */
  bodyErrors?: ApiErrorCode[];
  headers?: Record<string, { schema: z.ZodType; description: string }>;
  query?: Record<string, { schema: z.ZodType; description: string }>;
  ok: Record<number, { description: string; schema?: z.ZodType }>;
  errors?: Partial<Record<number, ApiErrorCode[]>>;
}

/** The stream lists' paging (GET /api/streams, GET /api/admin/streams; http/stream-lists.ts). */
const LIST_QUERY = {
  cursor: { schema: api.ListCursor, description: "The previous page's nextCursor; omit for the first page. Anything else is 400 INVALID_REQUEST" },
  limit: { schema: api.ListLimit, description: "1 to 50, default 20. Anything else is 400 INVALID_REQUEST" },
};

const IDEMPOTENCY_KEY = {
  schema: api.IdempotencyKey,
  description: "Optional. A retry with the same key, URL and name returns the same output (24 h); another URL or name gets 422",
};

export const ROUTES: Record<string, Route> = {
  "GET /healthz": { summary: "Liveness", tag: "Meta", auth: "none", ok: { 200: { description: "Up", schema: out.HealthAnswer } } },
  "GET /openapi.json": {
    summary: "This OpenAPI 3.1 document",
    tag: "Meta",
    auth: "none",
    ok: { 200: { description: "The REST API, generated from the router's zod schemas", schema: out.SpecDocument } },
  },
  "GET /asyncapi.json": {
    summary: "The WebSocket messages (AsyncAPI 3.0)",
    tag: "Meta",
    auth: "none",
    ok: { 200: { description: "Both directions of the app and device sockets, generated from their zod schemas", schema: out.SpecDocument } },
  },

  "POST /api/admin/apps": {
    summary: "Register an app",
    description: "The API key is shown only in this answer.",
    tag: "Admin",
    auth: "admin",
    body: api.RegisterAppBody,
    ok: { 201: { description: "Registered", schema: out.AppKeyAnswer } },
    errors: { 409: ["APP_EXISTS"] },
  },
  "POST /api/admin/apps/:packageName/rotate-key": {
    summary: "Issue a new API key",
    description: "The old key stops working at once here and within 5 s everywhere.",
    tag: "Admin",
    auth: "admin",
    ok: { 200: { description: "The new key", schema: out.AppKeyAnswer } },
  },
  "DELETE /api/admin/apps/:packageName": {
    summary: "Delete an app's credentials",
    description: "Its streams and outputs are not touched.",
    tag: "Admin",
    auth: "admin",
    ok: { 200: { description: "Deleted", schema: out.AppRemovedAnswer } },
  },
  "POST /api/admin/device-tokens": {
    summary: "Mint a device token",
    tag: "Admin",
    auth: "admin",
    body: api.DeviceTokenBody,
    ok: { 201: { description: "Minted", schema: out.DeviceTokenAnswer } },
    errors: { 503: ["DEVICE_TOKENS_DISABLED"] },
  },
  "POST /api/admin/user-grants": {
    summary: "Mint a user grant",
    description: "The platform's proof that a user lets an app use their stream; the app sends it as X-User-Grant.",
    tag: "Admin",
    auth: "admin",
    body: api.UserGrantBody,
    ok: { 201: { description: "Minted", schema: out.UserGrantAnswer } },
    errors: { 503: ["DEVICE_TOKENS_DISABLED"] },
  },
  "GET /api/admin/stats": {
    summary: "What a production deployment watches",
    description: "Budget refusals, Cloudflare failures, leak-sweep deletions and webhook outcomes, cumulative since countingSince (docs/deploy.md).",
    tag: "Admin",
    auth: "admin",
    ok: { 200: { description: "The counts", schema: out.AdminStats } },
  },
  "GET /api/admin/streams": {
    operationId: "listAdminStreams",
    summary: "List every running stream",
    description:
      "Newest first, paged by cursor: every stream that is initializing, running or stopping, with its participants and outputs (stream keys masked). A page holds `limit` streams unless it is the last (nextCursor null), or met many index entries of streams that are gone, which it drops.",
    tag: "Admin",
    auth: "admin",
    query: LIST_QUERY,
    ok: { 200: { description: "A page of running streams", schema: out.AdminStreamList } },
    errors: { 400: ["INVALID_REQUEST"] },
  },
  "POST /api/admin/streams/:streamId/stop": {
    summary: "Stop a stream now",
    description: "Idempotent: stopping a stopped stream returns its snapshot again.",
    tag: "Admin",
    auth: "admin",
    ok: { 200: { description: "The stream's snapshot", schema: out.StreamSnapshot } },
  },

  "GET /api/streams": {
    operationId: "listStreams",
    summary: "List the streams this app takes part in",
    description:
      "Newest join first, paged by cursor: every stream the app started or joined that is running, or stopped less than 24 h ago. A page holds `limit` streams unless it is the last (nextCursor null), or met many index entries of streams that are gone, which it drops.",
    tag: "Streams",
    auth: "app",
    query: LIST_QUERY,
    ok: { 200: { description: "A page of the app's streams", schema: out.StreamList } },
    errors: { 400: ["INVALID_REQUEST"] },
  },
  "POST /api/streams": {
    summary: "Start or join the user's stream",
    description:
      "Joins the user's running stream, or creates one. Either way the app gets a join hold (JOIN_WINDOW_SECONDS) and becomes a participant.",
    tag: "Streams",
    auth: "app",
    body: api.StartStreamBody,
    headers: { "X-User-Grant": { schema: z.string(), description: "The user's grant for this app; required unless REQUIRE_USER_GRANT=false" } },
    ok: {
      201: { description: "Created", schema: out.StartStreamAnswer },
      200: { description: "Joined the user's running stream", schema: out.StartStreamAnswer },
    },
    errors: { 403: ["USER_NOT_GRANTED"], 429: ["RATE_LIMITED"], 502: ["CLOUDFLARE_ERROR"], 503: ["BUSY"] },
  },
  "GET /api/streams/:streamId": {
    summary: "Read a stream",
    tag: "Streams",
    auth: "app",
    ok: { 200: { description: "The stream's snapshot", schema: out.StreamSnapshot } },
  },
  "GET /api/streams/:streamId/analytics": {
    summary: "A stream's analytics",
    description:
      "Peak and unique viewing apps, viewer-minutes, live seconds, reconnects, a timeline of 60 s buckets (at most 720 points, neighbours merged when full), Cloudflare's live viewer readings and the watch link's hits by country. For the apps that took part, and the admin (Bearer token without app headers). Kept as long as the stream's record.",
    tag: "Streams",
    auth: "appOrAdmin",
    ok: { 200: { description: "The analytics as of now", schema: out.StreamAnalytics } },
  },
  "GET /api/users/:userId/watch-link": {
    summary: "The user's watch link",
    description: "Made on first use. For the admin, the user's device, or an app (with X-User-Grant for this user while grants are required). `Cache-Control: no-store`.",
    tag: "Watch",
    auth: "user",
    ok: { 200: { description: "The key and its URL", schema: out.WatchLinkAnswer } },
    errors: { 400: ["INVALID_REQUEST"], 403: ["USER_NOT_GRANTED", "FORBIDDEN", "ADMIN_DISABLED"] },
  },
  "POST /api/users/:userId/watch-link/rotate": {
    summary: "Rotate the user's watch link",
    description: "A new key; the old one answers 404 WATCH_LINK_NOT_FOUND from this answer on. The running stream's `previewUrl` follows. Same callers as reading it.",
    tag: "Watch",
    auth: "user",
    ok: { 200: { description: "The new key and its URL", schema: out.WatchLinkAnswer } },
    errors: { 400: ["INVALID_REQUEST"], 403: ["USER_NOT_GRANTED", "FORBIDDEN", "ADMIN_DISABLED"] },
  },
  "GET /w/:key": {
    summary: "A watch link, resolved now",
    description:
      "JSON: the user's running stream (else their last one) as it is now. A browser asking for `text/html` gets the watch page instead, which follows the stream across reconnects and new streams (counted as a hit). Unknown and rotated keys: the same 404. Public; `Cache-Control: no-store`.",
    tag: "Watch",
    auth: "none",
    ok: { 200: { description: "The stream behind the link (or the watch page, as text/html)", schema: out.WatchAnswer } },
    errors: { 404: ["WATCH_LINK_NOT_FOUND"] },
  },
  "GET /w/:key/video.m3u8": {
    summary: "Play a watch link",
    description: "302 to the live HLS manifest while live or reconnecting, else to the newest ready recording; 404 NOTHING_TO_PLAY otherwise. Counted as a hit. `Cache-Control: no-store`.",
    tag: "Watch",
    auth: "none",
    ok: { 302: { description: "Location: the manifest to play" } },
    errors: { 404: ["WATCH_LINK_NOT_FOUND", "NOTHING_TO_PLAY"] },
  },
  "DELETE /api/streams/:streamId": {
    summary: "Leave a stream",
    description: "The stream goes on for other apps; the app's outputs keep running.",
    tag: "Streams",
    auth: "app",
    ok: { 200: { description: "The stream's snapshot", schema: out.StreamSnapshot } },
  },
  "POST /api/streams/:streamId/tickets": {
    summary: "Get a single-use ticket for a browser viewer socket",
    tag: "Streams",
    auth: "app",
    ok: { 201: { description: "Valid 60 s, once", schema: out.TicketAnswer } },
    errors: { 409: ["STREAM_ENDED"] },
  },
  "GET /api/streams/:streamId/ws": {
    summary: "Open a viewer or device WebSocket",
    description: "Messages: /asyncapi.json. The role is chosen by the credentials: app headers, `?ticket=`, or a device token.",
    tag: "Streams",
    auth: "socket",
    headers: { Upgrade: { schema: z.literal("websocket"), description: "Required" } },
    query: {
      ticket: { schema: z.string().max(128), description: "A ticket from POST /api/streams/{streamId}/tickets (browsers)" },
      token: { schema: z.string(), description: "A device token, instead of the Authorization header" },
    },
    ok: { 101: { description: "Switching Protocols: the socket is open (messages in /asyncapi.json)" } },
    errors: { 403: ["FORBIDDEN", "NOT_A_PARTICIPANT"], 410: ["STREAM_ENDED"], 426: ["UPGRADE_REQUIRED"], 503: ["DEVICE_TOKENS_DISABLED"] },
  },

  "POST /api/streams/:streamId/outputs": {
    summary: "Add a restream output",
    tag: "Outputs",
    auth: "app",
    body: api.AddOutputBody,
    bodyErrors: ["INVALID_URL", "INVALID_REQUEST"],
    headers: { "Idempotency-Key": IDEMPOTENCY_KEY },
    ok: { 200: { description: "Added (it exists at Cloudflare)", schema: out.OutputAdded } },
    errors: {
      403: ["NOT_A_VIEWER"],
      409: ["OUTPUTS_UNSUPPORTED", "MAX_OUTPUTS_REACHED", "MAX_APP_OUTPUTS_REACHED", "DUPLICATE_URL"],
      422: ["IDEMPOTENCY_KEY_REUSED"],
      502: ["CLOUDFLARE_ERROR"],
    },
  },
  "GET /api/streams/:streamId/outputs": {
    summary: "List a stream's outputs",
    tag: "Outputs",
    auth: "app",
    ok: { 200: { description: "Every output, masked unless this app added it", schema: out.OutputList } },
    errors: { 403: ["NOT_A_VIEWER"] },
  },
  "DELETE /api/streams/:streamId/outputs/:outputId": {
    summary: "Remove an output (its owner only)",
    tag: "Outputs",
    auth: "app",
    ok: {
      200: { description: "Removed at Cloudflare", schema: out.OutputRemoved },
      202: { description: "Removed here; Cloudflare confirms within RECONCILE_SECONDS", schema: out.OutputRemoved },
    },
    errors: { 403: ["NOT_AUTHORIZED"], 404: ["OUTPUT_NOT_FOUND"], 502: ["CLOUDFLARE_ERROR"] },
  },
  "PATCH /api/streams/:streamId/outputs/:outputId": {
    summary: "Enable or disable an output (its owner only)",
    tag: "Outputs",
    auth: "app",
    body: api.PatchOutputBody,
    ok: { 200: { description: "Set at Cloudflare", schema: out.OutputToggled } },
    errors: { 403: ["NOT_AUTHORIZED"], 404: ["OUTPUT_NOT_FOUND"], 502: ["CLOUDFLARE_ERROR"] },
  },

  "GET /api/streams/:streamId/recordings": {
    operationId: "listRecordings",
    summary: "The stream's recordings",
    description:
      "For every app that took part in the stream, while any recording is kept (also after the stream ended and its snapshot is gone). Each recording is a Cloudflare video of the stream's live input: `recording` while live, `processing` after, then `ready` (playable) or `error`; `deleted` once deleted.",
    tag: "Recordings",
    auth: "app",
    ok: { 200: { description: "Oldest first", schema: out.RecordingList } },
  },
  "DELETE /api/streams/:streamId/recordings/:recordingId": {
    operationId: "deleteRecording",
    summary: "Delete a recording (the app that started the stream)",
    tag: "Recordings",
    auth: "app",
    ok: {
      200: { description: "Deleted at Cloudflare", schema: out.RecordingDeleted },
      202: { description: "Deleted here; Cloudflare confirms within RECONCILE_SECONDS", schema: out.RecordingDeleted },
    },
    errors: { 403: ["FORBIDDEN"], 404: ["RECORDING_NOT_FOUND"] },
  },
  "GET /api/admin/streams/:streamId/recordings": {
    operationId: "listRecordingsAsAdmin",
    summary: "A stream's recordings (admin)",
    tag: "Recordings",
    auth: "admin",
    ok: { 200: { description: "Oldest first", schema: out.RecordingList } },
  },
  "DELETE /api/admin/streams/:streamId/recordings/:recordingId": {
    operationId: "deleteRecordingAsAdmin",
    summary: "Delete a recording (admin)",
    tag: "Recordings",
    auth: "admin",
    ok: {
      200: { description: "Deleted at Cloudflare", schema: out.RecordingDeleted },
      202: { description: "Deleted here; Cloudflare confirms within RECONCILE_SECONDS", schema: out.RecordingDeleted },
    },
    errors: { 404: ["RECORDING_NOT_FOUND"] },
  },

  "GET /api/device/stream": {
    summary: "The user's stream with its ingest credentials",
    tag: "Device",
    auth: "device",
    ok: { 200: { description: "The same start_rtmp_stream the device socket receives", schema: out.DeviceStreamInfo } },
    errors: { 404: ["NO_ACTIVE_STREAM"] },
  },
  "POST /api/webhooks/cloudflare-stream": {
    summary: "Cloudflare Stream live-input notifications",
    tag: "Webhooks",
    auth: "webhook",
    body: LiveInputNotification,
    bodyErrors: ["INVALID_PAYLOAD"],
    ok: { 200: { description: "Received (applied or not: Cloudflare must not retry)", schema: out.WebhookAnswer } },
    errors: { 404: ["UNKNOWN_LIVE_INPUT"] },
  },
  ...REALTIME_ROUTES,
  "POST /api/webhooks/cloudflare-stream-video": {
    summary: "Cloudflare Stream's video webhook (a recording ready or failed)",
    description:
      "The body is the video object; `Webhook-Signature: time=…,sig1=hex(HMAC-SHA256(STREAM_VIDEO_WEBHOOK_SECRET, time + \".\" + body))`, at most 5 minutes old. A bad signature is 401 and changes nothing.",
    tag: "Webhooks",
    auth: "videoWebhook",
    body: z.looseObject({ uid: z.string() }),
    bodyErrors: ["INVALID_PAYLOAD"],
    ok: { 200: { description: "Received (applied or not: Cloudflare must not retry)", schema: out.VideoWebhookAnswer } },
  },
};

/** Named schemas, emitted once under components.schemas and referenced from the operations. */
export const REQUEST_SCHEMAS = {
  RegisterAppBody: api.RegisterAppBody,
  DeviceTokenBody: api.DeviceTokenBody,
  UserGrantBody: api.UserGrantBody,
  StartStreamBody: api.StartStreamBody,
  RestreamDestination: api.RestreamDestination,
  AddOutputBody: api.AddOutputBody,
  PatchOutputBody: api.PatchOutputBody,
  LiveInputWebhook,
  WebhookTestMessage,
  LiveInputNotification,
};
export const RESPONSE_SCHEMAS = {
  StreamSnapshot: out.StreamSnapshot,
  StartStreamAnswer: out.StartStreamAnswer,
  RestreamResult,
  AppKeyAnswer: out.AppKeyAnswer,
  AppRemovedAnswer: out.AppRemovedAnswer,
  DeviceTokenAnswer: out.DeviceTokenAnswer,
  UserGrantAnswer: out.UserGrantAnswer,
  TicketAnswer: out.TicketAnswer,
  OutputAdded: out.OutputAdded,
  OutputView: out.OutputView,
  OutputList: out.OutputList,
  OutputRemoved: out.OutputRemoved,
  OutputToggled: out.OutputToggled,
  DeviceStreamInfo: out.DeviceStreamInfo,
  StartRtmpStream,
  WebhookAnswer: out.WebhookAnswer,
  HealthAnswer: out.HealthAnswer,
  AdminStats: out.AdminStats,
  StreamListItem: out.StreamListItem,
  StreamList: out.StreamList,
  AdminStreamListItem: out.AdminStreamListItem,
  AdminStreamList: out.AdminStreamList,
  WatchLinkAnswer: out.WatchLinkAnswer,
  WatchAnswer: out.WatchAnswer,
  StreamAnalytics: out.StreamAnalytics,
  Recording: out.Recording,
  RecordingList: out.RecordingList,
  RecordingDeleted: out.RecordingDeleted,
  VideoWebhookAnswer: out.VideoWebhookAnswer,
  Error: out.ErrorBody,
};

export const PATH_PARAMS: Record<string, { schema: z.ZodType; description: string }> = {
  streamId: { schema: api.StreamId, description: "21 characters of A-Za-z0-9_-; anything else is 404 STREAM_NOT_FOUND" },
  packageName: { schema: api.PackageName, description: "A malformed name is 404 APP_NOT_FOUND" },
  outputId: { schema: z.string(), description: "From the add's answer or the outputs list" },
  ...REALTIME_PATH_PARAMS,
  userId: { schema: api.UserId, description: "The user's id; a malformed one is 400 INVALID_REQUEST" },
  key: { schema: z.string(), description: "The watch key (24 characters); anything else is 404 WATCH_LINK_NOT_FOUND" },
  recordingId: { schema: z.string(), description: "From the recordings list; an unknown one is 404 RECORDING_NOT_FOUND" },
};
