import { z } from "zod";
import * as rt from "../schemas/realtime";
import type { ApiErrorCode } from "../schemas/responses";
import type { Route } from "./openapi-routes";

/**
 * The realtime room's routes for /openapi.json (merged into ROUTES): partytracks' server-proxy protocol
 * under /api/streams/{streamId}/realtime/ (http/realtime-routes.ts, docs/realtime.md).
 */
const P = "/api/streams/:streamId/realtime";
type Errors = Partial<Record<number, ApiErrorCode[]>>;
const COMMON = { 403: ["FORBIDDEN", "NOT_A_VIEWER"], 409: ["STREAM_ENDED"], 429: ["RATE_LIMITED"], 502: ["REALTIME_ERROR"], 503: ["REALTIME_DISABLED"] } satisfies Errors;
const ON_SESSION: Errors = { ...COMMON, 400: ["REALTIME_REFUSED"], 404: ["SESSION_NOT_FOUND"] };

export const REALTIME_ROUTES: Record<string, Route> = {
  [`POST ${P}/sessions/new`]: {
    operationId: "newRealtimeSession",
    summary: "Open a Realtime SFU session in the stream's room",
    description: "The glasses (device token) or a viewer app. The session belongs to its creator. The body may carry an offer (raw SFU API) or be empty (partytracks).",
    tag: "Realtime",
    auth: "realtime",
    body: rt.NewSessionBody,
    bodyErrors: ["INVALID_JSON", "INVALID_REQUEST"],
    ok: { 201: { description: "Created", schema: rt.NewSessionAnswer } },
    errors: { ...COMMON, 400: ["REALTIME_REFUSED"] },
  },
  [`GET ${P}/sessions/:sessionId`]: {
    operationId: "getRealtimeSession",
    summary: "Read one of your sessions (tracks with their status)",
    tag: "Realtime",
    auth: "realtime",
    ok: { 200: { description: "The session as the SFU reports it", schema: rt.SessionAnswer } },
    errors: ON_SESSION,
  },
  [`POST ${P}/sessions/:sessionId/tracks/new`]: {
    operationId: "newRealtimeTracks",
    summary: "Publish local tracks (the glasses) or pull the publisher's tracks (viewer apps)",
    description:
      "At most 64 tracks. The glasses' session that publishes becomes the room's publisher and viewers get `realtime_tracks`. Apps pull only the publisher's published tracks. A per-track errorCode from the SFU fails the call (409 REALTIME_TRACK_FAILED) and closes the tracks it made.",
    tag: "Realtime",
    auth: "realtime",
    body: rt.NewTracksBody,
    ok: { 200: { description: "The SFU's answer (an answer SDP for a publish; an offer to renegotiate for a pull)", schema: rt.TracksAnswer } },
    errors: { ...ON_SESSION, 400: ["REALTIME_REFUSED", "INVALID_SDP"], 403: [...COMMON[403], "PUBLISH_FORBIDDEN", "PULL_FORBIDDEN"], 404: ["SESSION_NOT_FOUND", "TRACK_NOT_FOUND"], 409: ["STREAM_ENDED", "REALTIME_TRACK_FAILED"] },
  },
  [`PUT ${P}/sessions/:sessionId/tracks/close`]: {
    operationId: "closeRealtimeTracks",
    summary: "Close tracks of your session",
    tag: "Realtime",
    auth: "realtime",
    body: rt.CloseTracksBody,
    ok: { 200: { description: "Closed", schema: rt.TracksAnswer } },
    errors: ON_SESSION,
  },
  [`PUT ${P}/sessions/:sessionId/renegotiate`]: {
    operationId: "renegotiateRealtimeSession",
    summary: "Answer the SFU's offer (after a pull) or renegotiate",
    tag: "Realtime",
    auth: "realtime",
    body: rt.RenegotiateBody,
    ok: { 200: { description: "Renegotiated", schema: rt.RenegotiateAnswer } },
    errors: ON_SESSION,
  },
  [`GET ${P}/generate-ice-servers`]: {
    operationId: "realtimeIceServers",
    summary: "ICE servers for the room (TURN credentials, or STUN only without a TURN key)",
    tag: "Realtime",
    auth: "realtime",
    ok: { 200: { description: "For RTCPeerConnection's iceServers", schema: rt.IceServersAnswer } },
    errors: { ...COMMON, 400: ["REALTIME_REFUSED"] },
  },
};

export const REALTIME_PATH_PARAMS = {
  sessionId: { schema: z.string().max(128), description: "From sessions/new; only its creator may use it" },
};
