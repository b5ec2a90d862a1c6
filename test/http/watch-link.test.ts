import { env, evictDurableObject } from "cloudflare:test";
import { beforeEach, describe, expect, it } from "vitest";
import {
  ADMIN,
  call,
  deviceToken,
  emulator,
  expireTimer,
  grantedHeaders,
  inputFor,
  newUserId,
  openSocket,
  registerApp,
  resetEmulator,
  startStream,
  type Json,
  type TestApp,
  ingestByWebhook,
} from "../helpers";
import { recordWatchKey } from "../../src/users/watch-key-index";

beforeEach(resetEmulator);



async function linkOf(app: TestApp, userId: string): Promise<{ watchKey: string; watchUrl: string }> {
  const res = await call("GET", `/api/users/${userId}/watch-link`, undefined, await grantedHeaders(app, userId));
  expect(res.status).toBe(200);
  return res.body;
}

const watch = (key: string, headers: Record<string, string> = {}) => call("GET", `/w/${key}`, undefined, headers);

describe("who may read and rotate a user's watch link", () => {
  it("an app with the user's grant, the user's device and the admin get the same key; it is not the user id", async () => {
    const app = await registerApp();
    const userId = newUserId();
    const link = await linkOf(app, userId);
    expect(link.watchKey).toMatch(/^[A-Za-z0-9_-]{24}$/);
    expect(link.watchKey).not.toContain(userId);
    expect(link.watchUrl).toBe(`http://coordinator.test/w/${link.watchKey}`);
    const byAdmin = await call("GET", `/api/users/${userId}/watch-link`, undefined, ADMIN);
    expect(byAdmin.body.watchKey).toBe(link.watchKey);
    expect(byAdmin.headers.get("cache-control")).toBe("no-store");
    const byDevice = await call("GET", `/api/users/${userId}/watch-link`, undefined, { authorization: `Bearer ${await deviceToken(userId)}` });
    expect(byDevice.status).toBe(200);
    expect(byDevice.body.watchKey).toBe(link.watchKey);
  });

  it("refuses an app without the user's grant, another user's device, bad credentials and a bad user id", async () => {
    const app = await registerApp();
    const userId = newUserId();
    const noGrant = await call("GET", `/api/users/${userId}/watch-link`, undefined, app.headers);
    expect(noGrant).toMatchObject({ status: 403, body: { error: "USER_NOT_GRANTED" } });
    const otherGrant = await call("POST", `/api/users/${userId}/watch-link/rotate`, undefined, await grantedHeaders(app, newUserId()));
    expect(otherGrant).toMatchObject({ status: 403, body: { error: "USER_NOT_GRANTED" } });
    const otherDevice = await call("POST", `/api/users/${userId}/watch-link/rotate`, undefined, { authorization: `Bearer ${await deviceToken(newUserId())}` });
    expect(otherDevice).toMatchObject({ status: 403, body: { error: "FORBIDDEN" } });
    expect((await call("GET", `/api/users/${userId}/watch-link`, undefined, { authorization: "Bearer nonsense" })).status).toBe(401);
    expect((await call("GET", `/api/users/${userId}/watch-link`)).status).toBe(401);
    expect((await call("GET", `/api/users/${userId}/watch-link`, undefined, { ...app.headers, "x-api-key": "sc_wrong" })).status).toBe(401);
    expect((await call("GET", `/api/users/bad%20id/watch-link`, undefined, ADMIN)).body.error).toBe("INVALID_REQUEST");
  });

  it("rotating kills the old key at once; unknown, malformed and rotated keys get one and the same 404", async () => {
    const app = await registerApp();
    const userId = newUserId();
    const old = await linkOf(app, userId);
    expect((await watch(old.watchKey)).status).toBe(200);
    const rotated = await call("POST", `/api/users/${userId}/watch-link/rotate`, undefined, await grantedHeaders(app, userId));
    expect(rotated.status).toBe(200);
    expect(rotated.body.watchKey).not.toBe(old.watchKey);
    const dead = await watch(old.watchKey);
    const unknown = await watch("A".repeat(24));
    const malformed = await watch("x");
    for (const res of [dead, unknown, malformed]) {
      expect(res.status).toBe(404);
      expect(res.body).toEqual({ error: "WATCH_LINK_NOT_FOUND", message: "No such watch link" });
      expect(res.headers.get("cache-control")).toBe("no-store");
    }
    expect((await call("GET", `/w/${old.watchKey}/video.m3u8`)).body.error).toBe("WATCH_LINK_NOT_FOUND");
    // A rotation that died before it dropped the old index entry: the user's object still refuses the old key.
    await recordWatchKey(env, old.watchKey, userId);
    expect(await watch(old.watchKey)).toMatchObject({ status: 404, body: { error: "WATCH_LINK_NOT_FOUND" } });
    expect((await watch(rotated.body.watchKey)).status).toBe(200);
    expect((await linkOf(app, userId)).watchKey).toBe(rotated.body.watchKey);
  });
});

