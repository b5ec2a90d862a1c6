// The schema checks themselves: they accept what Cloudflare returns and reject what it does not, and every
// departure from the published types is a listed patch. The SDK-type check (./sdk-types.ts) always runs; the
// OpenAPI check (./openapi.ts) only with the fixture, which is not committed.
import { beforeEach, describe, expect, it } from "vitest";
import { INPUTS, api, control, createInput, createOutput, reset, type Json } from "./helpers.ts";
import { APPLIED_PATCHES, FIXTURE_SOURCE, SCHEMA_CHECKS_AVAILABLE, SCHEMA_PATCHES, expectMatchesSchema, pathTemplateOf, schemaErrors } from "./openapi.ts";
import { APPLIED_SDK_PATCHES, SDK_SCHEMA_SOURCE, SDK_TYPE_PATCHES, sdkRoute, sdkTypeErrors } from "./sdk-types.ts";

const BASE = "/accounts/{account_id}/stream/live_inputs";
const ONE = `${BASE}/{live_input_identifier}`;
const OUTPUTS = `${ONE}/outputs`;
const OUTPUT = `${OUTPUTS}/{output_identifier}`;

beforeEach(() => reset());

const envelope = (result: unknown): Json => ({ success: true, errors: [], messages: [], result });
const fail = (code: number): Json => ({ success: false, errors: [{ code, message: "m" }], messages: [], result: null });

