// WHIP and WHEP signalling (RFC 9725 and draft-ietf-wish-whep) at the live inputs' `webRTC.url`
// (`/playback/<secret>/webRTC/publish`) and `webRTCPlayback.url` (`/playback/<uid>/webRTC/play`). Web APIs only:
// the routes, status codes and CORS are the same in both hosts; the media comes from a WebRtcDriver (the Node
// host's werift endpoints, webrtc-ingest.ts). Not API calls: not authenticated (the WHIP URL is the secret),
// logged, rate limited or faulted.

import { PLAYBACK_PREFIX, playbackError } from "./playback-http.ts";
import type { WebRtcDriver } from "./types.ts";

/** A refusal with the WHIP/WHEP status and our stable code. */
export class WebRtcRefusal extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export const WEBRTC_UNAVAILABLE =
  "This emulator host (workerd, used by vitest) has no UDP, so it terminates no WebRTC. WHIP and WHEP are served by the Node emulator (npm start, emulator/server.ts).";

// Spelled out (not spread from playback-http.ts's CORS_HEADERS: the two modules import each other).
const WEBRTC_CORS = {
  "access-control-allow-origin": "*",
  "access-control-allow-headers": "*",
  "access-control-allow-methods": "POST, DELETE, OPTIONS",
  "access-control-expose-headers": "location, content-type, content-length",
};

export interface WebRtcContext {
  driver: WebRtcDriver | undefined;
  whipTarget(secret: string): { uid: string; streamKey: string; enabled: boolean } | null;
  /** The input's state for WHEP, or null if there is no such input. */
  input(uid: string): { connected: boolean; overWhip: boolean } | null;
}

/** `<id>/webRTC/(publish|play)[/<session>]` under /playback, or null when the path is not a WebRTC one. */
export function webRtcPath(path: string): { id: string; kind: "publish" | "play"; session: string | null } | null {
  const m = /^\/([^/]+)\/webRTC\/(publish|play)(?:\/([A-Za-z0-9_-]+))?$/.exec(path.slice(PLAYBACK_PREFIX.length));
  return m ? { id: m[1]!, kind: m[2] as "publish" | "play", session: m[3] ?? null } : null;
}

export async function handleWebRtc(request: Request, at: { id: string; kind: "publish" | "play"; session: string | null }, ctx: WebRtcContext): Promise<Response> {
  const method = request.method.toUpperCase();
  if (method === "OPTIONS") return new Response(null, { status: 204, headers: { ...WEBRTC_CORS, "access-control-max-age": "600" } });
  const uid = at.kind === "publish" ? ctx.whipTarget(at.id)?.uid : ctx.input(at.id) ? at.id : undefined;
  if (!uid) {
    return error(404, "NOT_FOUND", at.kind === "publish" ? "No live input has this WebRTC (WHIP) URL: it is wrong, or its keys were rotated" : `No live input ${at.id}`);
  }
  if (at.session !== null) {
    if (method !== "DELETE") return error(405, "METHOD_NOT_ALLOWED", `A WHIP/WHEP session resource answers DELETE, not ${method} (no trickle ICE: candidates are in the SDP)`, { allow: "DELETE, OPTIONS" });
    if (!ctx.driver?.end(uid, at.session)) return error(404, "NOT_FOUND", `No session ${at.session} on this live input (it ended)`);
    return new Response(null, { status: 200, headers: WEBRTC_CORS });
  }
  if (method !== "POST") return error(405, "METHOD_NOT_ALLOWED", `${at.kind === "publish" ? "WHIP" : "WHEP"} takes an SDP offer by POST, not ${method}`, { allow: "POST, OPTIONS" });
  const type = (request.headers.get("content-type") ?? "").split(";")[0]!.trim().toLowerCase();
  if (type !== "application/sdp") return error(415, "UNSUPPORTED_MEDIA_TYPE", `The offer must be sent as content-type application/sdp, not ${type || "nothing"}`);
  const offer = await request.text();
  if (!offer.startsWith("v=0") || !/\r?\nm=(audio|video) /.test(offer)) return error(400, "INVALID_SDP", "The body is not an SDP offer with an audio or video section");
  if (!ctx.driver) return error(503, "WEBRTC_UNAVAILABLE", WEBRTC_UNAVAILABLE, { "retry-after": "3600" });
  try {
    let result: { sessionId: string; answerSdp: string };
    if (at.kind === "publish") {
      const target = ctx.whipTarget(at.id)!;
      if (!target.enabled) return error(403, "INPUT_DISABLED", `Live input ${target.uid} is disabled and refuses broadcasts`);
      result = await ctx.driver.publish(target, offer);
    } else {
      const input = ctx.input(uid)!;
      if (!input.connected || !input.overWhip) {
        return error(409, "NOT_LIVE_OVER_WHIP", `Live input ${uid} is not being published over WebRTC (WHIP): WHEP plays only a WHIP ingest${input.connected ? "; this one is live over RTMP/SRT: play its HLS or DASH manifest" : ""}`);
      }
      result = await ctx.driver.play(uid, offer);
    }
    return new Response(result.answerSdp, {
      status: 201,
      headers: { ...WEBRTC_CORS, "content-type": "application/sdp", location: `${PLAYBACK_PREFIX}/${at.id}/webRTC/${at.kind}/${result.sessionId}`, "cache-control": "no-store" },
    });
  } catch (e) {
    if (e instanceof WebRtcRefusal) return error(e.status, e.code, e.message);
    return error(400, "INVALID_SDP", `The offer could not be applied: ${e instanceof Error ? e.message : String(e)}`);
  }
}

function error(status: number, code: string, message: string, headers: Record<string, string> = {}): Response {
  return playbackError(status, code, message, { ...WEBRTC_CORS, ...headers });
}
