import { beforeEach, describe, expect, it } from "vitest";
import { BASE, INPUTS, api, control, createInput, createOutput, reset, state } from "./helpers.ts";
import { expectMatchesSchema } from "./openapi.ts";

const HEX32 = /^[0-9a-f]{32}$/;

beforeEach(() => reset());

describe("live inputs", () => {
  it("creates with defaults and full credentials", async () => {
    const r = await api("POST", INPUTS);
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ success: true, errors: [], messages: [] });
    const li = r.body.result;
    expect(li.uid).toMatch(HEX32);
    expect(li.rtmps).toEqual({ url: "rtmp://127.0.0.1:1935/live/", streamKey: expect.stringMatching(/^[0-9a-f]{32}k[0-9a-f]{32}$/) });
    expect(li.rtmpsPlayback.url).toBe("rtmp://127.0.0.1:1935/live/");
    expect(li.rtmpsPlayback.streamKey).not.toBe(li.rtmps.streamKey);
    expect(li.srt).toEqual({ url: "srt://127.0.0.1:8890", streamId: expect.any(String), passphrase: expect.any(String) });
    expect(li.srtPlayback).toEqual({ url: "srt://127.0.0.1:8890", streamId: expect.any(String), passphrase: expect.any(String) });
    // WHIP publishes to a secret; WHEP, HLS and DASH play by the input uid (Stream WebRTC / watch docs).
    // The customer host's stand-in is <emulator>/playback, as npm start's STREAM_PLAYBACK_BASE_URL.
    expect(li.webRTC.url).toMatch(/^http:\/\/127\.0\.0\.1:8788\/playback\/[0-9a-f]{32}k[0-9a-f]{32}\/webRTC\/publish$/);
    expect(li.webRTC.url).not.toContain(li.uid);
    expect(li.webRTCPlayback.url).toBe(`http://127.0.0.1:8788/playback/${li.uid}/webRTC/play`);
    expect(li.playback).toEqual({
      hls: `http://127.0.0.1:8788/playback/${li.uid}/manifest/video.m3u8`,
      dash: `http://127.0.0.1:8788/playback/${li.uid}/manifest/video.mpd`,
    });
    expect(li).not.toHaveProperty("keysRotatedAt");
    expect(li.recording).toEqual({ mode: "off", timeoutSeconds: 0, requireSignedURLs: false, allowedOrigins: null, hideLiveViewerCount: false });
    expect(li).toMatchObject({ meta: {}, enabled: true, preferLowLatency: false, deleteRecordingAfterDays: null, status: null });
    expect(Date.parse(li.created)).not.toBeNaN();
    expect(li.modified).toBe(li.created);
  });

  it("creates with every field and reads it back", async () => {
    const body = {
      meta: { name: "s1", user: { id: 7 } },
      recording: { mode: "automatic", timeoutSeconds: 30, requireSignedURLs: true, allowedOrigins: ["https://a.example"], hideLiveViewerCount: true },
      deleteRecordingAfterDays: 45,
      enabled: false,
      preferLowLatency: true,
      defaultCreator: "creator-1",
    };
    const li = await createInput(body);
    const { defaultCreator, ...returned } = body;
    expect(li).toMatchObject(returned);
    // Accepted, but not part of Cloudflare's live input, so not echoed.
    expect(defaultCreator).toBe("creator-1");
    expect(li).not.toHaveProperty("defaultCreator");
    const got = await api("GET", `${INPUTS}/${li.uid}`);
    expect(got.status).toBe(200);
    expect(got.body.result).toEqual(li);
  });

  it("lists without credentials or status", async () => {
    const a = await createInput({ meta: { n: 1 } });
    const b = await createInput({ meta: { n: 2 }, deleteRecordingAfterDays: 30 });
    const r = await api("GET", INPUTS);
    expect(r.status).toBe(200);
    expect(r.body.result.total).toBe(2);
    expect(r.body.result.range).toBe(2);
    expect(r.body.result.liveInputs).toEqual([
      { uid: a.uid, created: a.created, modified: a.modified, meta: { n: 1 }, enabled: true, deleteRecordingAfterDays: null },
      { uid: b.uid, created: b.created, modified: b.modified, meta: { n: 2 }, enabled: true, deleteRecordingAfterDays: 30 },
    ]);
  });

  it("updates fields, merging recording", async () => {
    const li = await createInput({ meta: { a: 1 }, recording: { mode: "automatic", timeoutSeconds: 10 } });
    await new Promise((r) => setTimeout(r, 5));
    const r = await api("PUT", `${INPUTS}/${li.uid}`, {
      meta: { b: 2 },
      recording: { requireSignedURLs: true },
      deleteRecordingAfterDays: 1096,
      preferLowLatency: true,
      enabled: false,
    });
    expect(r.status).toBe(200);
    expect(r.body.result).toMatchObject({
      uid: li.uid,
      meta: { b: 2 },
      recording: { mode: "automatic", timeoutSeconds: 10, requireSignedURLs: true },
      deleteRecordingAfterDays: 1096,
      preferLowLatency: true,
      enabled: false,
      created: li.created,
    });
    expect(r.body.result.modified > li.modified).toBe(true);
    expect(r.body.result.rtmps).toEqual(li.rtmps);
    const cleared = await api("PUT", `${INPUTS}/${li.uid}`, { deleteRecordingAfterDays: null });
    expect(cleared.body.result.deleteRecordingAfterDays).toBeNull();
  });

  it("deletes an input and its outputs", async () => {
    const li = await createInput();
    await createOutput(li.uid, { url: "rtmp://x.example/app", streamKey: "k" });
    const d = await api("DELETE", `${INPUTS}/${li.uid}`);
    expect(d.status).toBe(200);
    expect(d.body).toMatchObject({ success: true, result: null });
    expect((await api("GET", `${INPUTS}/${li.uid}`)).status).toBe(404);
    expect((await api("GET", `${INPUTS}/${li.uid}/outputs`)).status).toBe(404);
    expect((await state()).inputs).toEqual([]);
    expect((await api("DELETE", `${INPUTS}/${li.uid}`)).status).toBe(404);
  });

  it("rotates keys: new RTMPS key, SRT passphrase and WebRTC secret, the rest unchanged", async () => {
    const li = await createInput({ meta: { n: 1 } });
    await new Promise((r) => setTimeout(r, 5));
    const r = await api("POST", `${INPUTS}/${li.uid}/rotate_keys`);
    expect(r.status).toBe(200);
    const rotated = r.body.result;
    expect(rotated.uid).toBe(li.uid);
    expect(rotated.rtmps.url).toBe(li.rtmps.url);
    expect(rotated.rtmps.streamKey).toMatch(/^[0-9a-f]{32}k[0-9a-f]{32}$/);
    expect(rotated.rtmps.streamKey).not.toBe(li.rtmps.streamKey);
    expect(rotated.srt.streamId).toBe(li.srt.streamId);
    expect(rotated.srt.passphrase).not.toBe(li.srt.passphrase);
    expect(rotated.webRTC.url).not.toBe(li.webRTC.url);
    expect(rotated.webRTC.url).toMatch(/\/webRTC\/publish$/);
    // Playback is addressed by uid and its credentials are not broadcast keys: unchanged.
    expect(rotated.webRTCPlayback).toEqual(li.webRTCPlayback);
    expect(rotated.playback).toEqual(li.playback);
    expect(rotated.rtmpsPlayback).toEqual(li.rtmpsPlayback);
    expect(rotated.srtPlayback).toEqual(li.srtPlayback);
    expect(rotated.meta).toEqual({ n: 1 });
    expect(rotated.created).toBe(li.created);
    expect(Date.parse(rotated.keysRotatedAt)).not.toBeNaN();
    expect(rotated.modified).toBe(rotated.keysRotatedAt);
    expect((await api("GET", `${INPUTS}/${li.uid}`)).body.result).toEqual(rotated);
    expect((await api("POST", `${INPUTS}/${"0".repeat(32)}/rotate_keys`)).status).toBe(404);
    expect((await api("GET", `${INPUTS}/${li.uid}/rotate_keys`)).status).toBe(405);
  });

  it("rotating keys ends a broadcast on the old key, which then no longer connects", async () => {
    await control("POST", "config", { webhookUrl: "http://hook.test/x", webhookSecret: "s" });
    const li = await createInput();
    await control("POST", `live_inputs/${li.uid}/connect`);
    const rotated = (await api("POST", `${INPUTS}/${li.uid}/rotate_keys`)).body.result;
    expect(rotated.status.current).toMatchObject({ state: "disconnected" });
    expect((await state()).inputs[0].connected).toBe(false);
    const events = (await control("GET", "webhooks")).body.deliveries.map((d: { event: string }) => d.event);
    expect(events).toEqual(["live_input.connected", "live_input.disconnected"]);
  });

  it("honours Idempotency-Key", async () => {
    const a = await api("POST", INPUTS, { meta: { a: 1 } }, { "Idempotency-Key": "key-1" });
    const b = await api("POST", INPUTS, { meta: { a: 2 } }, { "Idempotency-Key": "key-1" });
    expect(b.status).toBe(200);
    expect(b.body.result.uid).toBe(a.body.result.uid);
    expect(b.body.result.meta).toEqual({ a: 1 });
    expect((await api("GET", INPUTS)).body.result.total).toBe(1);
    await api("DELETE", `${INPUTS}/${a.body.result.uid}`);
    const c = await api("POST", INPUTS, {}, { "Idempotency-Key": "key-1" });
    expect(c.status).toBe(409);
    expect(c.body.errors[0].code).toBe(10014);
  });
});

