import { Router, type IRequest } from "itty-router";
import type { Env } from "../env";
import { loadConfig } from "../config";
import {
  AddOutputBody,
  DeviceTokenBody,
  IdempotencyKey,
  OutputName,
  PackageName,
  PatchOutputBody,
  RegisterAppBody,
  StartStreamBody,
  StreamId,
  UserGrantBody,
} from "../schemas/api";
import { parseRtmpUrl } from "../outputs/rtmp-url";
import { DEFAULT_INGEST, recordingFor } from "../stream/ingest-choice";
import { addRestreamDestinations } from "../outputs/restream-destinations";
import { JOINED_ONLY_HEADER, PACKAGE_HEADER, ROLE_HEADER, TICKET_HEADER, USER_HEADER } from "../stream/connections";
import {
  authenticateAdmin,
  authenticateApp,
  authenticateAppStart,
  authenticateDevice,
  forgetVerifiedKeys,
  mintDeviceToken,
  mintUserGrant,
  requireUserGrant,
} from "./auth";
import { parseJson } from "./body";
import { ApiError, errorResponse, json, reply, unwrap } from "./errors";
import { asyncApiDocument } from "./asyncapi";
import { openApiDocument } from "./openapi";
import * as answers from "../schemas/responses";
import { handleAdminStats } from "./admin-stats";
import { handleStreamWebhook } from "./stream-webhook";
import { handleVideoWebhook } from "./video-webhook";
import { handleListRunningStreams, handleListStreams } from "./stream-lists";
import { addRealtimeRoutes } from "./realtime-routes";
import { handleGetWatchLink, handleRotateWatchLink, handleWatch, handleWatchManifest, noStore, watchOrigin } from "./watch-routes";

/**
 * The stateless Worker: authenticate, validate, route to the owning Durable Object. No state here.
 * Routing is a plain function of the request (the partyserver pattern), separate from the objects.
 */
type Args = [Env, ExecutionContext];

export const router = Router<IRequest, Args>({
  catch: (error: unknown) => errorResponse(error),
});

router.get("/healthz", () => reply(answers.HealthAnswer, { ok: true }));

/** The API described, from the same zod schemas (src/http/openapi.ts, asyncapi.ts); the reference page is /docs/. */
router.get("/openapi.json", () => json(openApiDocument()));
router.get("/asyncapi.json", () => json(asyncApiDocument()));

// ── Admin ────────────────────────────────────────────────────────────────────────────────────────

router.post("/api/admin/apps", async (request, env) => {
  await authenticateAdmin(request, env);
  const { packageName } = await parseJson(request, RegisterAppBody);
  const { apiKey } = unwrap(await env.APPS.getByName(packageName).register(packageName));
  return reply(answers.AppKeyAnswer, { packageName, apiKey }, 201);
});

router.post("/api/admin/apps/:packageName/rotate-key", async (request, env) => {
  await authenticateAdmin(request, env);
  const packageName = pathPackage(request);
  const { apiKey } = unwrap(await env.APPS.getByName(packageName).rotateKey());
  forgetVerifiedKeys(packageName);
  return reply(answers.AppKeyAnswer, { packageName, apiKey });
});

router.delete("/api/admin/apps/:packageName", async (request, env) => {
  await authenticateAdmin(request, env);
  const packageName = pathPackage(request);
  unwrap(await env.APPS.getByName(packageName).remove());
  forgetVerifiedKeys(packageName);
  return reply(answers.AppRemovedAnswer, { success: true, packageName });
});

router.post("/api/admin/device-tokens", async (request, env) => {
  await authenticateAdmin(request, env);
  const { userId, ttlSeconds } = await parseJson(request, DeviceTokenBody);
  return reply(answers.DeviceTokenAnswer, { userId, ...(await mintDeviceToken(env, userId, ttlSeconds)) }, 201);
});

router.post("/api/admin/user-grants", async (request, env) => {
  await authenticateAdmin(request, env);
  const { userId, packageName, ttlSeconds } = await parseJson(request, UserGrantBody);
  return reply(answers.UserGrantAnswer, { userId, packageName, ...(await mintUserGrant(env, userId, packageName, ttlSeconds)) }, 201);
});

