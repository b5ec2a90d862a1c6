import { playbackUrls, type PlaybackUrls } from "../cloudflare/playback";
import { toSdkOutputStatus } from "../outputs/output-status";
import type { ManagedStreamStatus, OutputSummary, StreamStatusCheckResponse } from "../schemas/protocol";
import type { StreamContext } from "./context";
import type { DeviceChannel } from "./device";
import type { OutputView, Outputs } from "./outputs";
import type { Presence } from "./presence";
import type { StatusSync } from "./status-sync";
import type { StreamSnapshot } from "../schemas/responses";
import { toSdkStatus } from "./status";
import type { StreamRecord } from "./store";
import { clock } from "../clock";
import { StreamMeta } from "./context";
import { WATCH_URL_KEY } from "./watch-view";
import type { RecordingView } from "./recording-store";

/** What apps see of a stream over REST (GET /api/streams/:id) and what devices get from GET /api/device/stream. */
export type { DeviceStreamInfo, StreamSnapshot } from "../schemas/responses";

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
    /** The stream's newest ready recording (recordings.ts), or null. */
    private readonly latestRecording: () => RecordingView | null = () => null,
  ) {}

  snapshot(record: StreamRecord): StreamSnapshot {
    return {
      streamId: record.streamId,
      status: toSdkStatus(record.status),
      state: record.status,
      message: record.message,
      ...this.playback(record),
      ingestProtocol: record.ingestProtocol,
      ingest: record.ingestState,
      viewers: this.presence.viewerCount(),
      deviceConnected: this.device.isConnected(),
      createdAt: new Date(record.createdAt).toISOString(),
      stoppedAt: record.stoppedAt ? new Date(record.stoppedAt).toISOString() : null,
      ...this.recordingField((r) => r),
    };
  }

  /** `latestRecording`, only once a recording is ready (absent, not null: the SDK's optional-field style). */
  private recordingField<T>(shape: (r: RecordingView) => T): { latestRecording?: T } {
    const latest = this.latestRecording();
    return latest && latest.hlsUrl && latest.dashUrl ? { latestRecording: shape(latest) } : {};
  }

  outputViews(record: StreamRecord, viewer: string | null): OutputView[] {
    const { rows, facts } = this.outputFacts(record);
    return rows.map((row) => this.outputs.view(row, viewer, facts.ingestStable, facts.stale, facts.inputError));
  }

  /** What every output's view depends on besides its row, read once. */
  private outputFacts(record: StreamRecord) {
    const now = clock.now();
    return {
      rows: this.outputs.store.visible(),
      facts: {
        ingestStable: record.phase === "running" && this.sync.ingestStable(record.ingestState === "connected", now),
        stale: record.phase === "running" && this.sync.stale(now),
        inputError: record.inputError ? `Live input errored: ${record.inputError}` : null,
      },
    };
  }

  statusMessage(record: StreamRecord, viewer: string | null): ManagedStreamStatus {
    return this.statusMessages(record).message(viewer);
  }

  /**
   * The SDK's answer to `stream_status_check`. A stream counts as active from creation until it starts
   * stopping. `rtmpUrl` (an ingest secret) and `requestingAppId` (another app's identity) are never sent.
   */
  statusCheckResponse(record: StreamRecord): StreamStatusCheckResponse {
    const timestamp = new Date(clock.now()).toISOString();
    if (record.phase === "stopping" || record.phase === "stopped") {
      return { type: "stream_status_check_response", hasActiveStream: false, timestamp };
    }
    return {
      type: "stream_status_check_response",
      hasActiveStream: true,
      streamInfo: {
        type: "managed",
        streamId: record.streamId,
        status: toSdkStatus(record.status),
        createdAt: new Date(record.createdAt).toISOString(),
        ...withoutNulls(this.sdkPlayback(record)),
        activeViewers: this.presence.viewerCount(),
      },
      timestamp,
    };
  }

  /**
   * What an app that left sees last on its sockets: its managed stream is `stopped` (so the SDK lets it
   * start again), while the stream itself goes on for the other apps.
   */
  leftMessage(record: StreamRecord): ManagedStreamStatus {
    return {
      type: "managed_stream_status",
      status: "stopped",
      streamId: record.streamId,
      message: "You left the stream; it goes on for the other apps",
      outputs: [],
      viewers: this.presence.viewerCount(),
      timestamp: new Date(clock.now()).toISOString(),
    };
  }

  private playback(record: StreamRecord): PlaybackUrls {
    // WHEP for a WHIP ingest, HLS/DASH for RTMPS and SRT: only what can play the stream is given.
    return playbackUrls(this.s.config, record.phase === "running" ? record.liveInputUid : null, record.ingestProtocol);
  }

  /**
   * What the SDK's messages carry: the same URLs, but `previewUrl` is the user's watch link (`/w/<key>`),
   * which follows the user's stream across reconnects and new streams, where Cloudflare's player page
   * is tied to this live input.
   */
  private sdkPlayback(record: StreamRecord): PlaybackUrls {
    const urls = this.playback(record);
    const watchUrl = new StreamMeta(this.s.sql).get(WATCH_URL_KEY);
    return watchUrl && record.phase === "running" ? { ...urls, previewUrl: watchUrl } : urls;
  }

  /**
   * The status as each viewer may see it, for one push: the outputs and every unmasked field are read
   * once; masking varies only for an app that added outputs, so every other viewer shares one message
   * (and one serialization — `serialized` caches per owner, `null` for all the rest).
   */
  statusMessages(record: StreamRecord): StatusMessages {
    const { rows, facts } = this.outputFacts(record);
    const owners = new Set(rows.map((row) => row.added_by));
    const base = {
      type: "managed_stream_status" as const,
      status: toSdkStatus(record.status),
      streamId: record.streamId,
      ...withoutNulls(this.sdkPlayback(record)),
      message: record.message,
      ...this.recordingField((r) => ({
        recordingId: r.recordingId,
        hlsUrl: r.hlsUrl!,
        dashUrl: r.dashUrl!,
        ...(r.thumbnailUrl ? { thumbnailUrl: r.thumbnailUrl } : {}),
        ...(r.durationSeconds !== null ? { durationSeconds: r.durationSeconds } : {}),
      })),
    };
    // Once stopped, the remaining sockets are being closed: nobody is watching any more.
    const viewers = record.phase === "stopped" ? 0 : this.presence.viewerCount();
    const timestamp = new Date(clock.now()).toISOString();
    const build = (viewer: string | null): ManagedStreamStatus => ({
      ...base,
      outputs: rows.map((row) => {
        const o = this.outputs.view(row, viewer, facts.ingestStable, facts.stale, facts.inputError);
        const summary: OutputSummary = { outputId: o.outputId, url: o.url, status: toSdkOutputStatus(o.status) };
        if (o.name !== null) summary.name = o.name;
        if (o.error !== null) summary.error = o.error;
        return summary;
      }),
      viewers,
      timestamp,
    });
    const messages = new Map<string | null, ManagedStreamStatus>();
    const strings = new Map<string | null, string>();
    const keyOf = (viewer: string | null) => (viewer !== null && owners.has(viewer) ? viewer : null);
    const message = (viewer: string | null): ManagedStreamStatus => {
      const key = keyOf(viewer);
      let built = messages.get(key);
      if (!built) messages.set(key, (built = build(key)));
      return built;
    };
    return {
      message,
      serialized: (viewer) => {
        const key = keyOf(viewer);
        let text = strings.get(key);
        if (text === undefined) strings.set(key, (text = JSON.stringify(message(key))));
        return text;
      },
    };
  }
}

export interface StatusMessages {
  /** The message as `viewer` may see it (`null`: as any app that added no output sees it). */
  message(viewer: string | null): ManagedStreamStatus;
  /** The same, serialized once per distinct message. */
  serialized(viewer: string | null): string;
}

/** The SDK types absent URLs as missing fields, not `null`. */
function withoutNulls(urls: PlaybackUrls): Partial<Record<keyof PlaybackUrls, string>> {
  const present: Partial<Record<keyof PlaybackUrls, string>> = {};
  for (const [key, value] of Object.entries(urls) as [keyof PlaybackUrls, string | null][]) if (value !== null) present[key] = value;
  return present;
}