describe("GET /w/:key follows the user's stream", () => {
  it("offline → live → reconnecting → offline, then the next stream; resolved on every request and after restarts", async () => {
    const app = await registerApp();
    const userId = newUserId();
    const { watchKey } = await linkOf(app, userId);
    const none = await watch(watchKey);
    expect(none.body).toEqual({ state: "offline", streamId: null, hlsUrl: null, dashUrl: null, webrtcUrl: null, thumbnailUrl: null, latestRecording: null });
    expect(none.headers.get("cache-control")).toBe("no-store");

    const s = await startStream(app, userId);
    expect((await watch(watchKey)).body).toMatchObject({ state: "offline", streamId: s.streamId, hlsUrl: null });
    const input = await inputFor(s.streamId);
    await ingestByWebhook(input.uid, "connect");
    const live: Json = (await watch(watchKey)).body;
    expect(live).toMatchObject({ state: "live", streamId: s.streamId, hlsUrl: s.hlsUrl, dashUrl: s.dashUrl, webrtcUrl: null, thumbnailUrl: s.thumbnailUrl });
    const m3u8 = await SELF_fetch(`/w/${watchKey}/video.m3u8`, {});
    expect(m3u8.status).toBe(302);
    expect(m3u8.headers.get("location")).toBe(s.hlsUrl);
    expect(m3u8.headers.get("cache-control")).toBe("no-store");

    await ingestByWebhook(input.uid, "disconnect");
    expect((await watch(watchKey)).body).toMatchObject({ state: "reconnecting", streamId: s.streamId, hlsUrl: s.hlsUrl });
    // Restarts of the objects change nothing: everything is read from durable state per request.
    await evictDurableObject(env.USERS.getByName(userId));
    await evictDurableObject(env.STREAMS.getByName(s.streamId));
    expect((await watch(watchKey)).body).toMatchObject({ state: "reconnecting", streamId: s.streamId });

    await call("POST", `/api/admin/streams/${s.streamId}/stop`, undefined, ADMIN);
    expect((await watch(watchKey)).body).toMatchObject({ state: "offline", streamId: s.streamId, hlsUrl: null });
    const nothing = await call("GET", `/w/${watchKey}/video.m3u8`);
    expect(nothing).toMatchObject({ status: 404, body: { error: "NOTHING_TO_PLAY" } });

    const next = await startStream(app, userId);
    expect(next.streamId).not.toBe(s.streamId);
    await ingestByWebhook((await inputFor(next.streamId)).uid, "connect");
    expect((await watch(watchKey)).body).toMatchObject({ state: "live", streamId: next.streamId, hlsUrl: next.hlsUrl });
  });

  it("a stream ingested over WebRTC is given with its WHEP URL and no HLS; video.m3u8 says it plays over WHEP only", async () => {
    const app = await registerApp();
    const userId = newUserId();
    const { watchKey } = await linkOf(app, userId);
    const s = await startStream(app, userId, { ingest: "webrtc" });
    expect(s.webrtcUrl).toMatch(/\/webRTC\/play$/);
    expect((await watch(watchKey)).body).toMatchObject({ state: "offline", streamId: s.streamId, hlsUrl: null, webrtcUrl: null });
    await ingestByWebhook((await inputFor(s.streamId)).uid, "connect");
    expect((await watch(watchKey)).body).toMatchObject({ state: "live", streamId: s.streamId, hlsUrl: null, dashUrl: null, webrtcUrl: s.webrtcUrl });
    const m3u8 = await call("GET", `/w/${watchKey}/video.m3u8`);
    expect(m3u8.status).toBe(404);
    expect(m3u8.body.error).toBe("NOTHING_TO_PLAY");
    expect(m3u8.body.message).toMatch(/WHEP/);
  });

  it("once the stream is over, the link offers its newest ready recording, and video.m3u8 plays it", async () => {
    const app = await registerApp();
    const userId = newUserId();
    const s = await startStream(app, userId, { recording: { mode: "automatic", timeoutSeconds: 30 } });
    const { watchKey } = await linkOf(app, userId);
    await ingestByWebhook((await inputFor(s.streamId)).uid, "connect");
    expect((await watch(watchKey)).body.latestRecording).toBeNull(); // still recording
    await call("POST", `/api/admin/streams/${s.streamId}/stop`, undefined, ADMIN);
    expect((await SELF_fetch(`/w/${watchKey}/video.m3u8`, {})).status).toBe(404); // not ready yet
    await emulator("POST", "clock", { advanceSeconds: 3600 });
    await expireTimer(s.streamId, "recordings-settle");
    const [recording] = (await call("GET", `/api/streams/${s.streamId}/recordings`, undefined, app.headers)).body;
    expect(recording.state).toBe("ready");
    const view = (await watch(watchKey)).body;
    expect(view).toMatchObject({ state: "offline", streamId: s.streamId, hlsUrl: null });
    expect(view.latestRecording).toEqual(recording);
    const m3u8 = await SELF_fetch(`/w/${watchKey}/video.m3u8`, {});
    expect(m3u8.status).toBe(302);
    expect(m3u8.headers.get("location")).toBe(recording.hlsUrl);
  });

  it("a browser gets the watch page, counted as a hit by country in the stream's analytics", async () => {
    const app = await registerApp();
    const userId = newUserId();
    const s = await startStream(app, userId);
    const { watchKey } = await linkOf(app, userId);
    const res = await SELF_fetch(`/w/${watchKey}`, { accept: "text/html,application/xhtml+xml", "cf-connecting-ip": "203.0.113.9" });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/html/);
    expect(res.headers.get("cache-control")).toBe("no-store");
    expect(await res.text()).toContain("/watch/watch.js");
    await SELF_fetch(`/w/${watchKey}/video.m3u8`, { "cf-connecting-ip": "203.0.113.9" });
    await SELF_fetch(`/w/${watchKey}/video.m3u8`, { "cf-connecting-ip": "198.51.100.7" });
    await watch(watchKey); // JSON reads (the page's own polls) are not hits
    const r = (await call("GET", `/api/streams/${s.streamId}/analytics`, undefined, app.headers)).body;
    expect(r.watchLink.hits).toBe(3);
    expect(r.watchLink.uniqueVisitors).toBe(2);
    expect(r.watchLink.countries).toHaveLength(1);
    expect(r.watchLink.countries[0]).toMatchObject({ hits: 3, uniqueVisitors: 2 });
    // Never the raw address.
    expect(JSON.stringify(r)).not.toContain("203.0.113.9");
  });

  it("the SDK's previewUrl is the watch link, and follows a rotation", async () => {
    const app = await registerApp();
    const userId = newUserId();
    const s = await startStream(app, userId);
    const { watchUrl } = await linkOf(app, userId);
    const v = await openSocket(s.streamId, { headers: app.headers });
    expect((await v.next("managed_stream_status")).previewUrl).toBe(watchUrl);
    const rotated = await call("POST", `/api/users/${userId}/watch-link/rotate`, undefined, ADMIN);
    let message: Json;
    do message = await v.next("managed_stream_status");
    while (message.previewUrl === watchUrl);
    expect(message.previewUrl).toBe(rotated.body.watchUrl);
  });
});

async function SELF_fetch(path: string, headers: Record<string, string>): Promise<Response> {
  const { SELF } = await import("cloudflare:test");
  return SELF.fetch(`http://coordinator.test${path}`, { headers, redirect: "manual" });
}