router.get("/api/admin/stats", handleAdminStats);

/** Every running stream, newest first, paged (stream-lists.ts). */
router.get("/api/admin/streams", handleListRunningStreams);

router.post("/api/admin/streams/:streamId/stop", async (request, env) => {
  await authenticateAdmin(request, env);
  const { snapshot } = unwrap(await streamStub(request, env).forceStop());
  return reply(answers.StreamSnapshot, snapshot);
});

// ── Apps ─────────────────────────────────────────────────────────────────────────────────────────

/** The streams this app takes part in, newest join first, paged (stream-lists.ts). */
router.get("/api/streams", handleListStreams);

router.post("/api/streams", async (request, env) => {
  // Body and grant are checked before the one AppAccount round trip (key check + start count), so a
  // refused request uses up no start; their errors still come after a 401, in the same order as ever.
  const config = loadConfig(env);
  const parsed = await parseJson(request, StartStreamBody).then(
    (value) => {
      // What the chosen ingest allows is part of the body's check (a refused body uses up no start).
      const ingestProtocol = value.ingest ?? DEFAULT_INGEST;
      const recording = recordingFor(ingestProtocol, value.recording);
      return recording.ok ? { ok: true as const, value, ingestProtocol, recording: recording.recording } : { ok: false as const, error: ApiError.from(recording) };
    },
    (error: unknown) => ({ ok: false as const, error }),
  );
  const grantError = parsed.ok && config.requireUserGrant
    ? await requireUserGrant(request, env, parsed.value.userId, request.headers.get("x-package-name") ?? "").then(() => null, (error: unknown) => error)
    : null;
  const app = await authenticateAppStart(request, env, config.streamStartsPerMinute, parsed.ok && grantError === null);
  if (!parsed.ok) throw parsed.error;
  if (grantError !== null) throw grantError;
  unwrap(app.start!);
  const { value: body, ingestProtocol, recording } = parsed;
  const result = unwrap(
    await env.USERS.getByName(body.userId).startOrJoin(body.userId, app.packageName, {
      ingestProtocol,
      recording,
      deleteRecordingAfterDays: body.deleteRecordingAfterDays === undefined ? 30 : body.deleteRecordingAfterDays,
    }, watchOrigin(request, env)),
  );
  const stub = env.STREAMS.getByName(result.snapshot.streamId);
  const restreamResults = await addRestreamDestinations(body.restreamDestinations ?? [], (url, name) => stub.addOutput(app.packageName, url, name, null));
  return reply(
    answers.StartStreamAnswer,
    { ...result.snapshot, created: result.created, ...(body.restreamDestinations ? { restreamResults } : {}) },
    result.created ? 201 : 200,
  );
});

router.get("/api/streams/:streamId", async (request, env) => {
  const app = await authenticateApp(request, env);
  const { snapshot } = unwrap(await streamStub(request, env).getSnapshot(app.packageName));
  return reply(answers.StreamSnapshot, snapshot);
});

/** The app leaves the stream (like `managed_stream_stop`); the stream goes on for other apps. */
router.delete("/api/streams/:streamId", async (request, env) => {
  const app = await authenticateApp(request, env);
  const { snapshot } = unwrap(await streamStub(request, env).leave(app.packageName));
  return reply(answers.StreamSnapshot, snapshot);
});

/** The stream's analytics: for the apps that took part, and the admin (Bearer token, no app headers). */
router.get("/api/streams/:streamId/analytics", async (request, env) => {
  let packageName: string | null = null;
  if (!request.headers.has("x-api-key") && !request.headers.has("x-package-name") && request.headers.has("authorization")) await authenticateAdmin(request, env);
  else packageName = (await authenticateApp(request, env)).packageName;
  const { report } = unwrap(await streamStub(request, env).analyticsReport(packageName));
  return reply(answers.StreamAnalytics, report);
});

// ── Watch links (watch-routes.ts) ────────────────────────────────────────────────────────────────

