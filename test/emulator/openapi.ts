/// <reference types="vite/client" />
// Checks emulator responses against Cloudflare's published types for Stream live inputs, in two layers:
//
// 1. Always (CI too): the `cloudflare` npm SDK's types, turned into JSON Schema when vitest starts
//    (./sdk-types.ts, with its own list of exceptions, SDK_TYPE_PATCHES). Built from npm material only.
// 2. When the fixture is present: Cloudflare's published OpenAPI schema, with SCHEMA_PATCHES (below).
//
// expectMatchesSchema, expectResponseMatches and checkedFetch apply both.
//
// The OpenAPI schema is the live-input subset of `openapi.json` from the cloudflare/api-schemas repository, made by
// `node scripts/extract-stream-schema.mjs` (its `x-source` names the commit). It is read from
// test/fixtures/cloudflare-stream-openapi.json or, failing that, from shared/ beside the repository (see
// FIXTURE_CANDIDATES). It is fetched material and not committed, so without it (as in CI) this layer is skipped with
// one warning and openapi.test.ts reports its OpenAPI tests as skipped; the SDK-type layer still runs.
//
// The published schema is wrong or out of date in places. Every deviation from it is one entry of
// SCHEMA_PATCHES below, with the reason; nothing else is loosened. On top, the check is stricter than the
// schema in one way: objects are closed (a property the schema does not name is an error), so that fields
// Cloudflare does not return (e.g. `defaultCreator`) are caught.
//
// Validation uses @cfworker/json-schema: the tests run inside workerd, where `new Function`/eval is
// refused, so code-generating validators (Ajv) cannot run; this one interprets the schema.

import { Validator, type OutputUnit, type Schema } from "@cfworker/json-schema";
import { expect } from "vitest";
import { errorLines, liveInputTemplateOf, sdkTypeErrors } from "./sdk-types.ts";

type Json = any; // eslint-disable-line @typescript-eslint/no-explicit-any

/** Where the fixture is looked for, relative to this file; the first one present wins. */
const FIXTURE_CANDIDATES = import.meta.glob(
  ["../fixtures/cloudflare-stream-openapi.json", "../../../shared/cloudflare-stream-openapi.json"],
  { eager: true, import: "default" },
) as Record<string, Json>;

const fixtureEntry = Object.entries(FIXTURE_CANDIDATES).sort(([a], [b]) => (a.startsWith("../fixtures/") ? -1 : b.startsWith("../fixtures/") ? 1 : 0))[0];

/** Where the fixture came from (`x-source`), or null when no fixture is present. */
export const FIXTURE_SOURCE: { repository: string; commit: string; date: string; missingPaths: string[] } | null = fixtureEntry
  ? fixtureEntry[1]["x-source"]
  : null;
export const FIXTURE_FILE: string | null = fixtureEntry ? fixtureEntry[0] : null;
export const SCHEMA_CHECKS_AVAILABLE = fixtureEntry !== undefined;

const S = "#/components/schemas/";
const BASE = "/accounts/{account_id}/stream/live_inputs";
const ONE = `${BASE}/{live_input_identifier}`;
const ROTATE = `${ONE}/rotate_keys`;
const INPUT_VIDEOS = `${ONE}/videos`;
const SDK_TYPES = "cloudflare SDK 7.3.0 (2026-10-02, generated from Cloudflare's OpenAPI), resources/stream/live-inputs/live-inputs.d.ts";

interface SchemaPatch {
  id: string;
  /** What is changed, as a path into the fixture. */
  where: string;
  why: string;
  /** Changes the (OpenAPI-form) document in place; false if there was nothing to change. */
  apply(doc: Json): boolean;
}

function schema(doc: Json, name: string): Json {
  const s = doc.components?.schemas?.[name];
  if (!s) throw new Error(`fixture has no components.schemas.${name}`);
  return s;
}

/** Adds a property the 2024 schema lacks; a no-op once a regenerated fixture has it. */
function addProperty(target: string, prop: string, def: Json) {
  return (doc: Json): boolean => {
    const s = schema(doc, target);
    s.properties ??= {};
    if (s.properties[prop]) return false;
    s.properties[prop] = def;
    return true;
  };
}

const STATUS_ENTRY = {
  type: "object",
  required: ["state", "reason", "statusEnteredAt", "statusLastSeen"],
  properties: {
    state: { type: "string" },
    reason: { type: "string", nullable: true },
    statusEnteredAt: { type: "string", format: "date-time" },
    statusLastSeen: { type: "string", format: "date-time" },
  },
};