describe("cloudflare SDK type check (always runs)", () => {
  it("is generated from the installed cloudflare SDK, and every listed patch is still needed", () => {
    expect(SDK_SCHEMA_SOURCE).toMatchObject({ package: "cloudflare", version: expect.stringMatching(/^\d+\.\d+\.\d+/), generator: expect.stringMatching(/^ts-json-schema-generator@/) });
    expect(SDK_SCHEMA_SOURCE.files.flatMap((f) => f.types)).toEqual([
      "LiveInput", "LiveInputListResponse", "Output", "ResponseInfo", "Video", "Watermark", "VideoStorageUsageResponse", "WebhookGetResponse", "WebhookUpdateResponse", "WebhookDeleteResponse",
    ]);
    const ids = SDK_TYPE_PATCHES.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const p of SDK_TYPE_PATCHES) expect(p.why.length, p.id).toBeGreaterThan(40);
    // A patch that changes nothing is obsolete (a newer SDK fixed the type): drop it from the list.
    expect(APPLIED_SDK_PATCHES).toEqual(ids);
  });

  it("maps request paths to the API's templates, without the fixture", () => {
    expect(pathTemplateOf("/client/v4/accounts/a/stream/live_inputs")).toBe(BASE);
    expect(pathTemplateOf("/client/v4/accounts/a/stream/live_inputs/u1")).toBe(ONE);
    expect(pathTemplateOf("/client/v4/accounts/a/stream/live_inputs/u1/outputs")).toBe(OUTPUTS);
    expect(pathTemplateOf("/client/v4/accounts/a/stream/live_inputs/u1/outputs/o1")).toBe(OUTPUT);
    expect(pathTemplateOf("/client/v4/accounts/a/stream/live_inputs/u1/rotate_keys")).toBe(`${ONE}/rotate_keys`);
    expect(pathTemplateOf("/client/v4/accounts/a/stream/live_inputs/u1/videos")).toBe(`${ONE}/videos`);
    expect(pathTemplateOf("/client/v4/accounts/a/stream")).toBe("/accounts/{account_id}/stream");
    expect(pathTemplateOf("/client/v4/accounts/a/stream/webhook")).toBe("/accounts/{account_id}/stream/webhook");
    expect(pathTemplateOf("/client/v4/accounts/a/stream/storage-usage")).toBe("/accounts/{account_id}/stream/storage-usage");
    expect(pathTemplateOf("/client/v4/accounts/a/stream/v1")).toBe("/accounts/{account_id}/stream/{identifier}");
    expect(pathTemplateOf("/client/v4/accounts/a/stream/v1/x/y")).toBeNull();
    expect(pathTemplateOf("/client/v4/accounts/a/nothing")).toBeNull();
    expect(sdkRoute("GET", ONE)?.sdk).toMatch(/liveInputs\.get/);
  });

  it("accepts the emulator's live input; rejects an extra field, a wrong type and a null the SDK type does not allow", async () => {
    const body = (await api("POST", INPUTS, { meta: { a: 1 }, defaultCreator: "creator-1" })).body;
    expect(body.result).not.toHaveProperty("defaultCreator");
    expect(sdkTypeErrors("POST", BASE, 200, body)).toEqual([]);
    const mutated = (change: (r: Json) => void): Json => {
      const copy = structuredClone(body);
      change(copy.result);
      return copy;
    };
    const rejected = (change: (r: Json) => void) => sdkTypeErrors("POST", BASE, 200, mutated(change));
    // Extra fields, at the top, nested, and on the envelope.
    expect(rejected((r) => (r.defaultCreator = "creator-1"))).not.toEqual([]);
    expect(rejected((r) => (r.rtmps.extra = true))).not.toEqual([]);
    expect(rejected((r) => (r.recording.extra = 1))).not.toEqual([]);
    expect(sdkTypeErrors("POST", BASE, 200, { ...body, result_info: {} })).not.toEqual([]);
    // Wrong types.
    expect(rejected((r) => (r.enabled = "yes"))).not.toEqual([]);
    expect(rejected((r) => (r.deleteRecordingAfterDays = "30"))).not.toEqual([]);
    expect(rejected((r) => (r.recording.mode = "sometimes"))).not.toEqual([]);
    expect(rejected((r) => (r.recording.allowedOrigins = [1]))).not.toEqual([]);
    expect(rejected((r) => delete r.playback.hls)).not.toEqual([]); // required in Playback
    // Nulls the SDK type does not allow; and the ones it (or a listed patch) does.
    expect(rejected((r) => (r.uid = null))).not.toEqual([]);
    expect(rejected((r) => (r.rtmps = null))).not.toEqual([]);
    expect(rejected((r) => (r.enabled = null))).not.toEqual([]);
    expect(rejected((r) => (r.created = null))).not.toEqual([]);
    expect(rejected((r) => (r.keysRotatedAt = null))).toEqual([]); // `string | null` in the SDK
    expect(rejected((r) => (r.deleteRecordingAfterDays = null))).toEqual([]); // deleteRecordingAfterDays-nullable
    expect(rejected((r) => (r.recording.allowedOrigins = null))).toEqual([]); // allowedOrigins-nullable
    // The envelope.
    expect(sdkTypeErrors("POST", BASE, 200, { ...body, success: false })).not.toEqual([]);
    expect(sdkTypeErrors("POST", BASE, 200, { ...body, errors: [{ code: 1 }] })).not.toEqual([]);
    expect(sdkTypeErrors("POST", BASE, 200, { ...body, result: null })).not.toEqual([]);
    // And expectMatchesSchema, which every call site uses, fails on it even without the fixture.
    expect(() => expectMatchesSchema("POST", BASE, 200, mutated((r) => (r.defaultCreator = "c")))).toThrow(/cloudflare SDK's types/);
  });

  it("takes status as the object the API returns, null, or the SDK's flat string", async () => {
    const li = await createInput();
    await control("POST", `live_inputs/${li.uid}/connect`);
    const got = (await api("GET", `${INPUTS}/${li.uid}`)).body;
    expect(got.result.status.current.state).toBe("connected");
    expect(sdkTypeErrors("GET", ONE, 200, got)).toEqual([]);
    const withStatus = (status: unknown): Json => ({ ...got, result: { ...got.result, status } });
    expect(sdkTypeErrors("GET", ONE, 200, withStatus("connected"))).toEqual([]);
    expect(sdkTypeErrors("GET", ONE, 200, withStatus("client_disconnect"))).toEqual([]);
    expect(sdkTypeErrors("GET", ONE, 200, withStatus(null))).toEqual([]);
    expect(sdkTypeErrors("GET", ONE, 200, withStatus("weird"))).not.toEqual([]);
    const { statusLastSeen: _, ...partial } = got.result.status.current;
    expect(sdkTypeErrors("GET", ONE, 200, withStatus({ ...got.result.status, current: partial }))).not.toEqual([]);
    expect(sdkTypeErrors("GET", ONE, 200, withStatus({ ...got.result.status, current: { ...got.result.status.current, extra: 1 } }))).not.toEqual([]);
    expect(sdkTypeErrors("GET", ONE, 200, withStatus({ ...got.result.status, history: [{ state: "connected" }] }))).not.toEqual([]);
  });

  it("checks list items as the SDK's LiveInputListResponse.LiveInput, not as a full input", async () => {
    await createInput({ meta: { a: 1 } });
    const list = (await api("GET", INPUTS)).body;
    expect(sdkTypeErrors("GET", BASE, 200, list)).toEqual([]);
    const item = list.result.liveInputs[0];
    const withItem = (i: unknown): Json => ({ ...list, result: { ...list.result, liveInputs: [i] } });
    expect(sdkTypeErrors("GET", BASE, 200, withItem({ ...item, rtmps: { url: "rtmps://x", streamKey: "k" } }))).not.toEqual([]);
    expect(sdkTypeErrors("GET", BASE, 200, withItem({ ...item, deleteRecordingAfterDays: null }))).toEqual([]);
    expect(sdkTypeErrors("GET", BASE, 200, withItem({ ...item, modified: null }))).not.toEqual([]);
    expect(sdkTypeErrors("GET", BASE, 200, { ...list, result: { ...list.result, total: "1" } })).not.toEqual([]);
  });

  it("checks outputs: the emulator-only relay is allowed, nothing else extra", async () => {
    const li = await createInput();
    const out = await createOutput(li.uid, { url: "rtmp://x.example/app", streamKey: "k" });
    expect(sdkTypeErrors("POST", OUTPUTS, 200, envelope(out))).toEqual([]);
    expect(sdkTypeErrors("GET", OUTPUTS, 200, envelope([out]))).toEqual([]);
    expect(sdkTypeErrors("PUT", OUTPUT, 200, envelope(out))).toEqual([]);
    expect(sdkTypeErrors("POST", OUTPUTS, 200, envelope({ ...out, relay: { state: "weird", lastError: null } }))).not.toEqual([]);
    expect(sdkTypeErrors("POST", OUTPUTS, 200, envelope({ ...out, status: "active" }))).not.toEqual([]);
    expect(sdkTypeErrors("POST", OUTPUTS, 200, envelope({ ...out, streamKey: null }))).not.toEqual([]);
    expect(sdkTypeErrors("GET", OUTPUTS, 200, envelope(out))).not.toEqual([]); // a list answers an array
  });

  it("checks rotate_keys as a LiveInput, DELETE results as null, and failures against the envelope", async () => {
    const li = await createInput();
    const rotated = (await api("POST", `${INPUTS}/${li.uid}/rotate_keys`)).body;
    expect(sdkTypeErrors("POST", `${ONE}/rotate_keys`, 200, rotated)).toEqual([]);
    expect(sdkTypeErrors("POST", `${ONE}/rotate_keys`, 200, { ...rotated, result: { ...rotated.result, defaultCreator: "c" } })).not.toEqual([]);
    expect(sdkTypeErrors("DELETE", ONE, 200, envelope(null))).toEqual([]);
    expect(sdkTypeErrors("DELETE", OUTPUT, 200, envelope({}))).not.toEqual([]);
    expect(sdkTypeErrors("GET", BASE, 429, fail(971))).toEqual([]);
    expect(sdkTypeErrors("DELETE", ONE, 404, fail(10003))).toEqual([]);
    expect(sdkTypeErrors("GET", BASE, 503, fail(10002))).toEqual([]);
    expect(sdkTypeErrors("GET", BASE, 400, { success: false, errors: [], messages: [], result: null })).not.toEqual([]);
    expect(sdkTypeErrors("GET", BASE, 400, { ...fail(10005), result: {} })).not.toEqual([]);
    expect(sdkTypeErrors("GET", BASE, 400, { ...fail(10005), errors: [{ code: "10005", message: "m" }] })).not.toEqual([]);
    expect(sdkTypeErrors("DELETE", ONE, 404, { gone: true })).not.toEqual([]);
    // A success for an operation the API does not have, and a status that is neither.
    expect(sdkTypeErrors("PATCH", BASE, 200, envelope(null))).not.toEqual([]);
    expect(sdkTypeErrors("GET", BASE, 302, null)).not.toEqual([]);
  });
});

