// Validates every exchange the e2e suite has with the coordinator against the documents the running
// stack serves: HTTP requests and answers against /openapi.json (OpenAPI 3.1, JSON Schema 2020-12), socket
// frames against /asyncapi.json (AsyncAPI 3.0, draft-07 payloads). stack.mjs calls checkExchange() from
// http() and socketCheck() from openSocket(); a violation throws from there, failing the test that made
// the exchange, with the operation, the status and the schema error. So the spec cannot drift from the code.
//
// What counts as a violation:
//   - an answer whose status the operation does not document, or whose body does not match the schema
//     for that status (errors included: each status lists its own `error` codes), or that lacks a
//     required header (Retry-After on 429 and 503);
//   - a 2xx answer to a request the spec forbids (body, path, header or query parameter): the code
//     accepts more than the spec says;
//   - a 400 INVALID_REQUEST (or INVALID_JSON) answer to a request the spec allows: the code accepts less;
//     requests the spec forbids are otherwise fine (tests send bad input on purpose);
//   - a path the spec does not have, unless answered 404 NOT_FOUND (the catch-all route);
//   - a frame the coordinator sends that matches no message its role's `send` operation lists, and an
//     INVALID_JSON / UNKNOWN_MESSAGE_TYPE / INVALID_MESSAGE refusal of a frame the spec allows.
// Not ours, skipped: the emulator (any origin without /openapi.json, and /client/v4, /__emulator paths),
// wrangler's /__scheduled, and the static files under /docs/.
import Ajv2020 from "ajv/dist/2020.js";
import Ajv07 from "ajv";
import addFormats from "ajv-formats";

const NOT_OURS = [/^\/client\/v4(\/|$)/, /^\/__emulator(\/|$)/, /^\/__scheduled(\/|$)/, /^\/docs(\/|$)/];
const BODY_REFUSALS = new Set(["INVALID_REQUEST", "INVALID_JSON"]);
const FRAME_REFUSALS = new Set(["INVALID_JSON", "UNKNOWN_MESSAGE_TYPE", "INVALID_MESSAGE"]);

/** origin → Promise<Spec | null> (null: not a coordinator) */
const specs = new Map();

/** How much was checked; SPEC_CHECK_SUMMARY=1 prints it when the test file's process exits. */
const counts = { http: 0, frames: 0, skipped: 0 };
if (process.env.SPEC_CHECK_SUMMARY === "1") {
  process.on("exit", () => console.log(`# spec-check: ${counts.http} HTTP exchanges and ${counts.frames} socket frames validated, ${counts.skipped} not ours`));
}

export class SpecViolation extends Error {
  constructor(message) {
    super(message);
    this.name = "SpecViolation";
  }
}

function load(origin) {
  let spec = specs.get(origin);
  if (!spec) {
    spec = fetchSpec(origin).catch(() => {
      specs.delete(origin); // unreachable right now (a stack being restarted): try again next time
      return null;
    });
    specs.set(origin, spec);
  }
  return spec;
}

async function fetchSpec(origin) {
  const get = async (path) => {
    const res = await fetch(origin + path, { signal: AbortSignal.timeout(10_000) });
    if (res.status !== 200) return null;
    try {
      return await res.json();
    } catch {
      return null;
    }
  };
  const openapi = await get("/openapi.json");
  if (!openapi || typeof openapi.openapi !== "string") return null; // the emulator, or anything else
  const asyncapi = await get("/asyncapi.json");
  if (!asyncapi || asyncapi.asyncapi !== "3.0.0") throw new SpecViolation(`${origin}/asyncapi.json is not an AsyncAPI 3.0 document`);
  return new Spec(openapi, asyncapi);
}

