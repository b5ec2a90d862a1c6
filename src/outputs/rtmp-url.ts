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
  /** For Cloudflare: everything before the last path segment (credentials included)... */
  server: string;
  /** ...and the last path segment (with any query): the stream key. `server/streamKey` is the URL. */
  streamKey: string;
  /** The URL with the stream key and any credentials replaced, safe to show to other apps. */
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
  if (/\s/.test(input)) return { ok: false, message: "url must not contain whitespace" };
  let url: URL;
  try {
    url = new URL(input);
  } catch {
    return { ok: false, message: "url is not a valid URL" };
  }
  const scheme = schemeMatch[1]!.toLowerCase();
  const host = url.hostname.toLowerCase();
  if (!host) return { ok: false, message: "url has no host" };

  const port = url.port && url.port !== DEFAULT_PORTS[scheme] ? `:${url.port}` : "";
  const userinfo = url.username ? `${url.username}${url.password ? `:${url.password}` : ""}@` : "";
  const path = url.pathname.replace(/\/+$/, "");
  const lastSlash = path.lastIndexOf("/");
  const key = path.slice(lastSlash + 1);
  // Every destination carries its stream key as the last path segment (…/live2/<key>, …/app/<key>).
  if (lastSlash < 0 || key === "") return { ok: false, message: "url must end with the stream key (e.g. rtmp://host/app/key)" };

  const authority = `${host}${port}`;
  return {
    ok: true,
    url: {
      original: input,
      normalized: `${scheme}://${userinfo}${authority}${path}${url.search}`,
      server: `${scheme}://${userinfo}${authority}${path.slice(0, lastSlash)}`,
      streamKey: `${key}${url.search}`,
      masked: `${scheme}://${authority}${path.slice(0, lastSlash)}/****`,
    },
  };
}
