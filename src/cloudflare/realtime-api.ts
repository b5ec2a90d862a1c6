import type { Config } from "../config";
import { ApiError } from "../http/errors";

/**
 * The only module that talks to Cloudflare's Realtime SFU (`rtc.live.cloudflare.com/v1`) and TURN
 * service. Plain `fetch`: the `cloudflare` SDK (7.3.0) only manages SFU apps and TURN keys
 * (`client.calls.sfu`, `client.calls.turn`: `/accounts/:id/calls/apps|turn_keys`); it has no call for
 * sessions, tracks or `generate-ice-servers`. The app secret and TURN token are sent from here only.
 *
 * Every call has the Stream API's timeout (CLOUDFLARE_TIMEOUT_MS) and no retry (a lost `tracks/new`
 * answer may hide tracks that exist: the caller closes what it may have made). Failures become
 * ApiErrors: timeouts, dropped connections and 5xx → 502 REALTIME_ERROR; 429 → 429 RATE_LIMITED;
 * 401/403 (our configuration) → 502 REALTIME_ERROR; 404 → RealtimeCallError with upstreamStatus 404
 * (the session is gone: callers treat it as an answer); other 4xx and a top-level `errorCode` inside a
 * 200 → 400 REALTIME_REFUSED with the SFU's code and description.
 */

export interface SessionDescription {
  type: "offer" | "answer";
  sdp: string;
}

export interface SfuTrack {
  location?: "local" | "remote";
  mid?: string;
  trackName?: string;
  sessionId?: string;
  status?: string;
  errorCode?: string;
  errorDescription?: string;
}

export interface TracksAnswer {
  requiresImmediateRenegotiation: boolean;
  sessionDescription?: SessionDescription;
  tracks: SfuTrack[];
}

export interface SessionState {
  tracks: SfuTrack[];
}

export interface IceServer {
  urls: string | string[];
  username?: string;
  credential?: string;
}

export type TrackRequest =
  | { location: "local"; mid: string; trackName: string }
  | { location: "remote"; sessionId: string; trackName: string; mid?: string };

/** Most tracks the SFU takes in one call (its documented limit). */
export const SFU_TRACKS_PER_CALL = 64;

/** STUN only: what a room gets when no TURN key is configured (partytracks' proxy does the same). */
export const STUN_ONLY: IceServer[] = [{ urls: ["stun:stun.cloudflare.com:3478", "stun:stun.cloudflare.com:53"] }];

export class RealtimeCallError extends ApiError {
  constructor(
    status: number,
    code: string,
    message: string,
    /** The SFU's HTTP status, or undefined for timeouts and dropped connections. */
    readonly upstreamStatus: number | undefined,
    retryAfter?: number,
  ) {
    super(status, code, message, retryAfter);
  }
}

export class RealtimeApi {
  constructor(private readonly config: Config) {}

  /** Whether the SFU app is configured; without it every room call is 503 REALTIME_DISABLED. */
  get enabled(): boolean {
    return this.config.realtimeAppId !== "" && this.config.realtimeAppSecret !== "";
  }

  async newSession(sessionDescription?: SessionDescription): Promise<{ sessionId: string; sessionDescription?: SessionDescription }> {
    const body = await this.sfu("POST", "sessions/new", sessionDescription ? { sessionDescription } : undefined);
    const sessionId = (body as { sessionId?: unknown }).sessionId;
    if (typeof sessionId !== "string" || sessionId === "") throw malformed("sessions/new answered without a sessionId");
    return { sessionId, ...descriptionOf(body) };
  }

  async newTracks(sessionId: string, tracks: TrackRequest[], sessionDescription?: SessionDescription): Promise<TracksAnswer> {
    const body = await this.sfu("POST", `sessions/${encodeURIComponent(sessionId)}/tracks/new`, {
      tracks,
      ...(sessionDescription ? { sessionDescription } : {}),
    });
    return tracksAnswer(body);
  }

  async renegotiate(sessionId: string, sessionDescription: SessionDescription): Promise<{ sessionDescription?: SessionDescription }> {
    return descriptionOf(await this.sfu("PUT", `sessions/${encodeURIComponent(sessionId)}/renegotiate`, { sessionDescription }));
  }

  async closeTracks(sessionId: string, mids: string[], force: boolean, sessionDescription?: SessionDescription): Promise<TracksAnswer> {
    const body = await this.sfu("PUT", `sessions/${encodeURIComponent(sessionId)}/tracks/close`, {
      tracks: mids.map((mid) => ({ mid })),
      force,
      ...(sessionDescription ? { sessionDescription } : {}),
    });
    return tracksAnswer(body);
  }

  async getSession(sessionId: string): Promise<SessionState> {
    const body = await this.sfu("GET", `sessions/${encodeURIComponent(sessionId)}`);
    return { tracks: tracksOf(body) };
  }

