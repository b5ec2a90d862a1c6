import { z } from "zod";
import { version } from "../../package.json";
import * as out from "../schemas/responses";
import type { ApiErrorCode } from "../schemas/responses";
import { PATH_PARAMS, REQUEST_SCHEMAS, RESPONSE_SCHEMAS, ROUTES, type Auth, type Route } from "./openapi-routes";

/**
 * The OpenAPI 3.1 document served at GET /openapi.json, generated from the zod schemas the router
 * validates requests with (src/schemas/api.ts, webhook.ts) and types its answers with (responses.ts).
 *
 * Why zod's own `z.toJSONSchema` and no library: OpenAPI 3.1's schema dialect is JSON Schema 2020-12,
 * which zod v4 emits natively (`io: "input"` for request bodies, where defaults make fields optional;
 * `io: "output"` for answers), so the only OpenAPI-specific parts are the route table and this
 * generator, some 430 lines with no dependency and nothing added to the Worker. Cloudflare's chanfana
 * would have us rewrite every route as an `OpenAPIRoute` class whose schema it validates before the
 * handler runs: that breaks our order (authentication before the body is read, docs/api.md), answers
 * bad input in its own format instead of `{error, message}`, and its /docs page loads Swagger UI from
 * a CDN. zod-openapi builds on the same `z.toJSONSchema` but its current major wants Node 22.
 *
 * The routes are listed in openapi-routes.ts. test/http/openapi.test.ts checks that the router and
 * that table list the same routes, and the e2e suite validates every exchange against the served
 * document (test/e2e/spec-check.mjs).
 */

const SECURITY: Record<Auth, Record<string, string[]>[]> = {
  none: [],
  admin: [{ adminToken: [] }],
  app: [{ apiKey: [], packageName: [] }],
  device: [{ deviceToken: [] }],
  webhook: [{ webhookSecret: [] }],
  videoWebhook: [{ videoWebhookSignature: [] }],
  socket: [{ apiKey: [], packageName: [] }, { ticket: [] }, { deviceToken: [] }, { deviceTokenQuery: [] }],
  realtime: [{ apiKey: [], packageName: [] }, { deviceToken: [] }],
  user: [{ apiKey: [], packageName: [] }, { deviceToken: [] }, { adminToken: [] }],
  appOrAdmin: [{ apiKey: [], packageName: [] }, { adminToken: [] }],
};

/** Errors every operation of a kind can get, beside its own (docs/api.md, Conventions and Authentication). */
const AUTH_ERRORS: Record<Auth, Partial<Record<number, ApiErrorCode[]>>> = {
  none: {},
  admin: { 401: ["UNAUTHORIZED"], 403: ["ADMIN_DISABLED"] },
  app: { 401: ["UNAUTHORIZED"] },
  device: { 401: ["UNAUTHORIZED"], 503: ["DEVICE_TOKENS_DISABLED"] },
  webhook: { 401: ["UNAUTHORIZED"], 503: ["WEBHOOKS_DISABLED"] },
  videoWebhook: { 401: ["UNAUTHORIZED"], 503: ["WEBHOOKS_DISABLED"] },
  socket: { 401: ["UNAUTHORIZED"] },
  realtime: { 401: ["UNAUTHORIZED"], 503: ["DEVICE_TOKENS_DISABLED"] },
  user: { 401: ["UNAUTHORIZED"], 503: ["DEVICE_TOKENS_DISABLED"] },
  appOrAdmin: { 401: ["UNAUTHORIZED"], 403: ["ADMIN_DISABLED"] },
};

type Json = Record<string, unknown>;
const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });

function named(schemas: Record<string, z.ZodType>, io: "input" | "output"): Record<string, Json> {
  const registry = z.registry<{ id: string }>();
  for (const [id, schema] of Object.entries(schemas)) registry.add(schema, { id });
  const { schemas: generated } = z.toJSONSchema(registry, { io, uri: (id) => `#/components/schemas/${id}` });
  return Object.fromEntries(Object.entries(generated).map(([id, { $schema: _s, $id: _i, ...schema }]) => [id, schema as Json]));
}