describe("errors", () => {
  it("403 10000 for a wrong, missing or non-bearer token and a foreign account", async () => {
    const variants: Record<string, string>[] = [{ authorization: "Bearer nope" }, {}, { authorization: "local-dev-token" }];
    for (const headers of variants) {
      const res = await fetch(INPUTS, { headers });
      expect(res.status).toBe(403);
      const body = await res.json();
      expect(body).toEqual({ success: false, errors: [{ code: 10000, message: "Authentication error" }], messages: [], result: null });
      expectMatchesSchema("GET", "/accounts/{account_id}/stream/live_inputs", 403, body);
    }
    const foreign = await api("GET", `${BASE}/client/v4/accounts/other/stream/live_inputs`);
    expect(foreign.status).toBe(403);
    expect(foreign.body.errors[0].code).toBe(10000);
  });

  it("404 for unknown inputs, outputs and routes", async () => {
    const missing = await api("GET", `${INPUTS}/${"0".repeat(32)}`);
    expect(missing.status).toBe(404);
    expect(missing.body.errors[0].code).toBe(10003);
    const li = await createInput();
    const out = await api("PUT", `${INPUTS}/${li.uid}/outputs/${"0".repeat(32)}`, { enabled: true });
    expect(out.status).toBe(404);
    expect(out.body.errors[0].code).toBe(10003);
    const route = await api("GET", `${BASE}/client/v4/accounts/local-account/nothing`);
    expect(route.status).toBe(404);
    expect(route.body.errors[0].code).toBe(7003);
    // Under /stream, one segment is a video uid (GET /stream/:uid): an unknown one is a missing video.
    const video = await api("GET", `${BASE}/client/v4/accounts/local-account/stream/nothing`);
    expect(video.status).toBe(404);
    expect(video.body.errors[0].code).toBe(10003);
    const deeper = await api("GET", `${BASE}/client/v4/accounts/local-account/stream/a/b/c`, undefined, {}, { unchecked: true });
    expect(deeper.status).toBe(404);
    expect(deeper.body.errors[0].code).toBe(7003);
    const ctl = await control("GET", "nothing");
    expect(ctl.status).toBe(404);
    const method = await api("PATCH", INPUTS, {});
    expect(method.status).toBe(405);
  });

  it("400 naming the field", async () => {
    const cases: [unknown, string][] = [
      [{ deleteRecordingAfterDays: 29 }, "deleteRecordingAfterDays"],
      [{ deleteRecordingAfterDays: 1097 }, "deleteRecordingAfterDays"],
      [{ recording: { mode: "sometimes" } }, "recording.mode"],
      [{ recording: { timeoutSeconds: -1 } }, "recording.timeoutSeconds"],
      [{ recording: { allowedOrigins: "x" } }, "recording.allowedOrigins"],
      [{ enabled: "yes" }, "enabled"],
      [{ meta: 3 }, "meta"],
      [{ preferLowLatency: 1 }, "preferLowLatency"],
    ];
    for (const [body, field] of cases) {
      const r = await api("POST", INPUTS, body);
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.body.success).toBe(false);
      expect(r.body.errors[0].code).toBe(10005);
      expect(r.body.errors[0].message).toContain(field);
    }
    const malformed = await api("POST", INPUTS, "{not json");
    expect(malformed.status).toBe(400);
    expect(malformed.body.errors[0].message).toMatch(/JSON/);
    expect((await api("GET", INPUTS)).body.result.total).toBe(0);
  });

  it("enforces the live input limit", async () => {
    await control("POST", "config", { maxLiveInputs: 2 });
    await createInput();
    await createInput();
    const r = await api("POST", INPUTS, {});
    expect(r.status).toBe(400);
    expect(r.body.errors[0].code).toBe(10006);
    expect(r.body.errors[0].message).toMatch(/limit/i);
  });

  it("rate limits with 429, retry-after and a block", async () => {
    await control("POST", "config", { rateLimitRequests: 3, rateLimitWindowSeconds: 60, rateLimitBlockSeconds: 30 });
    for (let i = 0; i < 3; i++) expect((await api("GET", INPUTS)).status).toBe(200);
    // control calls never count
    await control("GET", "state");
    const limited = await api("GET", INPUTS);
    expect(limited.status).toBe(429);
    expect(limited.body.errors).toEqual([{ code: 971, message: "Please wait and consider throttling your request speed" }]);
    const retryAfter = Number(limited.headers.get("retry-after"));
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(30);
    // every call is blocked, including writes
    expect((await api("POST", INPUTS, {})).status).toBe(429);
    const rl = (await state()).rateLimit;
    expect(rl).toMatchObject({ requests: 3, windowSeconds: 60, used: 3 });
    expect(rl.blockedUntil).not.toBeNull();
    await reset();
    expect((await api("GET", INPUTS)).status).toBe(200);
  });
});

