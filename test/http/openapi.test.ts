import { SELF } from "cloudflare:test";
import { Validator, type Schema } from "@cfworker/json-schema";
import { describe, expect, it } from "vitest";
import { router } from "../../src/http/router";
import { AppMessage, DeviceMessage } from "../../src/schemas/protocol";
import { call, registerApp, startStream, type Json } from "../helpers";

/**
 * /openapi.json and /asyncapi.json as the Worker serves them: every route the router has is in the spec
 * and nothing else is, every reference resolves, and real answers validate against it. (The full
 * OpenAPI 3.1 / AsyncAPI 3.0 meta-schema validation needs Ajv, which workerd cannot run: it is in
 * test/e2e/openapi.test.mjs, and every e2e exchange is validated by test/e2e/spec-check.mjs.)
 */

const base = "http://coordinator.test";
const getJson = async (path: string): Promise<Json> => {
  const res = await SELF.fetch(base + path);
  expect(res.status, path).toBe(200);
  expect(res.headers.get("content-type")).toContain("application/json");
  return res.json();
};

/** Every `$ref` in the document, with the JSON pointer it names. */
function refsOf(value: unknown, found: string[] = []): string[] {
  if (Array.isArray(value)) for (const v of value) refsOf(v, found);
  else if (value && typeof value === "object") {
    for (const [key, v] of Object.entries(value)) key === "$ref" && typeof v === "string" ? found.push(v) : refsOf(v, found);
  }
  return found;
}
const resolve = (doc: Json, ref: string): unknown =>
  ref
    .replace(/^#\//, "")
    .split("/")
    .reduce((node: Json, part) => node?.[part.replace(/~1/g, "/").replace(/~0/g, "~")], doc);

describe("GET /openapi.json", () => {
  it("is an OpenAPI 3.1 document listing exactly the router's routes", async () => {
    const doc = await getJson("/openapi.json");
    expect(doc.openapi).toMatch(/^3\.1\./);
    const routed = router.routes
      .map(([method, , , path]) => `${method} ${path}`)
      .filter((route) => !route.startsWith("ALL "))
      .map((route) => route.replace(/:(\w+)/g, "{$1}"))
      .sort();
    const documented = Object.entries(doc.paths as Record<string, Record<string, unknown>>)
      .flatMap(([path, ops]) => Object.keys(ops).map((method) => `${method.toUpperCase()} ${path}`))
      .sort();
    expect(documented).toEqual(routed);
  });

  it("has no dangling $ref; every operation documents its errors as {error, message}", async () => {
    const doc = await getJson("/openapi.json");
    for (const ref of refsOf(doc)) expect(resolve(doc, ref), ref).toBeDefined();
    for (const [path, ops] of Object.entries(doc.paths as Record<string, Record<string, Json>>)) {
      for (const [method, op] of Object.entries(ops)) {
        expect(op.operationId, `${method} ${path}`).toBeTruthy();
        const statuses = Object.keys(op.responses);
        expect(statuses, `${method} ${path}`).toContain("500");
        for (const status of statuses.filter((s) => Number(s) >= 400)) {
          const schema = op.responses[status].content["application/json"].schema;
          expect(schema.required, `${method} ${path} ${status}`).toEqual(["error", "message"]);
          expect(schema.properties.error.enum.length, `${method} ${path} ${status}`).toBeGreaterThan(0);
        }
      }
    }
  });

  it("real answers validate against it: a registered app, a started stream, an error", async () => {
    const doc = await getJson("/openapi.json");
    const check = (path: string, method: string, status: number, body: unknown) => {
      const schema = doc.paths[path][method].responses[String(status)].content["application/json"].schema as Schema;
      // The document is the schema's root, so `#/components/schemas/…` resolves inside it.
      const result = new Validator({ ...doc, ...schema } as Schema, "2020-12", false).validate(body);
      expect(result.errors, `${method} ${path} ${status}: ${JSON.stringify(body)}`).toEqual([]);
    };
    const app = await registerApp();
    const stream = await startStream(app);
    check("/api/streams", "post", 201, stream);
    const snapshot = await call("GET", `/api/streams/${stream.streamId}`, undefined, app.headers);
    check("/api/streams/{streamId}", "get", 200, snapshot.body);
    const refused = await call("GET", `/api/streams/${stream.streamId}`);
    check("/api/streams/{streamId}", "get", 401, refused.body);
    const outputs = await call("GET", `/api/streams/${stream.streamId}/outputs`, undefined, app.headers);
    check("/api/streams/{streamId}/outputs", "get", 200, outputs.body);
  });

  it("links the socket messages' AsyncAPI document", async () => {
    // (The /docs/ page is a static asset, which SELF does not serve: test/e2e/openapi.test.mjs checks it.)
    const doc = await getJson("/openapi.json");
    expect(doc.externalDocs.url).toBe("/asyncapi.json");
  });
});

describe("GET /asyncapi.json", () => {
  it("is an AsyncAPI 3.0 document with every message both roles send and receive", async () => {
    const doc = await getJson("/asyncapi.json");
    expect(doc.asyncapi).toBe("3.0.0");
    for (const ref of refsOf(doc)) expect(resolve(doc, ref), ref).toBeDefined();
    const typesOf = (operation: string) =>
      (doc.operations[operation].messages as { $ref: string }[]).map((m) => (resolve(doc, m.$ref) as Json).$ref).map((r: string) => (resolve(doc, r) as Json).name);
    const inbound = (union: typeof AppMessage | typeof DeviceMessage) => union.options.map((o) => o.shape.type.value);
    expect(typesOf("receiveApp")).toEqual([...inbound(AppMessage), "ping"]);
    expect(typesOf("receiveDevice")).toEqual([...inbound(DeviceMessage), "ping"]);
    expect(typesOf("sendApp")).toEqual(["managed_stream_status", "stream_status_check_response", "realtime_tracks", "error", "pong"]);
    expect(typesOf("sendDevice")).toEqual(["start_rtmp_stream", "keep_rtmp_stream_alive", "stop_rtmp_stream", "error", "pong"]);
  });
});
