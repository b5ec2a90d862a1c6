import type { IRequest, RouterType } from "itty-router";
import type { z } from "zod";
import type { Env } from "../env";
import { StreamId } from "../schemas/api";
import {
  CloseTracksBody,
  IceServersAnswer,
  NewSessionAnswer,
  NewSessionBody,
  NewTracksBody,
  REALTIME_MAX_BODY_BYTES,
  RenegotiateAnswer,
  RenegotiateBody,
  SessionAnswer,
  TracksAnswer,
} from "../schemas/realtime";
import type { RealtimeCall } from "../stream/realtime-calls";
import type { Owner } from "../stream/realtime-room";
import { authenticateApp, authenticateDevice } from "./auth";
import { parseJson } from "./body";
import { ApiError, reply, unwrap } from "./errors";

/**
 * The stream's Realtime SFU room under `/api/streams/:streamId/realtime/`, speaking the protocol of
 * partytracks' server proxy (`routePartyTracksRequest`), so partytracks' client (`prefix` = this path)
 * and raw SFU calls both work. The Worker only authenticates and validates: an app by X-API-Key +
 * X-Package-Name, the glasses by their device token (`Authorization: Bearer`); the stream object
 * authorizes each call and makes it with the app secret, which never leaves the Worker.
 */
export const REALTIME_PREFIX = "/api/streams/:streamId/realtime";

type Args = [Env, ExecutionContext];
type Handler = (request: IRequest, env: Env) => Promise<Response>;

export function addRealtimeRoutes(router: RouterType<IRequest, Args>): void {
  const on = (schema: z.ZodType, build: (request: IRequest) => Promise<RealtimeCall>): Handler => async (request, env) => {
    const caller = await authenticate(request, env);
    const call = await build(request);
    const { answer } = unwrap(await stub(request, env).realtime(caller, call));
    return reply(schema, answer.body as z.output<typeof schema>, answer.status);
  };
  const body = <S extends z.ZodType>(request: IRequest, schema: S) => parseJson(request, schema, "INVALID_REQUEST", "INVALID_JSON", REALTIME_MAX_BODY_BYTES);

  router.post(
    `${REALTIME_PREFIX}/sessions/new`,
    on(NewSessionAnswer, async (request) => ({ op: "newSession", ...(await body(request, NewSessionBody)) })),
  );
  router.get(
    `${REALTIME_PREFIX}/sessions/:sessionId`,
    on(SessionAnswer, async (request) => ({ op: "getSession", sessionId: sessionIdOf(request) })),
  );
  router.post(
    `${REALTIME_PREFIX}/sessions/:sessionId/tracks/new`,
    on(TracksAnswer, async (request) => ({ op: "newTracks", sessionId: sessionIdOf(request), body: await body(request, NewTracksBody) })),
  );
  router.put(
    `${REALTIME_PREFIX}/sessions/:sessionId/tracks/close`,
    on(TracksAnswer, async (request) => {
      const sessionId = sessionIdOf(request);
      const { tracks, force, sessionDescription } = await body(request, CloseTracksBody);
      return { op: "closeTracks", sessionId, mids: tracks.map((t) => t.mid), force: force ?? false, ...(sessionDescription ? { sessionDescription } : {}) };
    }),
  );
  router.put(
    `${REALTIME_PREFIX}/sessions/:sessionId/renegotiate`,
    on(RenegotiateAnswer, async (request) => ({ op: "renegotiate", sessionId: sessionIdOf(request), ...(await body(request, RenegotiateBody)) })),
  );
  router.get(
    `${REALTIME_PREFIX}/generate-ice-servers`,
    on(IceServersAnswer, async () => ({ op: "iceServers" })),
  );
}

/** App headers if any are given (a wrong key is 401, never a device fallback), else a device token. */
async function authenticate(request: IRequest, env: Env): Promise<Owner> {
  if (request.headers.has("x-api-key") || request.headers.has("x-package-name")) {
    return { role: "app", packageName: (await authenticateApp(request, env)).packageName };
  }
  return { role: "device", userId: await authenticateDevice(request, env) };
}

function stub(request: IRequest, env: Env) {
  const streamId = request.params.streamId ?? "";
  if (!StreamId.safeParse(streamId).success) throw new ApiError(404, "STREAM_NOT_FOUND", "Managed stream not found");
  return env.STREAMS.getByName(streamId);
}

function sessionIdOf(request: IRequest): string {
  const sessionId = request.params.sessionId ?? "";
  if (sessionId === "" || sessionId.length > 128) throw new ApiError(404, "SESSION_NOT_FOUND", "No such realtime session in this stream's room, or it is not yours");
  return sessionId;
}
