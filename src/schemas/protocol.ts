import { z } from "zod";

/**
 * WebSocket messages, MentraOS SDK-compatible (BRIEF §3). Identity (package name, user) always comes
 * from the authenticated socket, never from these bodies: fields like `packageName` are accepted for
 * compatibility and ignored.
 */

// ── App → coordinator ───────────────────────────────────────────────────────────────────────────
export const AppMessage = z.discriminatedUnion("type", [
  z.object({ type: z.literal("managed_stream_stop"), packageName: z.string().optional() }),
  z.object({ type: z.literal("stream_status_check"), packageName: z.string().optional() }),
]);
export type AppMessage = z.infer<typeof AppMessage>;

// ── Device → coordinator ────────────────────────────────────────────────────────────────────────
export const DeviceStreamStatus = z.enum(["initializing", "connecting", "streaming", "active", "reconnecting", "stopped", "error", "timeout"]);

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

// ── Coordinator → clients ───────────────────────────────────────────────────────────────────────
export const OutputSummary = z.object({
  outputId: z.string(),
  url: z.string(),
  name: z.string().nullable(),
  status: z.enum(["active", "error", "stopped"]),
  error: z.string().nullable(),
});

export const ManagedStreamStatus = z.object({
  type: z.literal("managed_stream_status"),
  status: z.enum(["initializing", "preparing", "active", "stopping", "stopped", "error"]),
  streamId: z.string(),
  hlsUrl: z.string().nullable(),
  dashUrl: z.string().nullable(),
  webrtcUrl: z.string().nullable(),
  previewUrl: z.string().nullable(),
  thumbnailUrl: z.string().nullable(),
  message: z.string(),
  outputs: z.array(OutputSummary),
  viewers: z.number().int(),
  timestamp: z.string(),
});
export type ManagedStreamStatus = z.infer<typeof ManagedStreamStatus>;

export interface StartRtmpStream {
  type: "start_rtmp_stream";
  streamId: string;
  rtmpUrl: string;
  /** Alternatives for devices that prefer them; the RTMPS URL above already embeds the key. */
  srt: { url: string; streamId: string | null; passphrase: string | null } | null;
  whipUrl: string | null;
  video: { width: number; height: number; bitrate: number; frameRate: number };
  audio: { bitrate: number; sampleRate: number };
  stream: { durationLimit: number | null };
}

export interface ProtocolError {
  type: "error";
  error: string;
  message: string;
}

/** Limits on inbound socket traffic; documented in docs/websocket-protocol.md. */
export const MAX_MESSAGE_BYTES = 64 * 1024;
export const MAX_MESSAGES_PER_SECOND = 20;
