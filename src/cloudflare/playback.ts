import type { z } from "zod";
import type { Config } from "../config";
import type { IngestProtocol as IngestProtocolSchema } from "../schemas/api";

export interface PlaybackUrls {
  hlsUrl: string | null;
  dashUrl: string | null;
  webrtcUrl: string | null;
  previewUrl: string | null;
  thumbnailUrl: string | null;
}

/** How the glasses push video into the live input (the stream's `ingest` choice, src/schemas/api.ts). */
export type IngestProtocol = z.infer<typeof IngestProtocolSchema>;

const NONE: PlaybackUrls = { hlsUrl: null, dashUrl: null, webrtcUrl: null, previewUrl: null, thumbnailUrl: null };

/**
 * Playback URLs in Cloudflare's formats (seed 000): `https://customer-<CODE>.cloudflarestream.com/<uid>/…`.
 * `STREAM_PLAYBACK_BASE_URL` overrides the host, which is how `npm start` points them at the emulator.
 * Only what can play is given: WHEP (`webrtcUrl`) plays only an input ingested over WHIP, and a WHIP
 * input has no HLS/DASH (Cloudflare Stream WebRTC docs, Limitations).
 */
/** The delivery host (`https://customer-<CODE>.cloudflarestream.com`, or STREAM_PLAYBACK_BASE_URL), or null. */
export function playbackBase(config: Config): string | null {
  return (config.playbackBaseUrl ?? (config.customerCode ? `https://customer-${config.customerCode}.cloudflarestream.com` : null))?.replace(/\/+$/, "") ?? null;
}

export function playbackUrls(config: Config, liveInputUid: string | null, ingest: IngestProtocol): PlaybackUrls {
  if (!liveInputUid) return NONE;
  const base = playbackBase(config);
  if (!base) return NONE;
  const root = `${base}/${liveInputUid}`;
  const overWhip = ingest === "webrtc";
  return {
    hlsUrl: overWhip ? null : `${root}/manifest/video.m3u8`,
    dashUrl: overWhip ? null : `${root}/manifest/video.mpd`,
    webrtcUrl: overWhip ? `${root}/webRTC/play` : null,
    previewUrl: `${root}/iframe`,
    thumbnailUrl: `${root}/thumbnails/thumbnail.jpg`,
  };
}
