import { playbackUrls } from "../cloudflare/playback";
import type { Config } from "../config";
import type { RecordingView } from "./recording-store";
import type { StreamRecord } from "./store";

/** Stream meta key: the user's watch link, given by UserStreams at create/join and on rotation. */
export const WATCH_URL_KEY = "watchUrl";

/** What `GET /w/:key` answers: the user's stream as it is now (schemas/responses.ts WatchAnswer). */
export interface WatchView {
  state: "live" | "reconnecting" | "offline";
  streamId: string | null;
  hlsUrl: string | null;
  dashUrl: string | null;
  /** WHEP, for a stream ingested over WebRTC (WHIP): it has no HLS or DASH. */
  webrtcUrl: string | null;
  thumbnailUrl: string | null;
  /** The stream's newest ready recording (as GET /api/streams/:id/recordings shows it), or null. */
  latestRecording: RecordingView | null;
}

/** One request to a watch link, as the Worker saw it: Cloudflare's country code and a keyed hash of the address. */
export interface WatchHit {
  country: string;
  visitor: string | null;
}

/**
 * `live`: the stream runs and its input is connected. `reconnecting`: it runs and has been connected,
 * but the input is not now (the glasses dropped; the same input and its URLs come back). `offline`:
 * anything else — not yet connected, stopping, stopped. Playback URLs only while live or reconnecting.
 */
export function watchView(config: Config, record: StreamRecord, latestRecording: RecordingView | null): WatchView {
  const running = record.phase === "running";
  const state = running && record.ingestState === "connected" ? "live" : running && record.everConnected ? "reconnecting" : "offline";
  const urls = state === "offline" ? null : playbackUrls(config, record.liveInputUid, record.ingestProtocol);
  return {
    state,
    streamId: record.streamId,
    hlsUrl: urls?.hlsUrl ?? null,
    dashUrl: urls?.dashUrl ?? null,
    webrtcUrl: urls?.webrtcUrl ?? null,
    thumbnailUrl: urls?.thumbnailUrl ?? null,
    latestRecording,
  };
}