/**
 * Every place the check departs from the published schema, and why. Applied in order to a copy of the
 * fixture before it is turned into JSON Schema.
 */
export const SCHEMA_PATCHES: readonly SchemaPatch[] = [
  {
    id: "status-object",
    where: `${S}stream_live_input_status`,
    why:
      "Typed as a flat nullable string enum, but GET /live_inputs/:id returns `{current: {state, reason, statusEnteredAt, " +
      "statusLastSeen}, history: [...]}` once the input has connected (null before). The string form is kept as an " +
      "alternative: it is what the SDK types say and what the emulator sends with config statusShape=string.",
    apply(doc) {
      const s = schema(doc, "stream_live_input_status");
      if (s.anyOf) return false;
      const original = { ...s };
      for (const k of Object.keys(s)) delete s[k];
      s.description = original.description;
      s.anyOf = [
        original,
        {
          type: "object",
          required: ["current", "history"],
          properties: { current: STATUS_ENTRY, history: { type: "array", items: STATUS_ENTRY } },
        },
      ];
      return true;
    },
  },
  {
    id: "deleteRecordingAfterDays-nullable",
    where: `${S}stream_live_input_recording_deletion`,
    why:
      "Typed as a non-nullable number (minimum 30), but Cloudflare returns `null` when no deletion is scheduled, and its own " +
      "description says to send `null` to remove one.",
    apply(doc) {
      const s = schema(doc, "stream_live_input_recording_deletion");
      if (s.nullable) return false;
      s.nullable = true;
      return true;
    },
  },
  {
    id: "allowedOrigins-nullable",
    where: `${S}stream_live_input_recording_allowedOrigins`,
    why: "Typed as a non-nullable array, but Cloudflare returns `recording.allowedOrigins: null` when none are set.",
    apply(doc) {
      const s = schema(doc, "stream_live_input_recording_allowedOrigins");
      if (s.nullable) return false;
      s.nullable = true;
      return true;
    },
  },
  {
    id: "error-code-971",
    where: `${S}stream_messages.items.properties.code`,
    why:
      "Error codes have `minimum: 1000`, but Cloudflare's rate-limit answer (429) carries code 971 (\"Please wait and " +
      "consider throttling your request speed\"). Only 971 is let below the minimum.",
    apply(doc) {
      const code = schema(doc, "stream_messages").items?.properties?.code;
      if (!code || code.minimum === undefined) return false;
      code.anyOf = [{ minimum: code.minimum }, { const: 971 }];
      delete code.minimum;
      return true;
    },
  },
  {
    id: "errors-minItems",
    where: `${S}stream_api-response-common-failure.properties.errors`,
    why:
      "Tightening: the failure envelope's `errors` carries `minLength: 1`, which does nothing on an array; it is read as " +
      "the evident `minItems: 1` (a failure names at least one error).",
    apply(doc) {
      const errors = schema(doc, "stream_api-response-common-failure").properties?.errors;
      if (!errors || errors.minLength === undefined) return false;
      errors.minItems = errors.minLength;
      delete errors.minLength;
      return true;
    },
  },
  {
    id: "live-input-enabled",
    where: `${S}stream_live_input.properties.enabled (and stream_live_input_object_without_url)`,
    why:
      `Not in the 2024 schema; Cloudflare added \`enabled\` to live inputs on 2026-02-24 (Stream changelog "live inputs can ` +
      `now be disabled and enabled"); typed boolean in the ${SDK_TYPES}, on the full input and on list items.`,
    apply(doc) {
      const a = addProperty("stream_live_input", "enabled", { type: "boolean", default: true })(doc);
      const b = addProperty("stream_live_input_object_without_url", "enabled", { type: "boolean", default: true })(doc);
      return a || b;
    },
  },
  {
    id: "live-input-preferLowLatency",
    where: `${S}stream_live_input.properties.preferLowLatency`,
    why: `Not in the 2024 schema; a boolean on live inputs in the newer schema (2026-07-27) and the ${SDK_TYPES}.`,
    apply: addProperty("stream_live_input", "preferLowLatency", { type: "boolean" }),
  },
  {
    id: "live-input-keysRotatedAt",
    where: `${S}stream_live_input.properties.keysRotatedAt`,
    why:
      "Not in the 2024 schema; Cloudflare added it with rotate_keys (Stream changelog 2026-07-30: \"omitted for live inputs " +
      `whose keys have never been rotated"); \`string | null\` in the ${SDK_TYPES}.`,
    apply: addProperty("stream_live_input", "keysRotatedAt", { type: "string", format: "date-time", nullable: true }),
  },
  {
    id: "live-input-playback",
    where: `${S}stream_live_input.properties.playback`,
    why:
      "Not in the 2024 schema (nor in the 2026-07-27 one); the " +
      `${SDK_TYPES} has \`playback: {hls: string; dash: string}\`, "the HLS or DASH manifests; URLs reference the live input ID".`,
    apply: addProperty("stream_live_input", "playback", {
      type: "object",
      required: ["hls", "dash"],
      properties: { hls: { type: "string" }, dash: { type: "string" } },
    }),
  },
  {
    id: "recording-hideLiveViewerCount",
    where: `${S}stream_live_input_recording_settings.properties.hideLiveViewerCount`,
    why: `Not in the 2024 schema; \`recording.hideLiveViewerCount?: boolean\` in the ${SDK_TYPES}.`,
    apply: addProperty("stream_live_input_recording_settings", "hideLiveViewerCount", { type: "boolean" }),
  },
  {
    id: "rotate-keys-path",
    where: `paths["${ROTATE}"].post`,
    why:
      "Not in the 2024 schema. Cloudflare added POST .../rotate_keys on 2026-07-30 (Stream changelog \"Rotate Stream broadcast " +
      "keys for live inputs\"); in the 2026-07-27 schema (commit c92b9b0) it answers 200 with stream_live_input_response_single " +
      "and 4XX with stream_api-response-common-failure, like GET .../{live_input_identifier}.",
    apply(doc) {
      if (doc.paths[ROTATE]?.post) return false;
      doc.paths[ROTATE] = {
        post: {
          operationId: "stream-live-inputs-rotate-keys-for-a-live-input",
          responses: {
            "200": { content: { "application/json": { schema: { $ref: `${S}stream_live_input_response_single` } } } },
            "4XX": { content: { "application/json": { schema: { $ref: `${S}stream_api-response-common-failure` } } } },
          },
        },
      };
      return true;
    },
  },
  {
    id: "media-state-live-inprogress",
    where: `${S}stream_media_state.enum`,
    why:
      "The 2024 enum of video states lacks `live-inprogress`, the state of a live input's recording while the broadcast lasts " +
      `(Stream "Record and replay live streams"); the ${SDK_TYPES.replace("live-inputs/live-inputs.d.ts", "stream.d.ts")} lists it in Video.Status.state and the list filter.`,
    apply(doc) {
      const s = schema(doc, "stream_media_state");
      if (!Array.isArray(s.enum) || s.enum.includes("live-inprogress")) return false;
      s.enum = [...s.enum, "live-inprogress"];
      return true;
    },
  },
  {
    id: "live-input-videos-path",
    where: `paths["${INPUT_VIDEOS}"].get`,
    why:
      "Not in the 2024 schema: GET .../live_inputs/:uid/videos lists the recordings of a live input (Stream \"Record and replay " +
      "live streams\"; the cloudflare SDK 7.3 has no method for it). It answers like GET /stream: stream_video_response_collection, " +
      "4XX with stream_api-response-common-failure.",
    apply(doc) {
      if (doc.paths[INPUT_VIDEOS]?.get) return false;
      doc.paths[INPUT_VIDEOS] = {
        get: {
          operationId: "stream-live-inputs-list-videos-of-a-live-input",
          responses: {
            "200": { content: { "application/json": { schema: { $ref: `${S}stream_video_response_collection` } } } },
            "4XX": { content: { "application/json": { schema: { $ref: `${S}stream_api-response-common-failure` } } } },
          },
        },
      };
      return true;
    },
  },
  {
    id: "delete-4xx-envelope",
    where: `paths[*].delete.responses.4XX`,
    why:
      "The DELETE operations give `application/json` with no schema at all. Their failures are checked against the failure " +
      "envelope every other live-input operation names for 4XX. (Their 200 body stays unchecked: the schema says nothing.)",
    apply(doc) {
      let changed = false;
      for (const item of Object.values(doc.paths) as Json[]) {
        const media = item.delete?.responses?.["4XX"]?.content?.["application/json"];
        if (media && !media.schema) {
          media.schema = { $ref: `${S}stream_api-response-common-failure` };
          changed = true;
        }
      }
      return changed;
    },
  },
  {
    id: "5xx-envelope",
    where: "paths[*][*].responses.5XX",
    why:
      "The schema lists only 200 and 4XX; a 5xx from Cloudflare's v4 API comes in the same failure envelope. The emulator " +
      "answers injected 5xx faults that way, and they are checked against it.",
    apply(doc) {
      let changed = false;
      for (const item of Object.values(doc.paths) as Json[]) {
        for (const op of Object.values(item) as Json[]) {
          if (op?.responses && !op.responses["5XX"]) {
            op.responses["5XX"] = { content: { "application/json": { schema: { $ref: `${S}stream_api-response-common-failure` } } } };
            changed = true;
          }
        }
      }
      return changed;
    },
  },
  {
    id: "undocumented-method-failure",
    where: "paths[*].{get,post,put,delete,patch} where the schema has none",
    why:
      "A method the schema does not list on a live-input path (e.g. PATCH /live_inputs) is refused; the refusal is checked " +
      "against the failure envelope (4XX/5XX only: a success for such a method fails the check).",
    apply(doc) {
      let changed = false;
      const failure = { content: { "application/json": { schema: { $ref: `${S}stream_api-response-common-failure` } } } };
      for (const item of Object.values(doc.paths) as Json[]) {
        for (const method of ["get", "post", "put", "delete", "patch"]) {
          if (item[method]) continue;
          item[method] = { "x-emulator-patch": "undocumented-method-failure", responses: { "4XX": failure, "5XX": failure } };
          changed = true;
        }
      }
      return changed;
    },
  },
  {
    id: "output-relay-emulator-only",
    where: `${S}stream_output.properties.relay`,
    why:
      "Emulator-only: every output carries `relay: {state, lastError}` so tests can see what a relay did. Cloudflare has no " +
      "per-output status; production code must not read it (emulator/README.md).",
    apply: addProperty("stream_output", "relay", {
      type: "object",
      required: ["state", "lastError"],
      properties: {
        state: { type: "string", enum: ["idle", "connecting", "active", "error"] },
        lastError: { type: "string", nullable: true },
      },
    }),
  },
];

