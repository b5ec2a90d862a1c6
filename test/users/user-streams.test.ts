// The user's index of their running stream (src/users/user-streams.ts): one stream per user, re-derived
// from what the stream objects answer when the index is behind.
import { env, runInDurableObject } from "cloudflare:test";
import { beforeEach, describe, expect, it } from "vitest";
import { ADMIN, LIVE_INPUTS_PATH, call, deviceToken, injectFault, newUserId, postStream, registerApp, resetEmulator, startStream } from "../helpers";

beforeEach(resetEmulator);

/** The user's index names `streamId` as current, as it would if the stream's "ended" never reached it. */
async function indexStillNames(userId: string, streamId: string): Promise<void> {
  await runInDurableObject(env.USERS.getByName(userId), (_i, state) => {
    state.storage.sql.exec("INSERT OR REPLACE INTO current_stream (id, stream_id) VALUES (1, ?)", streamId);
  });
}

const deviceStream = async (userId: string) => call("GET", "/api/device/stream", undefined, { authorization: `Bearer ${await deviceToken(userId)}` });

describe("one running stream per user, whatever the index remembers", () => {
  it("a start after the user's stream stopped without the index hearing of it creates a new stream", async () => {
    const app = await registerApp();
    const userId = newUserId();
    const old = await startStream(app, userId);
    await call("POST", `/api/admin/streams/${old.streamId}/stop`, undefined, ADMIN);
    await indexStillNames(userId, old.streamId);

    const next = await postStream(app, { userId, recording: { mode: "off" } });
    expect(next.status).toBe(201);
    expect(next.body.streamId).not.toBe(old.streamId);
    expect((await deviceStream(userId)).body.streamId).toBe(next.body.streamId);
    // The new stream is the one joined from now on.
    const joined = await postStream(await registerApp(), { userId });
    expect(joined).toMatchObject({ status: 200, body: { streamId: next.body.streamId } });
  });

  it("a start after the user's stream object is gone altogether (never created, or purged) creates a new stream", async () => {
    const app = await registerApp();
    const userId = newUserId();
    await indexStillNames(userId, "neverexisted000000000");
    const started = await postStream(app, { userId, recording: { mode: "off" } });
    expect(started.status).toBe(201);
    expect(started.body.streamId).not.toBe("neverexisted000000000");
  });

  it("a start Cloudflare refuses leaves the user with no stream: the device is told there is none, and the next start creates one", async () => {
    const app = await registerApp();
    const userId = newUserId();
    await injectFault({ method: "POST", path: LIVE_INPUTS_PATH, status: 403, count: 1 });
    const refused = await postStream(app, { userId, recording: { mode: "off" } });
    expect(refused.status).toBeGreaterThanOrEqual(400);
    expect(refused.body.error).toBeDefined();
    expect(await deviceStream(userId)).toMatchObject({ status: 404, body: { error: "NO_ACTIVE_STREAM" } });

    const started = await postStream(app, { userId, recording: { mode: "off" } });
    expect(started.status).toBe(201);
    expect((await deviceStream(userId)).body.streamId).toBe(started.body.streamId);
  });
});

/**
 * One binding of the user's object unreachable (an overloaded or redeploying object, a lost answer): the named
 * methods of `binding`'s objects reject until `restore()`; everything else reaches the real objects.
 */
async function unreachableFromUser(userId: string, binding: "STREAMS" | "WATCH_KEYS", methods: string[]): Promise<{ restore(): Promise<void> }> {
  const failing = {
    getByName(name: string) {
      const real = (env[binding] as unknown as { getByName(n: string): unknown }).getByName(name) as Record<string, (...a: unknown[]) => unknown>;
      return new Proxy({}, {
        get: (_t, method: string) =>
          methods.includes(method) ? () => Promise.reject(new Error(`${binding}.${method}: unreachable (injected by the test)`)) : (...args: unknown[]) => real[method]!(...args),
      });
    },
  };
  type Patched = { env: object; watchKeys: { env: object } };
  await runInDurableObject(env.USERS.getByName(userId), (instance) => {
    const o = instance as unknown as Patched;
    o.env = Object.create(o.env, { [binding]: { value: failing } });
    o.watchKeys.env = o.env;
  });
  return {
    async restore() {
      await runInDurableObject(env.USERS.getByName(userId), (instance) => {
        const o = instance as unknown as Patched;
        o.env = Object.getPrototypeOf(o.env);
        o.watchKeys.env = o.env;
      });
    },
  };
}