router.get("/api/users/:userId/watch-link", noStore(handleGetWatchLink));
router.post("/api/users/:userId/watch-link/rotate", noStore(handleRotateWatchLink));
router.get("/w/:key", handleWatch);
router.get("/w/:key/video.m3u8", handleWatchManifest);

// ── Restream outputs (seed 002) ──────────────────────────────────────────────────────────────────

router.post("/api/streams/:streamId/outputs", async (request, env) => {
  const app = await authenticateApp(request, env);
  const body = await parseJson(request, AddOutputBody, "INVALID_URL", "INVALID_URL");
  const parsed = parseRtmpUrl(body.url);
  if (!parsed.ok) throw new ApiError(400, "INVALID_URL", parsed.message);
  const name = OutputName.safeParse(body.name);
  if (!name.success) throw new ApiError(400, "INVALID_REQUEST", "name must be a string of at most 100 characters");
  const keyHeader = request.headers.get("idempotency-key");
  if (keyHeader !== null && !IdempotencyKey.safeParse(keyHeader).success) {
    throw new ApiError(400, "INVALID_REQUEST", "Idempotency-Key must be 1 to 128 characters");
  }
  const { outputId } = unwrap(await streamStub(request, env).addOutput(app.packageName, parsed.url, name.data ?? null, keyHeader));
  return reply(answers.OutputAdded, { success: true, outputId, message: "Output added successfully" });
});

router.get("/api/streams/:streamId/outputs", async (request, env) => {
  const app = await authenticateApp(request, env);
  const streamId = request.params.streamId!;
  const { outputs } = unwrap(await streamStub(request, env).listOutputs(app.packageName));
  return reply(answers.OutputList, { streamId, outputs, total: outputs.length, maxPerStream: 10, maxPerApp: 10 });
});

router.delete("/api/streams/:streamId/outputs/:outputId", async (request, env) => {
  const app = await authenticateApp(request, env);
  const { pending } = unwrap(await streamStub(request, env).removeOutput(app.packageName, request.params.outputId ?? ""));
  // 202: the removal stands (the output is gone from the list and holds no slot) but Cloudflare has not
  // confirmed it yet; the stream finishes it within RECONCILE_SECONDS.
  if (pending) return reply(answers.OutputRemoved, { success: true, message: "Output removal accepted; Cloudflare will confirm it shortly" }, 202);
  return reply(answers.OutputRemoved, { success: true, message: "Output removed successfully" });
});

router.patch("/api/streams/:streamId/outputs/:outputId", async (request, env) => {
  const app = await authenticateApp(request, env);
  const { enabled } = await parseJson(request, PatchOutputBody);
  unwrap(await streamStub(request, env).setOutputEnabled(app.packageName, request.params.outputId ?? "", enabled));
  return reply(answers.OutputToggled, { success: true, message: enabled ? "Output enabled" : "Output disabled" });
});

router.post("/api/streams/:streamId/tickets", async (request, env) => {
  const app = await authenticateApp(request, env);
  const { ticket, expiresAt } = unwrap(await streamStub(request, env).issueTicket(app.packageName));
  return reply(answers.TicketAnswer, { ticket, expiresAt: new Date(expiresAt).toISOString() }, 201);
});

router.get("/api/streams/:streamId/ws", async (request, env) => {
  if (request.headers.get("upgrade")?.toLowerCase() !== "websocket") {
    throw new ApiError(426, "UPGRADE_REQUIRED", "This endpoint accepts WebSocket upgrades only");
  }
  const stub = streamStub(request, env);
  const url = new URL(request.url);
  // Only headers we set reach the object: identity is never taken from the client's own x-sc-* headers.
  const headers = new Headers({ upgrade: "websocket" });
  const ticket = url.searchParams.get("ticket");
  if (request.headers.has("x-api-key") || request.headers.has("x-package-name")) {
    const app = await authenticateApp(request, env);
    headers.set(ROLE_HEADER, "app");
    headers.set(PACKAGE_HEADER, app.packageName);
  } else if (ticket) {
    if (ticket.length > 128) throw new ApiError(401, "UNAUTHORIZED", "Ticket is invalid, expired or already used");
    headers.set(ROLE_HEADER, "app");
    headers.set(TICKET_HEADER, ticket);
  } else {
    const userId = await authenticateDevice(request, env);
    headers.set(ROLE_HEADER, "device");
    headers.set(USER_HEADER, userId);
  }
  // With grants required, an app views only a stream it joined with a grant, by headers or by ticket.
  if (headers.get(ROLE_HEADER) === "app" && loadConfig(env).requireUserGrant) headers.set(JOINED_ONLY_HEADER, "1");
  return stub.fetch(new Request(url.origin + url.pathname, { headers }));
});

