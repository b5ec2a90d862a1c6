import { z } from "zod";
import { IngestProtocol, RestreamDestination } from "./api";
import type { SdkStatus } from "../stream/status";

/**
 * WebSocket messages, conforming to `@mentra/sdk` 2.1.29's message types and runtime (the conformance
 * suite in test/e2e/mentra-sdk.test.mjs checks every frame against both). Identity (package name, user)
 * always comes from the authenticated socket, never from these bodies: fields like `packageName` are
 * accepted for compatibility and ignored. Unknown fields (the SDK adds `timestamp` and `sessionId`)
 * are dropped.
 */

// ── App → coordinator ───────────────────────────────────────────────────────────────────────────
export const ManagedStreamRequest = z.object({
  type: z.literal("managed_stream_request"),
  packageName: z.string().optional(),
  /** Accepted for SDK compatibility; the ingest settings are the stream's own (as over REST). */
  quality: z.enum(["720p", "1080p"]).optional(),
  enableWebRTC: z.boolean().optional(),
  /** The socket's stream already exists: it keeps the protocol it was created with (the answer's URLs show it). */
  ingest: IngestProtocol.optional(),
  restreamDestinations: z.array(RestreamDestination).max(10).optional(),
});
export type ManagedStreamRequest = z.infer<typeof ManagedStreamRequest>;

export const AppMessage = z.discriminatedUnion("type", [
  ManagedStreamRequest,
  z.object({ type: z.literal("managed_stream_stop"), packageName: z.string().optional() }),
  z.object({ type: z.literal("stream_status_check"), packageName: z.string().optional() }),
]);
export type AppMessage = z.infer<typeof AppMessage>;

// ── Device → coordinator ────────────────────────────────────────────────────────────────────────
/** The SDK's whole `RtmpStreamStatus.status` set; device.ts maps each into the state machine. */
export const DeviceStreamStatus = z.enum([
  "initializing",
  "connecting",
  "reconnecting",
  "streaming",
  "error",
  "stopped",
  "active",
  "stopping",
  "disconnected",
  "timeout",
  "reconnected",
  "reconnect_failed",
]);
export type DeviceStreamStatus = z.infer<typeof DeviceStreamStatus>;

export const DeviceMessage = z.discriminatedUnion("type", [
  z.object({ type: z.literal("keep_alive_ack"), streamId: z.string().optional(), ackId: z.string().min(1).max(64) }),
  z.object({
    type: z.literal("rtmp_stream_status"),
    streamId: z.string().optional(),
    status: DeviceStreamStatus,
    errorDetails: z.string().max(1_000).optional(),
  }),
]);
export type DeviceMessage = z.infer<typeof DeviceMessage>;

// ── Coordinator → apps ──────────────────────────────────────────────────────────────────────────
// Optional fields are absent, never `null` (the SDK types them `field?: string`). Dates are ISO 8601
// strings: what JSON.stringify makes of the SDK's own `Date` fields, and what its runtime receives.
// These schemas are what /asyncapi.json is generated from (src/http/asyncapi.ts); the code that builds
// each message is typed with its `z.infer` type, and the e2e suite validates every frame against them.

/** The SDK's six stream statuses (src/stream/status.ts maps our seven states onto them). */
export const SdkStreamStatus = z.enum(["initializing", "preparing", "active", "stopping", "stopped", "error"]);
type SameAs<A, B> = [A] extends [B] ? ([B] extends [A] ? true : never) : never;
const sdkStatusesMatch: SameAs<z.infer<typeof SdkStreamStatus>, SdkStatus> = true;
void sdkStatusesMatch;

const IsoTimestamp = z.iso.datetime().describe("ISO 8601 (JSON's form of the SDK's `Date`)");
const PlaybackUrl = z.url();

/** Ours: the stream's newest ready recording (GET /api/streams/{streamId}/recordings has them all). */
export const RecordingSummary = z.object({
  recordingId: z.string(),
  hlsUrl: PlaybackUrl,
  dashUrl: PlaybackUrl,
  thumbnailUrl: PlaybackUrl.optional(),
  durationSeconds: z.number().min(0).optional(),
});
export type RecordingSummary = z.infer<typeof RecordingSummary>;

export const OutputSummary = z.object({
  /** Ours: the id to remove or patch the output over REST. */
  outputId: z.string().describe("Ours: the id to remove or patch the output over REST"),
  url: z.string().describe("Masked (`…/****`) unless this app added the output"),
  name: z.string().optional(),
  status: z.enum(["active", "error", "stopped"]),
  error: z.string().optional().describe("Only while the output is in error"),
});
export type OutputSummary = z.infer<typeof OutputSummary>;

export const ManagedStreamStatus = z
  .object({
    type: z.literal("managed_stream_status"),
    status: SdkStreamStatus,
    streamId: z.string(),
    hlsUrl: PlaybackUrl.optional(),
    dashUrl: PlaybackUrl.optional(),
    webrtcUrl: PlaybackUrl.optional().describe("WHEP; only for a stream ingested over WHIP"),
    previewUrl: PlaybackUrl.optional(),
    thumbnailUrl: PlaybackUrl.optional(),
    message: z.string(),
    outputs: z.array(OutputSummary),
    /** Ours: apps with at least one open viewer socket or realtime room session. */
    viewers: z.number().int().min(0).describe("Ours: apps with at least one open viewer socket or realtime room session"),
    latestRecording: RecordingSummary.optional().describe("Ours: the newest ready recording of this stream, once there is one"),
    timestamp: IsoTimestamp,
  })
  .describe("The stream's status: on connect, on every change, and as the answer to managed_stream_request");
export type ManagedStreamStatus = z.infer<typeof ManagedStreamStatus>;