describe("video answers against both layers", () => {
  const STREAM = "/accounts/{account_id}/stream";
  const VIDEO = `${STREAM}/{identifier}`;
  const streamUrl = INPUTS.replace(/\/live_inputs$/, "");

  async function recordedVideo(): Promise<{ live: Json; ready: Json }> {
    await control("POST", "config", { videoReadyDelaySeconds: 0 });
    const li = await createInput({ recording: { mode: "automatic", timeoutSeconds: 1 }, deleteRecordingAfterDays: 30, defaultCreator: "c-1" });
    await control("POST", `live_inputs/${li.uid}/connect`);
    const live = (await api("GET", `${INPUTS}/${li.uid}/videos`)).body;
    await control("POST", `live_inputs/${li.uid}/disconnect`);
    await control("POST", "clock", { advanceSeconds: 2 });
    const ready = (await api("GET", `${streamUrl}/${live.result[0].uid}`)).body;
    return { live, ready };
  }

  it("accepts live and ready videos, and rejects an extra field, a wrong type or an unknown state in each layer", async () => {
    const { live, ready } = await recordedVideo();
    expect(ready.result.status.state).toBe("ready");
    const layers = [
      (m: string, t: string, b: Json) => sdkTypeErrors(m, t, 200, b),
      ...(SCHEMA_CHECKS_AVAILABLE ? [(m: string, t: string, b: Json) => schemaErrors(m, t, 200, b)] : []),
    ];
    for (const errors of layers) {
      expect(errors("GET", VIDEO, ready)).toEqual([]);
      expect(errors("GET", `${ONE}/videos`, live)).toEqual([]);
      expect(errors("GET", STREAM, { ...live, result: [ready.result] })).toEqual([]);
      expect(errors("GET", VIDEO, { ...ready, result: { ...ready.result, streamId: "x" } })).not.toEqual([]);
      expect(errors("GET", VIDEO, { ...ready, result: { ...ready.result, duration: "9" } })).not.toEqual([]);
      expect(errors("GET", VIDEO, { ...ready, result: { ...ready.result, status: { state: "finished" } } })).not.toEqual([]);
      expect(errors("GET", VIDEO, { ...ready, result: { ...ready.result, playback: { hls: 1 } } })).not.toEqual([]);
      expect(errors("GET", `${ONE}/videos`, { ...live, result: live.result[0] })).not.toEqual([]); // a list answers an array
    }
    // The SDK types creator as a string: null would fail, so a video without one omits it.
    expect(sdkTypeErrors("GET", VIDEO, 200, { ...ready, result: { ...ready.result, creator: null } })).not.toEqual([]);
    expect(sdkTypeErrors("DELETE", VIDEO, 200, envelope(null))).toEqual([]);
    expect(sdkTypeErrors("DELETE", `${STREAM}/webhook`, 200, envelope("ok"))).toEqual([]);
    expect(sdkTypeErrors("GET", `${STREAM}/storage-usage`, 200, envelope({ videoCount: "1" }))).not.toEqual([]);
    expect(sdkTypeErrors("GET", `${STREAM}/webhook`, 200, envelope({ notificationUrl: "https://x", extra: 1 }))).not.toEqual([]);
  });
});