/** A schema as JSON Schema: a reference when it is named, else inline. */
function schemaOf(schema: z.ZodType, io: "input" | "output"): Json {
  const names: Record<string, z.ZodType> = io === "input" ? REQUEST_SCHEMAS : RESPONSE_SCHEMAS;
  const name = Object.keys(names).find((key) => names[key] === schema);
  if (name) return ref(name);
  const { $schema: _s, ...inline } = z.toJSONSchema(schema, { io });
  return inline;
}

function errorsOf(path: string, route: Route): Map<number, ApiErrorCode[]> {
  const all = new Map<number, Set<ApiErrorCode>>();
  const add = (errors: Partial<Record<number, ApiErrorCode[]>>) => {
    for (const [status, codes] of Object.entries(errors)) {
      const set = all.get(Number(status)) ?? new Set<ApiErrorCode>();
      for (const code of codes ?? []) set.add(code);
      all.set(Number(status), set);
    }
  };
  add(AUTH_ERRORS[route.auth]);
  if (route.body) add({ 400: route.bodyErrors ?? ["INVALID_JSON", "INVALID_REQUEST"], 413: ["PAYLOAD_TOO_LARGE"] });
  if (path.includes(":sessionId")) add({ 404: ["SESSION_NOT_FOUND"] });
  if (route.headers?.["Idempotency-Key"]) add({ 400: ["INVALID_REQUEST"] });
  if (path.includes(":streamId")) add({ 404: ["STREAM_NOT_FOUND"] });
  if (path.includes(":packageName")) add({ 404: ["APP_NOT_FOUND"] });
  add(route.errors ?? {});
  // Every route may meet an unexpected exception or a runtime failure (docs/api.md, Conventions).
  add({ 500: ["INTERNAL_ERROR"], 503: ["SERVICE_UNAVAILABLE"] });
  return new Map([...all].sort(([a], [b]) => a - b).map(([status, codes]) => [status, [...codes]]));
}

function errorResponse(status: number, codes: ApiErrorCode[]): Json {
  const schema = schemaOf(out.ErrorBody.extend({ error: z.enum(codes as [ApiErrorCode, ...ApiErrorCode[]]) }), "output");
  const retryAfter = { description: "Whole seconds, at least 1", schema: { type: "integer", minimum: 1 } };
  // 429 and 503 always say when to come back; a 502 does when a rate limit or our API budget caused it.
  const headers = status === 429 || status === 503 ? { "Retry-After": { ...retryAfter, required: true } } : status === 502 ? { "Retry-After": retryAfter } : undefined;
  return { description: codes.join(", "), ...(headers ? { headers } : {}), content: { "application/json": { schema } } };
}

function operation(key: string, route: Route): Json {
  const [method, path] = key.split(" ") as [string, string];
  const params = (where: "path" | "header" | "query", list: Record<string, { schema: z.ZodType; description: string }>, required: boolean) =>
    Object.entries(list).map(([name, p]) => ({ name, in: where, required, description: p.description, schema: schemaOf(p.schema, "input") }));
  const pathNames = [...path.matchAll(/:(\w+)/g)].map((m) => m[1]!);
  const parameters = [
    ...params("path", Object.fromEntries(pathNames.map((name) => [name, PATH_PARAMS[name]!])), true),
    ...params("header", route.headers ?? {}, key === "GET /api/streams/:streamId/ws"),
    ...params("query", route.query ?? {}, false),
  ];
  const responses: Json = {};
  for (const [status, ok] of Object.entries(route.ok)) {
    responses[status] = { description: ok.description, ...(ok.schema ? { content: { "application/json": { schema: schemaOf(ok.schema, "output") } } } : {}) };
  }
  for (const [status, codes] of errorsOf(path, route)) responses[status] = errorResponse(status, codes);
  return {
    operationId: route.operationId ?? operationId(method, path),
    summary: route.summary,
    ...(route.description ? { description: route.description } : {}),
    tags: [route.tag],
    security: SECURITY[route.auth],
    ...(parameters.length ? { parameters } : {}),
    ...(route.body ? { requestBody: { required: false, content: { "application/json": { schema: schemaOf(route.body, "input") } } } } : {}),
    responses,
  };
}