/** What a `managed_stream_request` did with each of its `restreamDestinations` (as over REST). */
export const RestreamResult = z.discriminatedUnion("success", [
  z.object({ url: z.string(), success: z.literal(true), outputId: z.string() }),
  z.object({
    url: z.string().nullable().describe("`null` if the destination's url was not a string"),
    success: z.literal(false),
    error: z.string().describe("Any error code of POST /api/streams/{streamId}/outputs"),
    message: z.string(),
  }),
]);
export type RestreamResult = z.infer<typeof RestreamResult>;

/** The answer to `managed_stream_request`: the status, plus what became of each destination. */
export const ManagedStreamRequestAnswer = ManagedStreamStatus.extend({ restreamResults: z.array(RestreamResult).optional() }).describe(
  "managed_stream_status; as the answer to managed_stream_request, with restreamResults when it had destinations",
);
export type ManagedStreamRequestAnswer = z.infer<typeof ManagedStreamRequestAnswer>;

export const StreamStatusCheckResponse = z.object({
  type: z.literal("stream_status_check_response"),
  hasActiveStream: z.boolean(),
  streamInfo: z
    .object({
      type: z.literal("managed"),
      streamId: z.string(),
      status: SdkStreamStatus,
      createdAt: IsoTimestamp,
      hlsUrl: PlaybackUrl.optional(),
      dashUrl: PlaybackUrl.optional(),
      webrtcUrl: PlaybackUrl.optional(),
      previewUrl: PlaybackUrl.optional(),
      thumbnailUrl: PlaybackUrl.optional(),
      activeViewers: z.number().int().min(0),
    })
    .optional(),
  timestamp: IsoTimestamp,
});
export type StreamStatusCheckResponse = z.infer<typeof StreamStatusCheckResponse>;

/** The room's publisher (the glasses) and its tracks: pushed to every viewer when they change, and on connect. */
export const RealtimeTracks = z
  .object({
    type: z.literal("realtime_tracks"),
    sessionId: z.string().optional().describe("The publisher's Realtime SFU session; absent when nobody publishes"),
    tracks: z.array(z.object({ trackName: z.string(), kind: z.enum(["audio", "video"]) })).describe("Pull these with POST …/realtime/sessions/{yours}/tracks/new"),
    timestamp: IsoTimestamp,
  })
  .describe("The Realtime SFU room's published tracks (docs/realtime.md): on every change, and on connect while the glasses publish");
export type RealtimeTracks = z.infer<typeof RealtimeTracks>;

export const ProtocolError = z.object({
  type: z.literal("error"),
  error: z.string().describe("INVALID_JSON, UNKNOWN_MESSAGE_TYPE, INVALID_MESSAGE, or a refusal's code (RATE_LIMITED, …)"),
  message: z.string(),
  /** Seconds, when the refusal says when to try again (RATE_LIMITED, SERVICE_UNAVAILABLE). */
  retryAfter: z.number().optional().describe("Seconds, when the refusal says when to try again"),
});
export type ProtocolError = z.infer<typeof ProtocolError>;

/**
 * `{"type":"ping"}` (exactly this text) is answered `{"type":"pong"}` by the runtime's auto-response
 * (stream-coordinator.ts), on either role's socket, without waking the object.
 */
export const Ping = z.strictObject({ type: z.literal("ping") }).describe('Exactly the text {"type":"ping"}: answered by the runtime');
export const Pong = z.object({ type: z.literal("pong") });

// ── Coordinator → device ────────────────────────────────────────────────────────────────────────
/** The `appId` the SDK requires on start/stop frames; MentraOS sends this value for managed streams. */
export const MANAGED_STREAM_APP_ID = "MANAGED_STREAM";

export const StartRtmpStream = z.object({
  type: z.literal("start_rtmp_stream"),
  appId: z.literal(MANAGED_STREAM_APP_ID),
  streamId: z.string(),
  /** Ours: the protocol the stream was created with; the credentials below are that protocol's. */
  ingest: IngestProtocol.describe("Ours: publish with this protocol, using the credentials of the same name"),
  rtmpUrl: z
    .string()
    .optional()
    .describe("The live input's RTMPS URL with the stream key appended. rtmp and srt streams (an SRT stream may fall back to it); absent for webrtc, whose input plays only what WHIP sends"),
  srt: z
    .object({ url: z.string(), streamId: z.string().optional(), passphrase: z.string().optional() })
    .optional()
    .describe("Ours: srt streams only. Publish to url with this streamid and passphrase"),
  whipUrl: z.string().optional().describe("Ours: webrtc streams only. The WHIP endpoint; the URL is the credential"),
  video: z.object({ width: z.number(), height: z.number(), bitrate: z.number(), frameRate: z.number() }),
  audio: z.object({ bitrate: z.number(), sampleRate: z.number() }),
  stream: z.object({ durationLimit: z.number().optional() }),
});
export type StartRtmpStream = z.infer<typeof StartRtmpStream>;

export const StopRtmpStream = z.object({
  type: z.literal("stop_rtmp_stream"),
  appId: z.literal(MANAGED_STREAM_APP_ID),
  streamId: z.string(),
});
export type StopRtmpStream = z.infer<typeof StopRtmpStream>;

export const KeepRtmpStreamAlive = z.object({
  type: z.literal("keep_rtmp_stream_alive"),
  streamId: z.string(),
  ackId: z.string().describe("Answer with keep_alive_ack carrying this ackId"),
});
export type KeepRtmpStreamAlive = z.infer<typeof KeepRtmpStreamAlive>;

/** Limits on inbound socket traffic; documented in docs/websocket-protocol.md. */
export const MAX_MESSAGE_BYTES = 64 * 1024;
export const MAX_MESSAGES_PER_SECOND = 20;