describe.skipIf(!SCHEMA_CHECKS_AVAILABLE)("Cloudflare OpenAPI check (with the fixture)", () => {
  it("names its source and applies only listed patches", () => {
    expect(FIXTURE_SOURCE).toMatchObject({ repository: "cloudflare/api-schemas", commit: expect.stringMatching(/^[0-9a-f]{40}$/), date: expect.any(String) });
    const ids = SCHEMA_PATCHES.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const p of SCHEMA_PATCHES) expect(p.why.length, p.id).toBeGreaterThan(40);
    expect(APPLIED_PATCHES.every((id) => ids.includes(id))).toBe(true);
    expect(APPLIED_PATCHES).toEqual(expect.arrayContaining(["status-object", "deleteRecordingAfterDays-nullable", "allowedOrigins-nullable", "error-code-971", "output-relay-emulator-only", "media-state-live-inprogress", "live-input-videos-path"]));
  });

  it("knows every path the SDK check maps requests to", () => {
    for (const path of [
      "/client/v4/accounts/a/stream/live_inputs",
      "/client/v4/accounts/a/stream/live_inputs/u1/outputs/o1",
      "/client/v4/accounts/a/stream/live_inputs/u1/rotate_keys",
      "/client/v4/accounts/a/stream/live_inputs/u1/videos",
      "/client/v4/accounts/a/stream",
      "/client/v4/accounts/a/stream/v1",
      "/client/v4/accounts/a/stream/webhook",
      "/client/v4/accounts/a/stream/storage-usage",
    ]) {
      expect(schemaErrors("GET", pathTemplateOf(path)!, 404, fail(10003))).toEqual([]);
    }
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
