// The API's descriptions as the `npm start` stack serves them: /openapi.json is a valid OpenAPI 3.1
// document (@seriousme/openapi-schema-validator), /asyncapi.json a valid AsyncAPI 3.0 one (its official
// JSON Schema, @asyncapi/specs), the reference page at /docs/ comes from this origin alone (no CDN), and
// the exchange checker that every e2e test goes through (spec-check.mjs) does catch a drift.
import assert from "node:assert/strict";
import { createRequire } from "node:module";
import { after, before, describe, test } from "node:test";
import Ajv07 from "ajv";
import addFormats from "ajv-formats";
import { Validator } from "@seriousme/openapi-schema-validator";
import { admin, http, startStack, unique } from "./stack.mjs";
import { checkExchange, socketCheck, SpecViolation } from "./spec-check.mjs";

const require = createRequire(import.meta.url);

let stack;
before(async () => {
  stack = await startStack();
});
after(async () => {
  await stack?.stop();
});

const coord = (path) => `${stack.coordinator}${path}`;

describe("the served API descriptions", () => {
  test("GET /openapi.json validates as OpenAPI 3.1", async () => {
    const res = await http("GET", coord("/openapi.json"));
    assert.equal(res.status, 200);
    const validator = new Validator();
    const result = await validator.validate(res.body);
    assert.equal(validator.version, "3.1");
    assert.ok(result.valid, `not valid OpenAPI 3.1: ${JSON.stringify(result.errors, null, 1)?.slice(0, 3_000)}`);
    const head = await http("HEAD", coord("/openapi.json"));
    assert.equal(head.status, 200);
  });

  test("GET /asyncapi.json validates as AsyncAPI 3.0", async () => {
    const res = await http("GET", coord("/asyncapi.json"));
    assert.equal(res.status, 200);
    // The bundled AsyncAPI schema carries its own copy of the draft-07 meta-schema: Ajv must not add one.
    const ajv = new Ajv07({ strict: false, allErrors: true, meta: false, validateSchema: false });
    addFormats(ajv);
    const validate = ajv.compile(require("@asyncapi/specs").schemas["3.0.0"]);
    assert.ok(validate(res.body), `not valid AsyncAPI 3.0: ${JSON.stringify(validate.errors?.slice(0, 5), null, 1)}`);
  });

  test("/docs/ is the reference page, served from this origin only", async () => {
    const bare = await fetch(coord("/docs"), { redirect: "manual" });
    assert.ok([301, 307, 308].includes(bare.status), `GET /docs: ${bare.status}`);
    assert.match(bare.headers.get("location") ?? "", /\/docs\/$/);
    const page = await fetch(coord("/docs/"));
    assert.equal(page.status, 200);
    assert.match(page.headers.get("content-type") ?? "", /text\/html/);
    const html = await page.text();
    assert.match(html, /swagger-ui/);
    assert.doesNotMatch(html, /(src|href)="(https?:)?\/\//, "the page must load nothing from another origin");
    const assets = [...html.matchAll(/(?:src|href)="([^"#]+)"/g)].map((m) => new URL(m[1], coord("/docs/")).href);
    assert.ok(assets.some((a) => a.endsWith("swagger-ui-bundle.js")));
    for (const asset of assets) {
      const res = await fetch(asset);
      assert.equal(res.status, 200, asset);
      const body = await res.text();
      if (asset.endsWith("docs.js")) assert.match(body, /validatorUrl: null/, "Swagger UI must not send the spec to an online validator");
    }
  });
});

describe("the exchange checker catches drift (spec-check.mjs)", () => {
  const exchange = (overrides) => ({
    method: "GET",
    url: coord("/api/streams/abcdefghijklmnopqrstu"),
    headers: {},
    status: 200,
    responseHeaders: new Headers({ "content-type": "application/json" }),
    responseBody: null,
    ...overrides,
  });

  test("an answer missing a field, an undocumented status, an unlisted error code", async () => {
    const snapshot = (await http("GET", coord("/openapi.json"))).body.components.schemas.StreamSnapshot;
    assert.ok(snapshot.required.includes("state"));
    await assert.rejects(checkExchange(exchange({ responseBody: { streamId: "abcdefghijklmnopqrstu", status: "active" } })), SpecViolation);
    await assert.rejects(checkExchange(exchange({ status: 418, responseBody: { error: "TEAPOT", message: "" } })), /418 is not documented/);
    await assert.rejects(checkExchange(exchange({ status: 404, responseBody: { error: "APP_NOT_FOUND", message: "x" } })), /allowed values/);
    await assert.rejects(checkExchange(exchange({ status: 503, responseBody: { error: "SERVICE_UNAVAILABLE", message: "x" } })), /Retry-After is missing/);
  });

  test("a success for a request the spec forbids, and a refusal of one it allows", async () => {
    const url = coord("/api/admin/apps");
    const body = JSON.stringify({ packageName: "x" }); // too short for PackageName
    const answer = { packageName: "x", apiKey: `sc_${"a".repeat(40)}` };
    await assert.rejects(checkExchange(exchange({ method: "POST", url, body, status: 201, responseBody: answer })), /accepted a request the spec forbids/);
    const valid = JSON.stringify({ packageName: unique("com.spec.check.") });
    await assert.rejects(
      checkExchange(exchange({ method: "POST", url, body: valid, status: 400, responseBody: { error: "INVALID_REQUEST", message: "x" } })),
      /the spec allows this request/,
    );
    // The real thing passes (http() checks it).
    const res = await http("POST", url, { body: { packageName: unique("com.spec.check.") }, headers: admin });
    assert.equal(res.status, 201);
  });

  test("a socket frame that matches no message, or a refusal of a frame the spec allows", async () => {
    const ws = coord("/api/streams/abcdefghijklmnopqrstu/ws").replace(/^http/, "ws");
    const wrong = socketCheck(ws, { "x-api-key": "k", "x-package-name": "p" });
    wrong.received({ type: "managed_stream_status", status: "active", streamId: "s", message: "m", outputs: [], timestamp: "now" });
    const refused = socketCheck(ws, { "x-api-key": "k", "x-package-name": "p" });
    refused.sent({ type: "stream_status_check" });
    refused.received({ type: "error", error: "INVALID_MESSAGE", message: "no" });
    const fine = socketCheck(ws, { authorization: "Bearer t" });
    fine.sent("not json");
    fine.received({ type: "error", error: "INVALID_JSON", message: "Message is not valid JSON" });
    fine.received({ type: "keep_rtmp_stream_alive", streamId: "s", ackId: "a" });
    await new Promise((resolve) => setTimeout(resolve, 200)); // the checks run once the spec is loaded
    assert.match(String(wrong.violation()), /managed_stream_status/);
    assert.match(String(refused.violation()), /refused \(INVALID_MESSAGE/);
    assert.equal(fine.violation(), null);
  });
});