const UNAVAILABLE = { error: "SERVICE_UNAVAILABLE", message: "The stream is briefly unavailable; retry shortly" };

describe("an object the user's index cannot reach: a clear 503 to retry, nothing half-done", () => {
  it("a first start while the watch-key index is unreachable answers 503 with Retry-After 1 and creates no stream", async () => {
    const app = await registerApp();
    const userId = newUserId();
    await env.USERS.getByName(userId).deviceStream(userId); // the object exists, so it can be patched
    const index = await unreachableFromUser(userId, "WATCH_KEYS", ["set"]);
    const refused = await postStream(app, { userId, recording: { mode: "off" } });
    expect(refused).toMatchObject({ status: 503, body: UNAVAILABLE });
    expect(refused.headers.get("retry-after")).toBe("1");
    expect(await deviceStream(userId)).toMatchObject({ status: 404, body: { error: "NO_ACTIVE_STREAM" } });
    const link = await env.USERS.getByName(userId).watchLink(userId);
    expect(link).toMatchObject({ ok: false, status: 503, error: "SERVICE_UNAVAILABLE", retryAfter: 1 });
    await index.restore();
    expect((await postStream(app, { userId, recording: { mode: "off" } })).status).toBe(201);
  });

  it("a rotation while the index is unreachable answers 503 and keeps the current key", async () => {
    const userId = newUserId();
    const before = await env.USERS.getByName(userId).watchLink(userId);
    const index = await unreachableFromUser(userId, "WATCH_KEYS", ["set"]);
    expect(await env.USERS.getByName(userId).rotateWatchKey(userId, "http://coordinator.test")).toMatchObject({ ok: false, status: 503, error: "SERVICE_UNAVAILABLE" });
    await index.restore();
    expect(await env.USERS.getByName(userId).watchLink(userId)).toEqual(before);
  });

  it("a rotation whose running stream cannot be told its new link still rotates (the stream shows the old link until its next join)", async () => {
    const app = await registerApp();
    const userId = newUserId();
    await startStream(app, userId);
    const before = await env.USERS.getByName(userId).watchLink(userId);
    const streams = await unreachableFromUser(userId, "STREAMS", ["setWatchUrl"]);
    const rotated = await env.USERS.getByName(userId).rotateWatchKey(userId, "http://coordinator.test");
    await streams.restore();
    expect(rotated).toMatchObject({ ok: true });
    expect(rotated.ok && rotated.watchKey).not.toBe(before.ok && before.watchKey);
    expect(await env.USERS.getByName(userId).watchLink(userId)).toEqual(rotated);
  });

  it("a start whose stream object fails mid-create answers 503, and the user is left with no current stream", async () => {
    const app = await registerApp();
    const userId = newUserId();
    await env.USERS.getByName(userId).watchLink(userId);
    const streams = await unreachableFromUser(userId, "STREAMS", ["create"]);
    expect(await postStream(app, { userId, recording: { mode: "off" } })).toMatchObject({ status: 503, body: UNAVAILABLE });
    await streams.restore();
    expect(await deviceStream(userId)).toMatchObject({ status: 404, body: { error: "NO_ACTIVE_STREAM" } });
    expect((await postStream(app, { userId, recording: { mode: "off" } })).status).toBe(201);
  });

  it("a join, the device's stream and the watch link answer 503 while the running stream's object is unreachable, and work again after", async () => {
    const app = await registerApp();
    const userId = newUserId();
    const s = await startStream(app, userId);
    const link = await env.USERS.getByName(userId).watchLink(userId);
    if (!link.ok) throw new Error(link.message);
    const streams = await unreachableFromUser(userId, "STREAMS", ["join", "deviceInfo", "watchView"]);
    expect(await postStream(await registerApp(), { userId })).toMatchObject({ status: 503, body: UNAVAILABLE });
    expect(await deviceStream(userId)).toMatchObject({ status: 503, body: UNAVAILABLE });
    expect(await call("GET", `/w/${link.watchKey}`)).toMatchObject({ status: 503, body: UNAVAILABLE });
    await streams.restore();
    expect(await postStream(await registerApp(), { userId })).toMatchObject({ status: 200, body: { streamId: s.streamId } });
    expect((await deviceStream(userId)).body.streamId).toBe(s.streamId);
    expect((await call("GET", `/w/${link.watchKey}`)).body).toMatchObject({ streamId: s.streamId });
  });
});
