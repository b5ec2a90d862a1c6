import { playbackUrls } from "../cloudflare/playback";
import { toSdkOutputStatus } from "../outputs/output-status";
import type { ManagedStreamStatus } from "../schemas/protocol";
import type { StreamContext } from "./context";
import type { DeviceChannel, startMessage } from "./device";
import type { OutputView, Outputs } from "./outputs";
import type { Presence } from "./presence";
import type { StatusSync } from "./status-sync";
import { toSdkStatus, type IngestState, type StreamStatus } from "./status";
import type { StreamRecord } from "./store";
import { clock } from "../clock";

/** What apps see of a stream over REST. Ingest credentials are never part of it. */
export interface StreamSnapshot {
  streamId: string;
  status: ReturnType<typeof toSdkStatus>;
  state: StreamStatus;
  message: string;
  hlsUrl: string | null;
  dashUrl: string | null;
  webrtcUrl: string | null;
  previewUrl: string | null;
  thumbnailUrl: string | null;
  ingest: IngestState;
  viewers: number;
  deviceConnected: boolean;
  createdAt: string;
  stoppedAt: string | null;
}

export interface DeviceStreamInfo {
  streamId: string;
  status: StreamStatus;
  start: ReturnType<typeof startMessage> | null;
}

/**
 * How a stream looks from outside: the REST snapshot, the outputs as a given app may see them (stream
 * keys only to their owner), and the SDK's `managed_stream_status` message.
 */
export class StreamViews {
  constructor(
    private readonly s: StreamContext,
    private readonly presence: Presence,
    private readonly device: DeviceChannel,
    private readonly outputs: Outputs,
    private readonly sync: StatusSync,
  ) {}

  snapshot(record: StreamRecord): StreamSnapshot {
    return {
      streamId: record.streamId,
      status: toSdkStatus(record.status),
      state: record.status,
      message: record.message,
      ...playbackUrls(this.s.config, record.phase === "running" ? record.liveInputUid : null),
      ingest: record.ingestState,
      viewers: this.presence.viewerCount(),
      deviceConnected: this.device.isConnected(),
      createdAt: new Date(record.createdAt).toISOString(),
      stoppedAt: record.stoppedAt ? new Date(record.stoppedAt).toISOString() : null,
    };
  }

  outputViews(record: StreamRecord, viewer: string | null): OutputView[] {
    const now = clock.now();
    const ingestStable = record.phase === "running" && this.sync.ingestStable(record.ingestState === "connected", now);
    const stale = record.phase === "running" && this.sync.stale(now);
    const inputError = record.inputError ? `Live input errored: ${record.inputError}` : null;
    return this.outputs.visibleRows().map((row) => this.outputs.view(row, viewer, ingestStable, stale, inputError));
  }

  statusMessage(record: StreamRecord, viewer: string | null, closing?: WebSocket): ManagedStreamStatus {
    return {
      type: "managed_stream_status",
      status: toSdkStatus(record.status),
      streamId: record.streamId,
      ...playbackUrls(this.s.config, record.phase === "running" ? record.liveInputUid : null),
      message: record.message,
      outputs: this.outputViews(record, viewer).map((o) => ({
        outputId: o.outputId,
        url: o.url,
        name: o.name,
        status: toSdkOutputStatus(o.status),
        error: o.error,
      })),
      // Once stopped, the remaining sockets are being closed: nobody is watching any more.
      viewers: record.phase === "stopped" ? 0 : this.presence.viewerCount(closing),
      timestamp: new Date().toISOString(),
    };
  }
}
