// Wire types of the Stream Coordinator API, taken from the server's own zod schemas (src/schemas) with
// `import type` only: nothing here reaches the client's runtime (esbuild erases it; client/build.mjs
// fails if a runtime import ever points outside client/src).
import type { z } from "zod";
import type {
  DeviceTokenBody,
  OutputName,
  PatchOutputBody,
  RegisterAppBody,
  RestreamDestination,
  StartStreamBody,
  UserGrantBody,
} from "../../src/schemas/api";
import type {
  AppMessage,
  ManagedStreamRequestAnswer,
  ManagedStreamStatus,
  OutputSummary,
  ProtocolError,
  RestreamResult,
  StreamStatusCheckResponse,
} from "../../src/schemas/protocol";
import type {
  AdminStats as AdminStatsSchema,
  AdminStreamList as AdminStreamListSchema,
  AdminStreamListItem as AdminStreamListItemSchema,
  ApiErrorCode,
  AppKeyAnswer,
  AppRemovedAnswer,
  DeviceStreamInfo as DeviceStreamInfoSchema,
  DeviceTokenAnswer,
  HealthAnswer,
  OutputAdded,
  OutputList as OutputListSchema,
  OutputRemoved,
  OutputToggled,
  OutputView as OutputViewSchema,
  SpecDocument as SpecDocumentSchema,
  StartStreamAnswer,
  StreamList as StreamListSchema,
  StreamListItem as StreamListItemSchema,
  StreamSnapshot as StreamSnapshotSchema,
  StreamAnalytics as StreamAnalyticsSchema,
  WatchLinkAnswer,
  TicketAnswer,
  UserGrantAnswer,
} from "../../src/schemas/responses";

// ── Socket messages (src/schemas/protocol.ts) ─────────────────────────────────────────────────────
export type { AppMessage, ManagedStreamStatus, ManagedStreamRequestAnswer, OutputSummary, ProtocolError, RestreamResult, StreamStatusCheckResponse };

/** The SDK's six statuses (`managed_stream_status.status`, snapshot `status`). */
export type SdkStatus = ManagedStreamStatus["status"];

// ── Requests (z.input: what the caller sends, before the server's defaults) ───────────────────────

/** `restreamDestinations[]`: the schema keeps `url` unknown (the URL parser checks it); callers send a string. */
export type RestreamDestinationInput = Omit<z.input<typeof RestreamDestination>, "url"> & { url: string };

/** `POST /api/streams`. The SDK-only `packageName` is left out: identity comes from the API key. */
export type StartStreamInput = Omit<z.input<typeof StartStreamBody>, "restreamDestinations" | "packageName"> & {
  restreamDestinations?: RestreamDestinationInput[];
};
export type RegisterAppInput = z.input<typeof RegisterAppBody>;
export type DeviceTokenInput = z.input<typeof DeviceTokenBody>;
export type UserGrantInput = z.input<typeof UserGrantBody>;
export type PatchOutputInput = z.input<typeof PatchOutputBody>;
/** `POST …/outputs`: `url` is checked by the RTMP URL parser (INVALID_URL), `name` by OutputName. */
export interface AddOutputInput {
  url: string;
  name?: z.input<typeof OutputName>;
}

// ── Responses (src/schemas/responses.ts) ──────────────────────────────────────────────────────────
export type ErrorCodeFromSchema = z.infer<typeof ApiErrorCode>;
export type HealthResponse = z.infer<typeof HealthAnswer>;
/** `apiKey` is shown only by register and rotate. */
export type AppCredentials = z.infer<typeof AppKeyAnswer>;
export type DeletedApp = z.infer<typeof AppRemovedAnswer>;
export type DeviceToken = z.infer<typeof DeviceTokenAnswer>;
export type UserGrant = z.infer<typeof UserGrantAnswer>;
export type StreamSnapshot = z.infer<typeof StreamSnapshotSchema>;
/** The internal state (snapshot `state`; adds `reconnecting`). */
export type StreamState = StreamSnapshot["state"];
/** `POST /api/streams`: the snapshot, `created` (201) or joined (200), and destination results. */
export type StartStreamResponse = z.infer<typeof StartStreamAnswer>;
export type Ticket = z.infer<typeof TicketAnswer>;
export type AddedOutput = z.infer<typeof OutputAdded>;
export type OutputView = z.infer<typeof OutputViewSchema>;
export type OutputList = z.infer<typeof OutputListSchema>;
/** Plus, client-side, `pending`: true on `202` (removal accepted; Cloudflare confirms within RECONCILE_SECONDS). */
export type RemovedOutput = z.infer<typeof OutputRemoved> & { pending: boolean };
export type PatchedOutput = z.infer<typeof OutputToggled>;
export type DeviceStreamInfo = z.infer<typeof DeviceStreamInfoSchema>;
/** `GET /api/admin/stats`: what a production deployment watches (budget refusals, Cloudflare failures, leak sweeps, webhooks). */
export type AdminStats = z.infer<typeof AdminStatsSchema>;
/** `/openapi.json`, `/asyncapi.json`. */
export type SpecDocument = z.infer<typeof SpecDocumentSchema>;
/** `GET /api/streams`: a page of the app's streams (snapshot + `userId`, `joinedAt`), newest join first. */
export type StreamList = z.infer<typeof StreamListSchema>;
export type StreamListItem = z.infer<typeof StreamListItemSchema>;
/** `GET /api/admin/streams`: a page of every running stream (snapshot + participants, masked outputs). */
export type AdminStreamList = z.infer<typeof AdminStreamListSchema>;
export type AdminStreamListItem = z.infer<typeof AdminStreamListItemSchema>;
/** `GET /api/streams/:id/analytics`: viewers, ingest, a ≤ 720-point timeline, watch-link hits (docs/api.md). */
export type StreamAnalytics = z.infer<typeof StreamAnalyticsSchema>;
/** `GET /api/users/:userId/watch-link` (and its rotate): the user's stable watch link. */
export type WatchLink = z.infer<typeof WatchLinkAnswer>;
/** Paging of both lists: `cursor` is the previous page's `nextCursor`; `limit` 1–50 (default 20). */
export interface ListInput {
  cursor?: string | null;
  limit?: number;
}
