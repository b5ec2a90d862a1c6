import { z } from "zod";
import { RestreamDestination } from "./api";
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

export interface OutputSummary {
  /** Ours: the id to remove or patch the output over REST. */
  outputId: string;
  url: string;
  name?: string;
  status: "active" | "error" | "stopped";
  error?: string;
}

export interface ManagedStreamStatus {
  type: "managed_stream_status";
  status: SdkStatus;
  streamId: string;
  hlsUrl?: string;
  dashUrl?: string;
  webrtcUrl?: string;
  previewUrl?: string;
  thumbnailUrl?: string;
  message: string;
  outputs: OutputSummary[];
  /** Ours: apps with at least one open viewer socket. */
  viewers: number;
  timestamp: string;
}

/** What a `managed_stream_request` did with each of its `restreamDestinations` (as over REST). */
export type RestreamResult =
  | { url: string; success: true; outputId: string }
  | { url: string | null; success: false; error: string; message: string };

/** The answer to `managed_stream_request`: the status, plus what became of each destination. */
export type ManagedStreamRequestAnswer = ManagedStreamStatus & { restreamResults?: RestreamResult[] };

export interface StreamStatusCheckResponse {
  type: "stream_status_check_response";
  hasActiveStream: boolean;
  streamInfo?: {
    type: "managed";
    streamId: string;
    status: SdkStatus;
    createdAt: string;
    hlsUrl?: string;
    dashUrl?: string;
    webrtcUrl?: string;
    previewUrl?: string;
    thumbnailUrl?: string;
    activeViewers: number;
  };
  timestamp: string;
}

export interface ProtocolError {
  type: "error";
  error: string;
  message: string;
  /** Seconds, when the refusal says when to try again (RATE_LIMITED, SERVICE_UNAVAILABLE). */
  retryAfter?: number;
}

// ── Coordinator → device ────────────────────────────────────────────────────────────────────────
/** The `appId` the SDK requires on start/stop frames; MentraOS sends this value for managed streams. */
export const MANAGED_STREAM_APP_ID = "MANAGED_STREAM";

export interface StartRtmpStream {
  type: "start_rtmp_stream";
  appId: typeof MANAGED_STREAM_APP_ID;
  streamId: string;
  rtmpUrl: string;
  /** Ours: alternatives for devices that prefer them; the RTMPS URL above already embeds the key. */
  srt?: { url: string; streamId?: string; passphrase?: string };
  whipUrl?: string;
  video: { width: number; height: number; bitrate: number; frameRate: number };
  audio: { bitrate: number; sampleRate: number };
  stream: { durationLimit?: number };
}

export interface StopRtmpStream {
  type: "stop_rtmp_stream";
  appId: typeof MANAGED_STREAM_APP_ID;
  streamId: string;
}

/** Limits on inbound socket traffic; documented in docs/websocket-protocol.md. */
export const MAX_MESSAGE_BYTES = 64 * 1024;
export const MAX_MESSAGES_PER_SECOND = 20;