const escape = (part) => part.replace(/~/g, "~0").replace(/\//g, "~1");
const at = (doc, pointer) => pointer.split("/").slice(1).reduce((node, part) => node?.[part.replace(/~1/g, "/").replace(/~0/g, "~")], doc);
const describeErrors = (errors) => (errors ?? []).slice(0, 5).map((e) => `${e.instancePath || "(root)"} ${e.message}${e.params?.additionalProperty ? ` (${e.params.additionalProperty})` : ""}${e.params?.allowedValues ? ` ${JSON.stringify(e.params.allowedValues)}` : ""}`).join("; ");
const excerpt = (value) => (typeof value === "string" ? value : JSON.stringify(value))?.slice(0, 600);

class Spec {
  constructor(openapi, asyncapi) {
    this.openapi = openapi;
    this.asyncapi = asyncapi;
    this.http = new Ajv2020({ strict: false, allErrors: true });
    addFormats(this.http);
    this.http.addSchema(openapi, "openapi");
    this.ws = new Ajv07({ strict: false, allErrors: true });
    addFormats(this.ws);
    this.ws.addSchema(asyncapi, "asyncapi");
    this.compiled = new Map();
    // OpenAPI paths as regular expressions, literal paths before templated ones.
    this.routes = Object.keys(openapi.paths)
      .sort((a, b) => a.split("{").length - b.split("{").length)
      .map((path) => {
        const names = [...path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]);
        const source = path.split(/\{\w+\}/).map((s) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")).join("([^/]+)");
        return { path, names, regex: new RegExp(`^${source}$`) };
      });
    // role → { send, receive }: message type → schema pointer
    this.messages = {};
    for (const op of Object.values(asyncapi.operations)) {
      const role = op.channel.$ref.endsWith("/deviceSocket") ? "device" : "app";
      const byType = ((this.messages[role] ??= { send: {}, receive: {} })[op.action] = {});
      for (const { $ref } of op.messages) {
        const pointer = at(asyncapi, at(asyncapi, $ref.slice(1)).$ref.slice(1)).payload.$ref.slice(1);
        byType[at(asyncapi, pointer).properties.type.const] = pointer;
      }
    }
  }

  validate(ajv, id, pointer, value) {
    const key = `${id}#${pointer}`;
    let validate = this.compiled.get(key);
    if (!validate) this.compiled.set(key, (validate = ajv.compile({ $ref: key })));
    return validate(value) ? null : describeErrors(validate.errors);
  }

  /** The operation for a method and a URL path, with the path parameters it names. */
  match(method, pathname) {
    for (const route of this.routes) {
      const m = route.regex.exec(pathname);
      const op = m && this.openapi.paths[route.path][method.toLowerCase()];
      if (op) return { op, path: route.path, params: Object.fromEntries(route.names.map((n, i) => [n, safeDecode(m[i + 1])])) };
    }
    return null;
  }
}

function safeDecode(value) {
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}

/**
 * Parameters travel as text: one whose schema is a number, integer or boolean (`?limit=5`) is read as
 * that first, as OpenAPI's serialization says; text that does not parse stays text, and fails.
 */
function asSchemaType(schema, value) {
  const type = schema?.type;
  if ((type === "integer" || type === "number") && value.trim() !== "" && Number.isFinite(Number(value))) return Number(value);
  if (type === "boolean" && (value === "true" || value === "false")) return value === "true";
  return value;
}

/** The first reason the request breaks the operation's contract, or null. */
function requestProblem(spec, found, method, url, headers, body) {
  const { op, path, params } = found;
  const base = `/paths/${escape(path)}/${method.toLowerCase()}`;
  const lower = Object.fromEntries(Object.entries(headers ?? {}).map(([k, v]) => [k.toLowerCase(), String(v)]));
  for (const [i, param] of (op.parameters ?? []).entries()) {
    const value = param.in === "path" ? params[param.name] : param.in === "header" ? lower[param.name.toLowerCase()] : url.searchParams.get(param.name) ?? undefined;
    if (value === undefined) {
      if (param.required) return `${param.in} parameter ${param.name} is required`;
      continue;
    }
    const error = spec.validate(spec.http, "openapi", `${base}/parameters/${i}/schema`, asSchemaType(param.schema, value));
    if (error) return `${param.in} parameter ${param.name}: ${error}`;
  }
  if (!op.requestBody) return null;
  let value = {};
  if (typeof body === "string" && body.trim() !== "") {
    try {
      value = JSON.parse(body);
    } catch {
      return "the body is not JSON";
    }
  }
  const error = spec.validate(spec.http, "openapi", `${base}/requestBody/content/application~1json/schema`, value);
  return error ? `body ${error}` : null;
}

/**
 * Checks one HTTP exchange; throws a SpecViolation naming the operation, the status and the schema error.
 * `responseBody` is the parsed JSON (or the text when it is not JSON); HEAD answers have no body.
 */
export async function checkExchange({ method, url, headers, body, status, responseHeaders, responseBody }) {
  const target = new URL(url);
  if (NOT_OURS.some((re) => re.test(target.pathname))) return void (counts.skipped += 1);
  const spec = await load(target.origin);
  if (!spec) return void (counts.skipped += 1);
  counts.http += 1;
  const fail = (what, operationId) =>
    new SpecViolation(`OpenAPI: ${method} ${target.pathname} → ${status}${operationId ? ` (${operationId})` : ""}: ${what}\n  answer: ${excerpt(responseBody)}`);
  const found = spec.match(method === "HEAD" ? "GET" : method, target.pathname);
  if (!found) {
    if (status === 404 && responseBody?.error === "NOT_FOUND") return;
    throw fail("no such operation in /openapi.json");
  }
  const { op, path } = found;
  const response = op.responses[String(status)];
  if (!response) throw fail(`status ${status} is not documented (documented: ${Object.keys(op.responses).join(", ")})`, op.operationId);

  const problem = requestProblem(spec, found, method, target, headers, body);
  if (problem && status >= 200 && status < 300) throw fail(`the coordinator accepted a request the spec forbids: ${problem}`, op.operationId);
  if (!problem && status === 400 && BODY_REFUSALS.has(responseBody?.error) && !(responseBody.error === "INVALID_JSON" && !op.requestBody)) {
    throw fail(`the spec allows this request, but the coordinator refused it with ${responseBody.error}`, op.operationId);
  }

  for (const [name, header] of Object.entries(response.headers ?? {})) {
    const value = responseHeaders.get(name);
    if (value === null) {
      if (header.required) throw fail(`header ${name} is missing`, op.operationId);
    } else if (header.schema?.type === "integer" && !(/^\d+$/.test(value) && Number(value) >= (header.schema.minimum ?? 0))) {
      throw fail(`header ${name}: ${JSON.stringify(value)} is not an integer ≥ ${header.schema.minimum ?? 0}`, op.operationId);
    }
  }
  if (method === "HEAD" || !response.content?.["application/json"]) return;
  if (!String(responseHeaders.get("content-type")).includes("application/json")) throw fail(`content-type is ${responseHeaders.get("content-type")}, not JSON`, op.operationId);
  const pointer = `/paths/${escape(path)}/${method.toLowerCase()}/responses/${status}/content/application~1json/schema`;
  const error = spec.validate(spec.http, "openapi", pointer, responseBody);
  if (error) throw fail(error, op.operationId);
}

/**
 * For one socket: `sent(value)` and `received(message)` check each frame against the role's messages
 * (device when the socket has a device token, else app); `violation()` is the first problem found, if any.
 * Frames that arrive before the spec is loaded are checked once it is.
 */
export function socketCheck(url, headers = {}) {
  const target = new URL(url.replace(/^ws/, "http"));
  const role = Object.keys(headers).some((k) => k.toLowerCase() === "authorization") || target.searchParams.has("token") ? "device" : "app";
  let spec = null;
  let loaded = false;
  const pending = [];
  let problem = null;
  let refusable = 0; // frames we sent that the spec forbids: each may earn one refusal
  let lastAllowed = null;
  const check = (direction, frame) => {
    if (problem) return;
    counts.frames += 1;
    const byType = spec.messages[role][direction];
    const pointer = frame && typeof frame === "object" ? byType[frame.type] : undefined;
    const error = pointer ? spec.validate(spec.ws, "asyncapi", pointer, frame) : `no ${direction === "send" ? "coordinator → " + role : role + " → coordinator"} message has type ${JSON.stringify(frame?.type)}`;
    if (direction === "receive") {
      if (error) refusable += 1;
      else lastAllowed = frame;
      return;
    }
    if (error) problem = new SpecViolation(`AsyncAPI: ${role} socket ${target.pathname}: ${frame?.type ?? "frame"}: ${error}\n  frame: ${excerpt(frame)}`);
    else if (frame.type === "error" && FRAME_REFUSALS.has(frame.error)) {
      if (refusable > 0) refusable -= 1;
      else problem = new SpecViolation(`AsyncAPI: ${role} socket ${target.pathname}: the coordinator refused (${frame.error}: ${frame.message}) a frame the spec allows: ${excerpt(lastAllowed)}`);
    }
  };
  const handle = (direction, frame) => (loaded ? spec && check(direction, frame) : pending.push([direction, frame]));
  if (!NOT_OURS.some((re) => re.test(target.pathname))) {
    load(target.origin).then((s) => {
      spec = s;
      loaded = true;
      if (spec) for (const [direction, frame] of pending) check(direction, frame);
      pending.length = 0;
    });
  } else loaded = true;
  return {
    /** What the test sends: from the coordinator's side, a frame it receives. */
    sent(value) {
      let frame = value;
      if (typeof value === "string") {
        try {
          frame = JSON.parse(value);
        } catch {
          frame = undefined; // not JSON: the coordinator must refuse it
        }
      }
      handle("receive", frame);
    },
    received(message) {
      handle("send", message);
    },
    violation: () => problem,
    /** Throws the first problem found, if any (openSocket's next() and close() call it). */
    assertClean() {
      if (problem) throw problem;
    },
  };
}

/** A refused WebSocket upgrade (an http.IncomingMessage and its text) is an exchange like any other. */
export function checkRefusal(url, headers, res, text) {
  let body = text;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON: the check reports it
  }
  const httpUrl = url.replace(/^ws/, "http");
  return checkExchange({ method: "GET", url: httpUrl, headers: { ...headers, upgrade: "websocket" }, status: res.statusCode, responseHeaders: new Headers(res.headers), responseBody: body });
}
