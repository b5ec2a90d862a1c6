import { describe, expect, it } from "vitest";
import { parseRtmpUrl } from "../../src/outputs/rtmp-url";

const ok = (input: string) => {
  const result = parseRtmpUrl(input);
  if (!result.ok) throw new Error(result.message);
  return result.url;
};

describe("parseRtmpUrl", () => {
  it("splits the stream key off for Cloudflare and masks it for others", () => {
    const u = ok("rtmp://a.rtmp.youtube.com/live2/abcd-efgh-ijkl");
    expect(u.server).toBe("rtmp://a.rtmp.youtube.com/live2");
    expect(u.streamKey).toBe("abcd-efgh-ijkl");
    expect(u.masked).toBe("rtmp://a.rtmp.youtube.com/live2/****");
    expect(ok("rtmps://live.twitch.tv/app/live_123?bandwidthtest=true").streamKey).toBe("live_123?bandwidthtest=true");
    const withCredentials = ok("rtmp://user:secret@host.example/app/key");
    expect(withCredentials.masked).toBe("rtmp://host.example/app/****");
    expect(withCredentials.server).toBe("rtmp://user:secret@host.example/app");
    // A single path segment is the key itself: still masked, still split for Cloudflare.
    const single = ok("rtmp://host.example/only-key");
    expect(single).toMatchObject({ server: "rtmp://host.example", streamKey: "only-key", masked: "rtmp://host.example/****" });
  });

  it("normalizes scheme and host case, default port and trailing slash for the duplicate check", () => {
    const forms = [
      "rtmp://Live.Example.com/app/Key",
      "RTMP://live.example.com:1935/app/Key/",
      "rtmp://LIVE.EXAMPLE.COM/app/Key",
    ];
    expect(new Set(forms.map((f) => ok(f).normalized)).size).toBe(1);
    expect(ok("rtmps://live.example.com:443/app/Key").normalized).toBe("rtmps://live.example.com/app/Key");
    // Keys are case-sensitive; other ports are different servers.
    expect(ok("rtmp://live.example.com/app/key").normalized).not.toBe(ok("rtmp://live.example.com/app/Key").normalized);
    expect(ok("rtmp://live.example.com:1936/app/Key").normalized).not.toBe(ok("rtmp://live.example.com/app/Key").normalized);
  });

  it("refuses what is not an RTMP(S) URL", () => {
    for (const bad of [undefined, null, "", 42, {}, "http://example.com/live/key", "rtmp:/missing", "rtmp://", "rtmp:// spaced.host/app/key", "rtmp://host.example", "rtmp://host.example/", `rtmp://example.com/${"k".repeat(2_100)}`]) {
      expect(parseRtmpUrl(bad).ok, String(bad)).toBe(false);
    }
  });
});
