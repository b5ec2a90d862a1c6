import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { playbackUrls } from "../../src/cloudflare/playback";
import { loadConfig } from "../../src/config";

describe("playback URLs", () => {
  const config = loadConfig(env);
  const root = "https://customer-testcode.cloudflarestream.com/uid123";

  it("an RTMP or SRT input plays over HLS/DASH, never WHEP (Cloudflare Stream WebRTC docs, Limitations)", () => {
    for (const ingest of ["rtmp", "srt"] as const) {
      expect(playbackUrls(config, "uid123", ingest)).toEqual({
        hlsUrl: `${root}/manifest/video.m3u8`,
        dashUrl: `${root}/manifest/video.mpd`,
        webrtcUrl: null,
        previewUrl: `${root}/iframe`,
        thumbnailUrl: `${root}/thumbnails/thumbnail.jpg`,
      });
    }
  });

  it("a WHIP input plays over WHEP only", () => {
    expect(playbackUrls(config, "uid123", "webrtc")).toMatchObject({ hlsUrl: null, dashUrl: null, webrtcUrl: `${root}/webRTC/play` });
  });

  it("no input, no URLs", () => {
    expect(Object.values(playbackUrls(config, null, "rtmp"))).toEqual([null, null, null, null, null]);
  });
});
