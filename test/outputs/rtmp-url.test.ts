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

  it("each refusal says what is wrong (the INVALID_URL message the app sees)", () => {
    const message = (input: unknown) => {
      const r = parseRtmpUrl(input);
      return r.ok ? "accepted" : r.message;
    };
    expect(message(undefined)).toBe("url is required");
    expect(message(null)).toBe("url is required");
    expect(message("")).toBe("url is required");
    expect(message(42)).toBe("url must be a string");
    expect(message(`rtmp://example.com/${"k".repeat(2_048 - 19)}`)).toBe("accepted");
    expect(message(`rtmp://example.com/${"k".repeat(2_048 - 18)}`)).toBe("url must be at most 2048 characters");
    expect(message("http://example.com/live/key")).toBe("url must start with rtmp:// or rtmps://");
    expect(message(" rtmp://example.com/live/key")).toBe("url must start with rtmp:// or rtmps://");
    expect(message("rtmp://example.com/live/my key")).toBe("url must not contain whitespace");
    expect(message("rtmp://example.com/live/key\t")).toBe("url must not contain whitespace");
    expect(message("rtmp://exa[mple.com/live/key")).toBe("url is not a valid URL");
    expect(message("rtmp://host.example")).toBe("url must end with the stream key (e.g. rtmp://host/app/key)");
    expect(message("rtmp://host.example///")).toBe("url must end with the stream key (e.g. rtmp://host/app/key)");
    expect(message("RTMPS://host.example/app/key")).toBe("accepted");
  });

  it("keeps credentials and a non-default port for Cloudflare, never in the masked form", () => {
    const u = ok("RTMPS://User:Pa55@Host.Example:8443/app/sub/key?x=1");
    expect(u).toEqual({
      original: "RTMPS://User:Pa55@Host.Example:8443/app/sub/key?x=1",
      normalized: "rtmps://User:Pa55@host.example:8443/app/sub/key?x=1",
      server: "rtmps://User:Pa55@host.example:8443/app/sub",
      streamKey: "key?x=1",
      masked: "rtmps://host.example:8443/app/sub/****",
    });
    expect(ok("rtmp://user@host.example/app/key").server).toBe("rtmp://user@host.example/app");
    // 443 is rtmps's default, not rtmp's; 1935 the reverse.
    expect(ok("rtmp://host.example:443/app/key").normalized).toBe("rtmp://host.example:443/app/key");
    expect(ok("rtmps://host.example:1935/app/key").normalized).toBe("rtmps://host.example:1935/app/key");
  });

  it("a URL without a host is refused; any number of trailing slashes is dropped", () => {
    expect(parseRtmpUrl("rtmp:///app/key")).toEqual({ ok: false, message: "url has no host" });
    expect(ok("rtmp://host.example/app/key//")).toMatchObject({ streamKey: "key", server: "rtmp://host.example/app", normalized: "rtmp://host.example/app/key" });
  });
});