  /** TURN credentials for a peer, or STUN only without a TURN key. */
  async iceServers(): Promise<IceServer[]> {
    const { turnKeyId, turnKeyApiToken, turnCredentialTtlSeconds } = this.config;
    if (turnKeyId === "" || turnKeyApiToken === "") return STUN_ONLY;
    const url = `${this.base()}/turn/keys/${encodeURIComponent(turnKeyId)}/credentials/generate-ice-servers`;
    const body = await this.send("POST", url, turnKeyApiToken, { ttl: turnCredentialTtlSeconds });
    const servers = (body as { iceServers?: unknown }).iceServers;
    if (!Array.isArray(servers)) throw malformed("generate-ice-servers answered without iceServers");
    return servers.filter((s): s is IceServer => typeof s === "object" && s !== null && "urls" in s);
  }

  private base(): string {
    return this.config.realtimeApiBaseUrl.replace(/\/+$/, "");
  }

  private sfu(method: string, path: string, body?: unknown): Promise<unknown> {
    if (!this.enabled) throw new ApiError(503, "REALTIME_DISABLED", "Realtime rooms are disabled: REALTIME_APP_ID and REALTIME_APP_SECRET are not configured");
    return this.send(method, `${this.base()}/apps/${encodeURIComponent(this.config.realtimeAppId)}/${path}`, this.config.realtimeAppSecret, body);
  }

  private async send(method: string, url: string, token: string, body?: unknown): Promise<unknown> {
    let response: Response;
    try {
      response = await fetch(url, {
        method,
        headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { "content-type": "application/json" } : {}) },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(this.config.cloudflareTimeoutMs),
      });
    } catch (error) {
      const what = error instanceof Error && (error.name === "TimeoutError" || error.name === "AbortError") ? "timed out" : "unreachable";
      throw new RealtimeCallError(502, "REALTIME_ERROR", `Cloudflare Realtime ${what}`, undefined);
    }
    let parsed: unknown = null;
    try {
      const text = await response.text();
      parsed = text === "" ? {} : JSON.parse(text);
    } catch {
      if (response.ok) throw malformed(`answered ${response.status} with a body that is not JSON`);
    }
    const { errorCode, errorDescription } = (parsed ?? {}) as { errorCode?: unknown; errorDescription?: unknown };
    const detail = typeof errorCode === "string" ? `${errorCode}${typeof errorDescription === "string" ? `: ${errorDescription}` : ""}` : `HTTP ${response.status}`;
    const s = response.status;
    if (s === 404) throw new RealtimeCallError(404, "SESSION_NOT_FOUND", `Cloudflare Realtime has no such session (${detail})`, 404);
    if (s === 429) {
      const retryAfter = Number(response.headers.get("retry-after") ?? NaN);
      throw new RealtimeCallError(429, "RATE_LIMITED", "Cloudflare Realtime is rate limiting this session; retry shortly", 429, Number.isFinite(retryAfter) ? retryAfter : 1);
    }
    if (s >= 500 || s === 401 || s === 403) throw new RealtimeCallError(502, "REALTIME_ERROR", `Cloudflare Realtime returned ${detail}`, s);
    if (s >= 400 || (typeof errorCode === "string" && errorCode !== "")) {
      throw new RealtimeCallError(400, "REALTIME_REFUSED", `Cloudflare Realtime refused the call: ${detail}`, s);
    }
    if (typeof parsed !== "object" || parsed === null) throw malformed("answered with a body that is not an object");
    return parsed;
  }
}

function malformed(what: string): RealtimeCallError {
  return new RealtimeCallError(502, "REALTIME_ERROR", `Cloudflare Realtime ${what}`, 200);
}

function descriptionOf(body: unknown): { sessionDescription?: SessionDescription } {
  const d = (body as { sessionDescription?: { type?: unknown; sdp?: unknown } }).sessionDescription;
  if (!d || (d.type !== "offer" && d.type !== "answer") || typeof d.sdp !== "string") return {};
  return { sessionDescription: { type: d.type, sdp: d.sdp } };
}

function tracksOf(body: unknown): SfuTrack[] {
  const tracks = (body as { tracks?: unknown }).tracks;
  if (!Array.isArray(tracks)) return [];
  return tracks
    .filter((t): t is Record<string, unknown> => typeof t === "object" && t !== null)
    .map((t) => {
      const track: SfuTrack = {};
      for (const key of ["mid", "trackName", "sessionId", "status", "errorCode", "errorDescription"] as const) {
        if (typeof t[key] === "string") track[key] = t[key] as string;
      }
      if (t.location === "local" || t.location === "remote") track.location = t.location;
      return track;
    });
}

function tracksAnswer(body: unknown): TracksAnswer {
  return {
    requiresImmediateRenegotiation: (body as { requiresImmediateRenegotiation?: unknown }).requiresImmediateRenegotiation === true,
    ...descriptionOf(body),
    tracks: tracksOf(body),
  };
}
