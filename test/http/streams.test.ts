import { beforeEach, describe, expect, it } from "vitest";
import { env } from "cloudflare:test";
import { streamIdForInput } from "../../src/cloudflare/live-input-index";
import { ADMIN, call, cloudflareDirect, deviceToken, emulatorInputs, expireTimer, grantedHeaders, inputFor, newUserId, postStream, registerApp, resetEmulator, startStream, streamTimers } from "../helpers";

beforeEach(resetEmulator);

describe("POST /api/streams", () => {
  it("creates a stream with one live input marked as ours, and returns playback URLs only", async () => {
    const app = await registerApp();
    const res = await postStream(app, { userId: newUserId() });
    expect(res.status).toBe(201);
    const s = res.body;
    expect(s.streamId).toMatch(/^[A-Za-z0-9_-]{21}$/);
    expect(s.status).toBe("preparing");
    expect(s.created).toBe(true);
    const input = await inputFor(s.streamId);
    expect(input).toBeDefined();
    expect(input.meta).toMatchObject({ managedBy: "stream-coordinator", streamId: s.streamId });
    // Seed 000 recording defaults.
    expect(input.recording).toMatchObject({ mode: "automatic", timeoutSeconds: 30 });
    expect(input.deleteRecordingAfterDays).toBe(30);
    const root = `https://customer-testcode.cloudflarestream.com/${input.uid}`;
    expect(s).toMatchObject({
      hlsUrl: `${root}/manifest/video.m3u8`,
      dashUrl: `${root}/manifest/video.mpd`,
      // WHEP plays only WHIP ingest; this stream's glasses push RTMP(S) (the default ingest).
      webrtcUrl: null,
      previewUrl: `${root}/iframe`,
      thumbnailUrl: `${root}/thumbnails/thumbnail.jpg`,
    });
    // Ingest credentials never reach apps.
    const text = JSON.stringify(s);
    expect(text).not.toContain(input.rtmps.streamKey);
    expect(text).not.toContain("rtmp://");
    expect(text).not.toContain("rtmps://");
    expect(s.ingestProtocol).toBe("rtmp");
  });

  it("honours recording settings", async () => {
    const app = await registerApp();
    const s = await startStream(app, newUserId(), { recording: { mode: "off" }, deleteRecordingAfterDays: null });
    const input = await inputFor(s.streamId);
    expect(input.recording.mode).toBe("off");
  });

  it("a second app joins the user's running stream instead of creating another", async () => {
    const [a, b] = [await registerApp(), await registerApp()];
    const userId = newUserId();
    const first = await startStream(a, userId);
    const second = await postStream(b, { userId });
    expect(second.status).toBe(200);
    expect(second.body.streamId).toBe(first.streamId);
    expect(second.body.created).toBe(false);
    expect(await emulatorInputs()).toHaveLength(1);
  });

  it("ten apps starting for one user at the same moment get one stream and one live input", async () => {
    const apps = await Promise.all(Array.from({ length: 10 }, () => registerApp()));
    const userId = newUserId();
    const granted = await Promise.all(apps.map((app) => grantedHeaders(app, userId)));
    const results = await Promise.all(granted.map((headers) => call("POST", "/api/streams", { userId }, headers)));
    expect(results.map((r) => r.status).sort()).toEqual([200, 200, 200, 200, 200, 200, 200, 200, 200, 201]);
    expect(new Set(results.map((r) => r.body.streamId)).size).toBe(1);
    expect(await emulatorInputs()).toHaveLength(1);
  });

  it("different users get different streams", async () => {
    const app = await registerApp();
    const [x, y] = await Promise.all([startStream(app), startStream(app)]);
    expect(x.streamId).not.toBe(y.streamId);
    expect(await emulatorInputs()).toHaveLength(2);
  });

  it("rate-limits stream starts per app: 10 per minute, then 429 with Retry-After", async () => {
    const app = await registerApp();
    for (let i = 0; i < 10; i++) await startStream(app);
    const limited = await postStream(app, { userId: newUserId() });
    expect(limited.status).toBe(429);
    expect(limited.body).toEqual({ error: "RATE_LIMITED", message: expect.stringContaining("10 per minute") });
    const retryAfter = Number(limited.headers.get("retry-after"));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(60);
    // Another app is not affected.
    expect((await postStream(await registerApp(), { userId: newUserId() })).status).toBe(201);
  });
});

