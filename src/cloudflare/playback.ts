import type { Config } from "../config";

export interface PlaybackUrls {
  hlsUrl: string | null;
  dashUrl: string | null;
  webrtcUrl: string | null;
  previewUrl: string | null;
  thumbnailUrl: string | null;
}

const NONE: PlaybackUrls = { hlsUrl: null, dashUrl: null, webrtcUrl: null, previewUrl: null, thumbnailUrl: null };

/**
 * Playback URLs in Cloudflare's formats (seed 000): `https://customer-<CODE>.cloudflarestream.com/<uid>/…`.
 * `STREAM_PLAYBACK_BASE_URL` overrides the host, which is how `npm start` points them at the emulator.
 */
export function playbackUrls(config: Config, liveInputUid: string | null): PlaybackUrls {
  if (!liveInputUid) return NONE;
  const base = (config.playbackBaseUrl ?? (config.customerCode ? `https://customer-${config.customerCode}.cloudflarestream.com` : null))?.replace(/\/+$/, "");
  if (!base) return NONE;
  const root = `${base}/${liveInputUid}`;
  return {
    hlsUrl: `${root}/manifest/video.m3u8`,
    dashUrl: `${root}/manifest/video.mpd`,
    webrtcUrl: `${root}/webRTC/play`,
    previewUrl: `${root}/iframe`,
    thumbnailUrl: `${root}/thumbnails/thumbnail.jpg`,
  };
}
