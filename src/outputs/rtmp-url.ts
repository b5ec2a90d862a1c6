/**
 * Restream destination URLs: validation (seed 002 `INVALID_URL`), the normalized form used for the
 * duplicate check, the split into Cloudflare's `url` + `streamKey`, and the masked form other apps see.
 */
export const MAX_URL_LENGTH = 2_048;

export interface ParsedRtmpUrl {
  /** As the app gave it (what its owner sees back). */
  original: string;
  /** Scheme and host lower-cased, default port and trailing slash dropped. */
  normalized: string;
  /** For Cloudflare: everything before the last path segment... */
  server: string;
  /** ...and the last path segment (with any query), the stream key. */
  streamKey: string;
  /** The URL with the stream key (and any userinfo) replaced, safe to show to other apps. */
  masked: string;
}

const DEFAULT_PORTS: Record<string, string> = { rtmp: "1935", rtmps: "443" };

export type UrlCheck = { ok: true; url: ParsedRtmpUrl } | { ok: false; message: string };

export function parseRtmpUrl(input: unknown): UrlCheck {
  if (input === undefined || input === null || input === "") return { ok: false, message: "url is required" };
  if (typeof input !== "string") return { ok: false, message: "url must be a string" };
  if (input.length > MAX_URL_LENGTH) return { ok: false, message: `url must be at most ${MAX_URL_LENGTH} characters` };
  const schemeMatch = /^(rtmps?):\/\//i.exec(input);
  if (!schemeMatch) return { ok: false, message: "url must start with rtmp:// or rtmps://" };
  let url: URL;
  try {
    url = new URL(input);
  } catch {
    return { ok: false, message: "url is not a valid URL" };
  }
  const scheme = schemeMatch[1]!.toLowerCase();
  const host = url.hostname.toLowerCase();
  if (!host) return { ok: false, message: "url has no host" };
  if (/\s/.test(input)) return { ok: false, message: "url must not contain whitespace" };

  const port = url.port && url.port !== DEFAULT_PORTS[scheme] ? `:${url.port}` : "";
  const path = url.pathname.replace(/\/+$/, "");
  const authority = `${host}${port}`;
  const normalized = `${scheme}://${authority}${path}${url.search}`;

  const lastSlash = path.lastIndexOf("/");
  const hasKey = lastSlash > 0; // at least "/app/key": the last segment is the key
  const server = hasKey ? `${scheme}://${authority}${path.slice(0, lastSlash)}` : `${scheme}://${authority}${path}`;
  const streamKey = hasKey ? `${path.slice(lastSlash + 1)}${url.search}` : url.search.replace(/^\?/, "");
  const masked = hasKey ? `${server}/****` : `${scheme}://${authority}${path}${url.search ? "?****" : ""}`;
  return { ok: true, url: { original: input, normalized, server, streamKey, masked } };
}