describe("GET /api/streams/:streamId", () => {
  it("returns the snapshot to apps that joined, 404 to others", async () => {
    const [a, other] = [await registerApp(), await registerApp()];
    const s = await startStream(a);
    const res = await call("GET", `/api/streams/${s.streamId}`, undefined, a.headers);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ streamId: s.streamId, status: "preparing", ingest: "idle", viewers: 0 });
    const hidden = await call("GET", `/api/streams/${s.streamId}`, undefined, other.headers);
    expect(hidden.status).toBe(404);
    expect(hidden.body.error).toBe("STREAM_NOT_FOUND");
  });

  it("404s unknown and malformed stream ids", async () => {
    const app = await registerApp();
    for (const id of ["AAAAAAAAAAAAAAAAAAAAA", "short", "has%20space-aaaaaaaaaaaaaa"]) {
      const res = await call("GET", `/api/streams/${id}`, undefined, app.headers);
      expect(res.status).toBe(404);
      expect(res.body).toEqual({ error: "STREAM_NOT_FOUND", message: "Managed stream not found" });
    }
  });
});

describe("stopping", () => {
  it("deletes the live input and its outputs at Cloudflare, and is idempotent", async () => {
    const app = await registerApp();
    const s = await startStream(app);
    const input = await inputFor(s.streamId);
    // An output made behind our back still goes: cleanup lists what Cloudflare holds.
    await cloudflareDirect("POST", `/${input.uid}/outputs`, { url: "rtmp://example.com/live", streamKey: "k" });
    const stopped = await call("POST", `/api/admin/streams/${s.streamId}/stop`, undefined, ADMIN);
    expect(stopped.status).toBe(200);
    expect(stopped.body.status).toBe("stopped");
    expect(stopped.body.hlsUrl).toBeNull();
    expect(await emulatorInputs()).toHaveLength(0);
    const again = await call("POST", `/api/admin/streams/${s.streamId}/stop`, undefined, ADMIN);
    expect(again.status).toBe(200);
    expect(again.body.status).toBe("stopped");
  });

  it("a stopped stream stays readable for a day, then its storage is purged", async () => {
    const app = await registerApp();
    const s = await startStream(app);
    const uid = (await inputFor(s.streamId)).uid;
    expect(await streamIdForInput(env, uid)).toBe(s.streamId);
    await call("POST", `/api/admin/streams/${s.streamId}/stop`, undefined, ADMIN);
    expect(await streamIdForInput(env, uid)).toBeNull();
    const timers = await streamTimers(s.streamId);
    expect(timers.purge! - Date.now()).toBeGreaterThan(23 * 3_600_000);
    expect((await call("GET", `/api/streams/${s.streamId}`, undefined, app.headers)).body.status).toBe("stopped");
    await expireTimer(s.streamId, "purge");
    expect((await call("GET", `/api/streams/${s.streamId}`, undefined, app.headers)).status).toBe(404);
    expect(await streamTimers(s.streamId)).toEqual({});
  });

  it("after a stop, the next start for the user creates a new stream", async () => {
    const app = await registerApp();
    const userId = newUserId();
    const first = await startStream(app, userId);
    await call("POST", `/api/admin/streams/${first.streamId}/stop`, undefined, ADMIN);
    const second = await startStream(app, userId);
    expect(second.streamId).not.toBe(first.streamId);
    expect(second.created).toBe(true);
  });

  it("a stopped stream cannot be joined over a ticket", async () => {
    const app = await registerApp();
    const s = await startStream(app);
    await call("POST", `/api/admin/streams/${s.streamId}/stop`, undefined, ADMIN);
    const ticket = await call("POST", `/api/streams/${s.streamId}/tickets`, undefined, app.headers);
    expect(ticket.status).toBe(409);
    expect(ticket.body.error).toBe("STREAM_ENDED");
  });
});

describe("GET /api/device/stream", () => {
  it("gives the user's device its ingest credentials", async () => {
    const app = await registerApp();
    const userId = newUserId();
    const s = await startStream(app, userId);
    const input = await inputFor(s.streamId);
    const token = await deviceToken(userId);
    const res = await call("GET", "/api/device/stream", undefined, { authorization: `Bearer ${token}` });
    expect(res.status).toBe(200);
    expect(res.body.streamId).toBe(s.streamId);
    expect(res.body.start.rtmpUrl).toBe(`${input.rtmps.url}${input.rtmps.streamKey}`);
    // An RTMP stream's glasses get its RTMPS credentials only (the WHIP URL would give no HLS).
    expect(res.body.start).not.toHaveProperty("whipUrl");
  });

  it("404s for a user without a stream and 401s without a valid token", async () => {
    const token = await deviceToken(newUserId());
    const none = await call("GET", "/api/device/stream", undefined, { authorization: `Bearer ${token}` });
    expect(none.status).toBe(404);
    expect(none.body.error).toBe("NO_ACTIVE_STREAM");
    const bad = await call("GET", "/api/device/stream", undefined, { authorization: `Bearer ${token}x` });
    expect(bad.status).toBe(401);
    const missing = await call("GET", "/api/device/stream");
    expect(missing.status).toBe(401);
  });
});
