import { describe, expect, it } from "vitest";
import { playbackBase, playbackUrls } from "../../src/cloudflare/playback";
import { testConfig } from "./emulated";

describe("playback URLs", () => {
  const config = testConfig();
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
    expect(playbackUrls(config, "uid123", "webrtc")).toEqual({
      hlsUrl: null,
      dashUrl: null,
      webrtcUrl: `${root}/webRTC/play`,
      previewUrl: `${root}/iframe`,
      thumbnailUrl: `${root}/thumbnails/thumbnail.jpg`,
    });
  });

  it("no input, no URLs", () => {
    expect(Object.values(playbackUrls(config, null, "rtmp"))).toEqual([null, null, null, null, null]);
    expect(Object.values(playbackUrls(config, "", "rtmp"))).toEqual([null, null, null, null, null]);
  });

  it("no delivery host (no customer code, no base URL), no URLs", () => {
    const unhosted = testConfig({ STREAM_CUSTOMER_CODE: "" });
    expect(playbackBase(unhosted)).toBeNull();
    expect(Object.values(playbackUrls(unhosted, "uid123", "rtmp"))).toEqual([null, null, null, null, null]);
  });

  it("STREAM_PLAYBACK_BASE_URL replaces Cloudflare's host, without its trailing slashes", () => {
    expect(playbackBase(testConfig({ STREAM_PLAYBACK_BASE_URL: "http://127.0.0.1:8788/playback//" }))).toBe("http://127.0.0.1:8788/playback");
    expect(playbackUrls(testConfig({ STREAM_PLAYBACK_BASE_URL: "http://h/p/", STREAM_CUSTOMER_CODE: "" }), "u", "rtmp").hlsUrl).toBe("http://h/p/u/manifest/video.m3u8");
    expect(playbackBase(config)).toBe("https://customer-testcode.cloudflarestream.com");
  });
});