describe("outputs", () => {
  it("CRUD with the emulator-only relay field", async () => {
    const li = await createInput();
    const o = await createOutput(li.uid, { url: "rtmp://a.rtmp.youtube.com/live2", streamKey: "yt-key" });
    expect(o).toEqual({
      uid: expect.stringMatching(HEX32),
      url: "rtmp://a.rtmp.youtube.com/live2",
      streamKey: "yt-key",
      enabled: true,
      relay: { state: "idle", lastError: null },
    });
    const o2 = await createOutput(li.uid, { url: "srt://srt.example:9000", streamKey: "", enabled: false });
    expect(o2.enabled).toBe(false);
    const list = await api("GET", `${INPUTS}/${li.uid}/outputs`);
    expect(list.status).toBe(200);
    expect(list.body.result).toEqual([o, o2]);
    const upd = await api("PUT", `${INPUTS}/${li.uid}/outputs/${o.uid}`, { enabled: false });
    expect(upd.status).toBe(200);
    expect(upd.body.result).toMatchObject({ uid: o.uid, enabled: false });
    const del = await api("DELETE", `${INPUTS}/${li.uid}/outputs/${o.uid}`);
    expect(del.status).toBe(200);
    expect((await api("GET", `${INPUTS}/${li.uid}/outputs`)).body.result).toEqual([o2]);
    // an output is addressed through its own input only
    const other = await createInput();
    expect((await api("DELETE", `${INPUTS}/${other.uid}/outputs/${o2.uid}`)).status).toBe(404);
  });

  it("validates url scheme, streamKey, enabled and the 10-output cap", async () => {
    const li = await createInput();
    const bad = [
      [{ url: "http://x.example/live", streamKey: "k" }, "url"],
      [{ url: "not a url", streamKey: "k" }, "url"],
      [{ streamKey: "k" }, "url"],
      [{ url: "rtmp://x/app" }, "streamKey"],
      [{ url: "rtmps://x/app", streamKey: "k", enabled: "no" }, "enabled"],
    ] as const;
    for (const [body, field] of bad) {
      const r = await api("POST", `${INPUTS}/${li.uid}/outputs`, body);
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.body.errors[0].message).toContain(field);
    }
    const o = await createOutput(li.uid, { url: "rtmps://x/app", streamKey: "k" });
    expect((await api("PUT", `${INPUTS}/${li.uid}/outputs/${o.uid}`, {})).status).toBe(400);
    for (let i = 1; i < 10; i++) await createOutput(li.uid, { url: `rtmp://x/app${i}`, streamKey: "k" });
    const over = await api("POST", `${INPUTS}/${li.uid}/outputs`, { url: "rtmp://x/app11", streamKey: "k" });
    expect(over.status).toBe(400);
    expect(over.body.errors[0].code).toBe(10006);
    expect(over.body.errors[0].message).toMatch(/10 outputs/);
    expect((await api("POST", `${INPUTS}/${li.uid}/outputs`, { url: "rtmp://x/y", streamKey: "k" })).status).toBe(400);
    expect((await api("GET", `${INPUTS}/${li.uid}/outputs`)).body.result).toHaveLength(10);
  });
});