// ── Cloudflare webhooks ─────────────────────────────────────────────────────────────────────────

/** Cloudflare Notifications (stream_live_notifications), its destination test, and the outcome counts: stream-webhook.ts. */
router.post("/api/webhooks/cloudflare-stream", handleStreamWebhook);

/** Cloudflare Stream's signed video webhook: a recording ready or failed (video-webhook.ts). */
router.post("/api/webhooks/cloudflare-stream-video", handleVideoWebhook);

// ── Recordings ───────────────────────────────────────────────────────────────────────────────────

router.get("/api/streams/:streamId/recordings", async (request, env) => {
  const app = await authenticateApp(request, env);
  const { recordings } = unwrap(await streamStub(request, env).listRecordings(app.packageName));
  return reply(answers.RecordingList, recordings);
});

router.delete("/api/streams/:streamId/recordings/:recordingId", async (request, env) => {
  const app = await authenticateApp(request, env);
  return deleteRecording(request, env, app.packageName);
});

router.get("/api/admin/streams/:streamId/recordings", async (request, env) => {
  await authenticateAdmin(request, env);
  const { recordings } = unwrap(await streamStub(request, env).listRecordings(null));
  return reply(answers.RecordingList, recordings);
});

router.delete("/api/admin/streams/:streamId/recordings/:recordingId", async (request, env) => {
  await authenticateAdmin(request, env);
  return deleteRecording(request, env, null);
});

async function deleteRecording(request: IRequest, env: Env, packageName: string | null): Promise<Response> {
  const recordingId = request.params.recordingId ?? "";
  const { pending } = unwrap(await streamStub(request, env).deleteRecording(packageName, recordingId));
  // 202: the removal stands (listed as deleted) but Cloudflare has not confirmed it; the stream retries it.
  if (pending) return reply(answers.RecordingDeleted, { success: true, recordingId, message: "Recording deletion accepted; Cloudflare will confirm it shortly" }, 202);
  return reply(answers.RecordingDeleted, { success: true, recordingId, message: "Recording deleted" });
}

// ── Devices ──────────────────────────────────────────────────────────────────────────────────────

/** The user's device fetches its ingest credentials here (or receives them as `start_rtmp_stream`). */
router.get("/api/device/stream", async (request, env) => {
  const userId = await authenticateDevice(request, env);
  const { info } = unwrap(await env.USERS.getByName(userId).deviceStream(userId));
  return reply(answers.DeviceStreamInfo, info);
});

// ── Realtime SFU rooms (partytracks' proxy protocol): realtime-routes.ts ────────────────────────

addRealtimeRoutes(router);

router.all("*", (request) => {
  throw new ApiError(404, "NOT_FOUND", `No route for ${request.method} ${new URL(request.url).pathname}`);
});

function streamStub(request: IRequest, env: Env) {
  const streamId = request.params.streamId ?? "";
  if (!StreamId.safeParse(streamId).success) throw new ApiError(404, "STREAM_NOT_FOUND", "Managed stream not found");
  return env.STREAMS.getByName(streamId);
}

function pathPackage(request: IRequest): string {
  let packageName = "";
  try {
    packageName = decodeURIComponent(request.params.packageName ?? "");
  } catch {
    // Malformed percent-encoding: no app can have that name.
  }
  if (!PackageName.safeParse(packageName).success) throw new ApiError(404, "APP_NOT_FOUND", "App is not registered");
  return packageName;
}