// ------------------------------------------------------------------ OpenAPI 3.0 → JSON Schema 2020-12

const OPENAPI_ONLY = new Set(["nullable", "example", "readOnly", "writeOnly", "deprecated", "xml", "externalDocs", "discriminator"]);

function toJsonSchema(node: Json): Json {
  if (Array.isArray(node)) return node.map(toJsonSchema);
  if (node === null || typeof node !== "object") return node;
  const out: Json = {};
  for (const [k, v] of Object.entries(node)) {
    if (OPENAPI_ONLY.has(k) || k.startsWith("x-")) continue;
    if (k === "$ref" && typeof v === "string") out.$ref = v.replace(S, "#/$defs/");
    else if (k === "properties") out.properties = Object.fromEntries(Object.entries(v as Json).map(([p, s]) => [p, toJsonSchema(s)]));
    else out[k] = toJsonSchema(v);
  }
  if (node.nullable === true) {
    if (typeof out.type === "string") {
      out.type = [out.type, "null"];
      if (Array.isArray(out.enum) && !out.enum.includes(null)) out.enum = [...out.enum, null];
    } else if (out.type === undefined) {
      return { anyOf: [out, { type: "null" }] };
    }
  }
  return out;
}

/**
 * Closes objects: a schema with `properties` gets `additionalProperties: false`, and one made of `allOf`
 * gets `unevaluatedProperties: false` (so the envelope's parts together name every key). Schemas that are
 * themselves parts of an `allOf` are left open: their siblings add the other keys.
 */
