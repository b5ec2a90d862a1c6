// Wire types of the Stream Coordinator API, taken from the server's own schemas and types with
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
import type { DeviceStreamInfo, StreamSnapshot } from "../../src/stream/views";
import type { OutputView } from "../../src/outputs/output-view";

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

// ── Responses ─────────────────────────────────────────────────────────────────────────────────────
// The snapshot, outputs and device info are the server's own types. The small bodies below are built
// inline by the router; they become `z.infer` of src/schemas/responses.ts once that lands.
export type { DeviceStreamInfo, StreamSnapshot, OutputView };
/** The internal state (snapshot `state`; adds `reconnecting`). */
export type StreamState = StreamSnapshot["state"];
export interface HealthResponse {
  ok: true;
}
/** `apiKey` is shown only by register and rotate. */
export interface AppCredentials {
  packageName: string;
  apiKey: string;
}
export interface DeletedApp {
  success: true;
  packageName: string;
}
export interface DeviceToken {
  userId: string;
  token: string;
  expiresAt: string;
}
export interface UserGrant {
  userId: string;
  packageName: string;
  token: string;
  expiresAt: string;
}
/** `POST /api/streams`: the snapshot, `created` (201) or joined (200), and destination results. */
export type StartStreamResponse = StreamSnapshot & { created: boolean; restreamResults?: RestreamResult[] };
export interface Ticket {
  ticket: string;
  expiresAt: string;
}
export interface AddedOutput {
  success: true;
  outputId: string;
  message: string;
}
export interface OutputList {
  streamId: string;
  outputs: OutputView[];
  total: number;
  maxPerStream: number;
  maxPerApp: number;
}
/** Plus, client-side, `pending`: true on `202` (removal accepted; Cloudflare confirms within RECONCILE_SECONDS). */
export interface RemovedOutput {
  success: true;
  message: string;
  pending: boolean;
}
export interface PatchedOutput {
  success: true;
  message: string;
}
