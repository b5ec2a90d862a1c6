/**
 * The type-level half of the MentraOS SDK conformance suite (test/e2e/mentra-sdk.test.mjs): every frame
 * the coordinator sent during the run is written into a generated file as an object literal typed
 * `SentFrame[]`, and `tsc` checks it. Literal typing means TypeScript's excess-property check applies:
 * a frame passes only if it has every field the SDK requires, each of the SDK's type, and besides them
 * only the extras declared (and documented in docs/websocket-protocol.md) below.
 */
import type {
  KeepRtmpStreamAlive,
  ManagedStreamStatus,
  OutputStatus,
  StartRtmpStream,
  StopRtmpStream,
  StreamStatusCheckResponse,
} from "@mentra/sdk";

/**
 * A type as it travels in JSON: a `Date` is its ISO string (what JSON.stringify makes of it, and what
 * the SDK's runtime receives, as it parses frames without a reviver); a string enum member is its
 * value. Optional stays optional: absent, never `null`.
 */
export type Wire<T> = T extends Date
  ? string
  : T extends string
    ? `${T}`
    : T extends readonly (infer U)[]
      ? Wire<U>[]
      : T extends object
        ? { [K in keyof T]: Wire<T[K]> }
        : T;

/** What one restream destination of a `managed_stream_request` became (our extra, as over REST). */
type RestreamResult = { url: string; success: true; outputId: string } | { url: string | null; success: false; error: string; message: string };

// ── Coordinator → app ───────────────────────────────────────────────────────────────────────────
type StatusFrame = Omit<Wire<ManagedStreamStatus>, "outputs"> & {
  outputs: (Wire<OutputStatus> & { outputId: string })[];
  viewers: number;
  restreamResults?: RestreamResult[];
};
type StatusCheckFrame = Wire<StreamStatusCheckResponse>;
/** Ours: a refused or malformed message (the SDK has no generic error frame; it ignores this one). */
type ErrorFrame = { type: "error"; error: string; message: string; retryAfter?: number };

// ── Coordinator → glasses ───────────────────────────────────────────────────────────────────────
type StartFrame = Wire<StartRtmpStream> & {
  ingest: "rtmp" | "srt" | "webrtc";
  srt?: { url: string; streamId?: string; passphrase?: string };
  whipUrl?: string;
  video: { width: number; height: number; bitrate: number; frameRate: number };
  audio: { bitrate: number; sampleRate: number };
  stream: { durationLimit?: number };
};
type StopFrame = Wire<StopRtmpStream>;
type KeepAliveFrame = Wire<KeepRtmpStreamAlive>;

export type SentFrame = StatusFrame | StatusCheckFrame | ErrorFrame | StartFrame | StopFrame | KeepAliveFrame;