function closeObjects(defs: Record<string, Json>): void {
  const branchNames = new Set<string>();
  const branchNodes = new Set<Json>();
  const collect = (node: Json): void => {
    if (Array.isArray(node)) return node.forEach(collect);
    if (node === null || typeof node !== "object") return;
    if (Array.isArray(node.allOf)) {
      for (const b of node.allOf) {
        if (typeof b?.$ref === "string") branchNames.add(b.$ref.slice("#/$defs/".length));
        else branchNodes.add(b);
      }
    }
    Object.values(node).forEach(collect);
  };
  Object.values(defs).forEach(collect);

  const close = (node: Json, isBranch: boolean): void => {
    if (Array.isArray(node)) return node.forEach((n) => close(n, false));
    if (node === null || typeof node !== "object") return;
    if (!isBranch && !branchNodes.has(node)) {
      if (Array.isArray(node.allOf)) node.unevaluatedProperties ??= false;
      else if (node.properties && node.additionalProperties === undefined) node.additionalProperties = false;
    }
    for (const [k, v] of Object.entries(node)) {
      if (k === "properties") Object.values(v as Json).forEach((s) => close(s, false));
      else if (typeof v === "object") close(v, false);
    }
  };
  for (const [name, def] of Object.entries(defs)) close(def, branchNames.has(name));
}

