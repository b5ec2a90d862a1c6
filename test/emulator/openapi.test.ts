// The schema check itself (test/emulator/openapi.ts): it accepts what Cloudflare returns and rejects what
// it does not, and every departure from the published schema is a listed patch.
import { beforeEach, describe, expect, it } from "vitest";
import { INPUTS, api, control, createInput, createOutput, reset, type Json } from "./helpers.ts";
import { APPLIED_PATCHES, FIXTURE_SOURCE, SCHEMA_CHECKS_AVAILABLE, SCHEMA_PATCHES, pathTemplateOf, schemaErrors } from "./openapi.ts";

const BASE = "/accounts/{account_id}/stream/live_inputs";
const ONE = `${BASE}/{live_input_identifier}`;

beforeEach(() => reset());

describe.skipIf(!SCHEMA_CHECKS_AVAILABLE)("Cloudflare OpenAPI check", () => {
  it("names its source and applies only listed patches", () => {
    expect(FIXTURE_SOURCE).toMatchObject({ repository: "cloudflare/api-schemas", commit: expect.stringMatching(/^[0-9a-f]{40}$/), date: expect.any(String) });
    const ids = SCHEMA_PATCHES.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const p of SCHEMA_PATCHES) expect(p.why.length, p.id).toBeGreaterThan(40);
    expect(APPLIED_PATCHES.every((id) => ids.includes(id))).toBe(true);
    expect(APPLIED_PATCHES).toEqual(expect.arrayContaining(["status-object", "deleteRecordingAfterDays-nullable", "allowedOrigins-nullable", "error-code-971", "output-relay-emulator-only"]));
  });

  it("maps request paths to the schema's templates", () => {
    expect(pathTemplateOf("/client/v4/accounts/a/stream/live_inputs")).toBe(BASE);
    expect(pathTemplateOf("/client/v4/accounts/a/stream/live_inputs/u1")).toBe(ONE);
    expect(pathTemplateOf("/client/v4/accounts/a/stream/live_inputs/u1/outputs")).toBe(`${ONE}/outputs`);
    expect(pathTemplateOf("/client/v4/accounts/a/stream/live_inputs/u1/outputs/o1")).toBe(`${ONE}/outputs/{output_identifier}`);
    expect(pathTemplateOf("/client/v4/accounts/a/stream/live_inputs/u1/rotate_keys")).toBe(`${ONE}/rotate_keys`);
    expect(pathTemplateOf("/client/v4/accounts/a/stream/nothing")).toBeNull();
  });

  it("accepts the emulator's live input and rejects fields or types Cloudflare does not have", async () => {
    const body = (await api("POST", INPUTS, { meta: { a: 1 } })).body;
    expect(schemaErrors("POST", BASE, 200, body)).toEqual([]);
    const withExtra = structuredClone(body);
    withExtra.result.defaultCreator = "creator-1";
    expect(schemaErrors("POST", BASE, 200, withExtra)).not.toEqual([]);
    const nestedExtra = structuredClone(body);
    nestedExtra.result.rtmps.extra = true;
    expect(schemaErrors("POST", BASE, 200, nestedExtra)).not.toEqual([]);
    const envelopeExtra = { ...body, result_info: {} , surprise: 1 };
    expect(schemaErrors("POST", BASE, 200, envelopeExtra)).not.toEqual([]);
    const wrongType = structuredClone(body);
    wrongType.result.enabled = "yes";
    expect(schemaErrors("POST", BASE, 200, wrongType)).not.toEqual([]);
    expect(schemaErrors("POST", BASE, 200, { ...body, success: false })).not.toEqual([]);
  });

  it("takes status as the object the API returns, null, or the flat string", async () => {
    const li = await createInput();
    await control("POST", `live_inputs/${li.uid}/connect`);
    const got = (await api("GET", `${INPUTS}/${li.uid}`)).body;
    expect(got.result.status.current.state).toBe("connected");
    expect(schemaErrors("GET", ONE, 200, got)).toEqual([]);
    const flat = structuredClone(got);
    flat.result.status = "connected";
    expect(schemaErrors("GET", ONE, 200, flat)).toEqual([]);
    flat.result.status = null;
    expect(schemaErrors("GET", ONE, 200, flat)).toEqual([]);
    const broken = structuredClone(got);
    delete broken.result.status.current.statusLastSeen;
    expect(schemaErrors("GET", ONE, 200, broken)).not.toEqual([]);
  });

  it("checks error envelopes: 971 is the only code below 1000, errors is never empty", () => {
    const fail = (code: number): Json => ({ success: false, errors: [{ code, message: "m" }], messages: [], result: null });
    expect(schemaErrors("GET", BASE, 429, fail(971))).toEqual([]);
    expect(schemaErrors("GET", BASE, 404, fail(10003))).toEqual([]);
    expect(schemaErrors("GET", BASE, 500, fail(10002))).toEqual([]);
    expect(schemaErrors("GET", BASE, 429, fail(970))).not.toEqual([]);
    expect(schemaErrors("GET", BASE, 400, { success: false, errors: [], messages: [], result: null })).not.toEqual([]);
    expect(schemaErrors("GET", BASE, 400, { ...fail(10005), result: {} })).not.toEqual([]);
    expect(schemaErrors("DELETE", ONE, 404, fail(10003))).toEqual([]);
    expect(schemaErrors("DELETE", ONE, 404, { gone: true })).not.toEqual([]);
  });

  it("allows the emulator-only relay on outputs and nothing else extra", async () => {
    const li = await createInput();
    const out = await createOutput(li.uid, { url: "rtmp://x.example/app", streamKey: "k" });
    const body = { success: true, errors: [], messages: [], result: out };
    expect(schemaErrors("POST", `${ONE}/outputs`, 200, body)).toEqual([]);
    expect(schemaErrors("POST", `${ONE}/outputs`, 200, { ...body, result: { ...out, relay: { state: "weird", lastError: null } } })).not.toEqual([]);
    expect(schemaErrors("POST", `${ONE}/outputs`, 200, { ...body, result: { ...out, status: "active" } })).not.toEqual([]);
  });
});