/** e.g. POST /api/streams/:streamId/outputs → postStreamsOutputs */
function operationId(method: string, path: string): string {
  const words = path.replace(/^\/api\//, "/").split(/[/.-]/).filter((w) => w && !w.startsWith(":"));
  return method.toLowerCase() + words.map((w) => w[0]!.toUpperCase() + w.slice(1)).join("");
}

function build(): Json {
  const paths: Record<string, Json> = {};
  for (const [key, route] of Object.entries(ROUTES)) {
    const [method, path] = key.split(" ") as [string, string];
    const openApiPath = path.replace(/:(\w+)/g, "{$1}");
    paths[openApiPath] = { ...paths[openApiPath], [method.toLowerCase()]: operation(key, route) };
  }
  return {
    openapi: "3.1.0",
    info: {
      title: "Stream Coordinator",
      version,
      description: [
        "Managed live streams from smart glasses, on Cloudflare Workers and Stream.",
        "Errors are always `{error, message}`; `429`, every `503` and rate-limit `502`s carry `Retry-After`.",
        "`HEAD` works on every `GET` route. Bodies are JSON up to 16 KiB; an empty body counts as `{}`.",
        "The WebSocket messages are described by the AsyncAPI document at `/asyncapi.json`.",
      ].join("\n\n"),
    },
    externalDocs: { description: "WebSocket messages (AsyncAPI 3.0)", url: "/asyncapi.json" },
    tags: [
      { name: "Meta", description: "Health and the API's own descriptions" },
      { name: "Admin", description: "The platform's calls: apps, device tokens, user grants, operator stops (Authorization: Bearer ADMIN_TOKEN)" },
      { name: "Streams", description: "Start, join, watch and leave a user's stream (X-API-Key + X-Package-Name)" },
      { name: "Outputs", description: "Restream outputs: at most 10 per stream and 10 per app" },
      { name: "Realtime", description: "The stream's Realtime SFU room, in partytracks' proxy protocol (glasses publish with their device token; viewer apps pull)" },
      { name: "Recordings", description: "The stream's recordings (Cloudflare videos), kept RECORDING_RETENTION_DAYS" },
      { name: "Device", description: "The glasses' side (device token)" },
      { name: "Webhooks", description: "Cloudflare Notifications (cf-webhook-auth)" },
      { name: "Watch", description: "The user's stable watch link (/w/<key>): follows their stream across reconnects and new streams" },
    ],
    paths,
    components: {
      schemas: { ...named(REQUEST_SCHEMAS, "input"), ...named(RESPONSE_SCHEMAS, "output") },
      securitySchemes: {
        adminToken: { type: "http", scheme: "bearer", description: "ADMIN_TOKEN" },
        apiKey: { type: "apiKey", in: "header", name: "X-API-Key", description: "The app's key (sc_…), with X-Package-Name" },
        packageName: { type: "apiKey", in: "header", name: "X-Package-Name", description: "The app's package name, with X-API-Key" },
        deviceToken: { type: "http", scheme: "bearer", bearerFormat: "JWT", description: "From POST /api/admin/device-tokens" },
        deviceTokenQuery: { type: "apiKey", in: "query", name: "token", description: "A device token (WebSocket only)" },
        ticket: { type: "apiKey", in: "query", name: "ticket", description: "A single-use viewer ticket (WebSocket only)" },
        webhookSecret: { type: "apiKey", in: "header", name: "cf-webhook-auth", description: "WEBHOOK_SECRET, as Cloudflare sends it" },
        videoWebhookSignature: {
          type: "apiKey",
          in: "header",
          name: "Webhook-Signature",
          description: "time=<unix s>,sig1=hex(HMAC-SHA256(STREAM_VIDEO_WEBHOOK_SECRET, time + \".\" + body)), as Cloudflare signs its video webhook",
        },
      },
    },
  };
}

let cached: Json | undefined;

/** The document, built once per isolate (a few milliseconds). */
export function openApiDocument(): Json {
  return (cached ??= build());
}