interface Compiled {
  paths: Json;
  defs: Record<string, Json>;
  applied: string[];
}

function compile(fixture: Json): Compiled {
  const doc = structuredClone(fixture);
  const applied = SCHEMA_PATCHES.filter((p) => p.apply(doc)).map((p) => p.id);
  const defs = Object.fromEntries(Object.entries(doc.components.schemas as Json).map(([k, v]) => [k, toJsonSchema(v)]));
  closeObjects(defs);
  return { paths: doc.paths, defs, applied };
}

const compiled: Compiled | null = fixtureEntry ? compile(fixtureEntry[1]) : null;

/** Ids of the SCHEMA_PATCHES that changed something in this fixture. */
export const APPLIED_PATCHES: readonly string[] = compiled?.applied ?? [];

const validators = new Map<string, Validator | null>();
let warned = false;

/** The OpenAPI path template a request path (with or without the /client/v4 prefix) falls under, or null. */
export function pathTemplateOf(path: string): string | null {
  return liveInputTemplateOf(path);
}

function responseSchema(method: string, template: string, status: number): { ref: string; schema: Json } | null {
  const op = compiled!.paths[template]?.[method.toLowerCase()];
  if (!op) throw new Error(`the schema has no ${method.toUpperCase()} ${template}`);
  const responses = op.responses ?? {};
  const key = [String(status), `${String(status)[0]}XX`, "default"].find((k) => responses[k]);
  if (!key) throw new Error(`the schema has no ${status} response for ${method.toUpperCase()} ${template}`);
  const media = responses[key].content?.["application/json"];
  if (!media?.schema) return null; // documented without a schema: nothing to check
  return { ref: `${method.toUpperCase()} ${template} ${key}`, schema: toJsonSchema(media.schema) };
}

/** The validation errors of `body` as the `status` answer of `method pathTemplate`, or [] when it conforms. */
export function schemaErrors(method: string, pathTemplate: string, status: number, body: unknown): OutputUnit[] {
  if (!compiled) return [];
  const cacheKey = `${method.toUpperCase()} ${pathTemplate} ${status}`;
  let validator = validators.get(cacheKey);
  if (validator === undefined) {
    const found = responseSchema(method, pathTemplate, status);
    validator = found ? new Validator({ ...found.schema, $defs: compiled.defs } as Schema, "2020-12", false) : null;
    validators.set(cacheKey, validator);
  }
  if (!validator) return [];
  const result = validator.validate(body);
  return result.valid ? [] : result.errors;
}

/**
 * Asserts that `body` is what the cloudflare SDK's types (with SDK_TYPE_PATCHES) allow for this answer, and,
 * when the fixture is present, what the published OpenAPI schema (with SCHEMA_PATCHES) allows.
 * `pathTemplate` is an OpenAPI path (`/accounts/{account_id}/stream/live_inputs/{live_input_identifier}`).
 */
export function expectMatchesSchema(method: string, pathTemplate: string, status: number, body: unknown): void {
  const answer = `${method.toUpperCase()} ${pathTemplate} → ${status}`;
  expect(
    errorLines(sdkTypeErrors(method, pathTemplate, status, body)),
    `${answer} does not match the cloudflare SDK's types:\n${JSON.stringify(body, null, 2)}`,
  ).toEqual([]);
  if (!compiled) {
    if (!warned) {
      warned = true;
      console.warn("OpenAPI schema checks skipped: no cloudflare-stream-openapi.json (see test/emulator/openapi.ts); the SDK-type checks run");
    }
    return;
  }
  expect(errorLines(schemaErrors(method, pathTemplate, status, body)), `${answer} does not match Cloudflare's schema:\n${JSON.stringify(body, null, 2)}`).toEqual([]);
}

/** As expectMatchesSchema, for a request URL (or path). Paths outside the live-input API are not checked. */
export function expectResponseMatches(method: string, url: string, status: number, body: unknown): void {
  const template = pathTemplateOf(new URL(url, "http://x").pathname);
  if (template) expectMatchesSchema(method, template, status, body);
}

/**
 * A fetch that checks every JSON answer from the live-input API against the schema (for clients that
 * take a `fetch`, such as the cloudflare SDK). Dropped connections still reject as before.
 */
export const checkedFetch: typeof fetch = async (input, init) => {
  const request = new Request(input, init);
  const method = request.method;
  const url = request.url;
  const res = await fetch(request);
  const text = await res.clone().text();
  if (text && (res.headers.get("content-type") ?? "").includes("json")) expectResponseMatches(method, url, res.status, JSON.parse(text));
  return res;
};
