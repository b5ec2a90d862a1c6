import { env, runInDurableObject } from "cloudflare:test";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { hashKey } from "../../src/apps/credentials";
import { freezeClock, resetClock, shiftClock } from "../../src/clock";
import { KEY_CACHE_MS } from "../../src/http/auth";
import { ADMIN, call, newUserId, postStream, registerApp, resetEmulator, userGrant } from "../helpers";

const NO_STREAM = "/api/streams/AAAAAAAAAAAAAAAAAAAAA";

beforeEach(resetEmulator);
afterEach(resetClock);

describe("API keys remembered in the Worker isolate", () => {
  it("a key used a moment ago stops working at once when rotated through this isolate", async () => {
    const app = await registerApp();
    expect((await call("GET", NO_STREAM, undefined, app.headers)).status).toBe(404);
    expect((await call("POST", `/api/admin/apps/${app.packageName}/rotate-key`, undefined, ADMIN)).status).toBe(200);
    expect((await call("GET", NO_STREAM, undefined, app.headers)).status).toBe(401);
  });

  it("a key used a moment ago stops working at once when its app is removed through this isolate", async () => {
    const app = await registerApp();
    expect((await call("GET", NO_STREAM, undefined, app.headers)).status).toBe(404);
    expect((await call("DELETE", `/api/admin/apps/${app.packageName}`, undefined, ADMIN)).status).toBe(200);
    expect((await call("GET", NO_STREAM, undefined, app.headers)).status).toBe(401);
  });

  it("a key rotated elsewhere (another isolate) is accepted here for at most KEY_CACHE_MS", async () => {
    const app = await registerApp();
    expect((await call("GET", NO_STREAM, undefined, app.headers)).status).toBe(404);
    // Rotate in the AppAccount only, as a rotate handled by another isolate would.
    const other = await hashKey("sc_some-other-key");
    await runInDurableObject(env.APPS.getByName(app.packageName), (_instance, state) => {
      state.storage.sql.exec("UPDATE account SET key_salt = ?, key_hash = ? WHERE id = 1", other.salt, other.hash);
    });
    shiftClock(KEY_CACHE_MS - 500);
    expect((await call("GET", NO_STREAM, undefined, app.headers)).status).toBe(404);
    shiftClock(500);
    expect((await call("GET", NO_STREAM, undefined, app.headers)).status).toBe(401);
  });

  it("a wrong key is never remembered", async () => {
    const app = await registerApp();
    const wrong = { ...app.headers, "x-api-key": `${app.apiKey}x` };
    expect((await call("GET", NO_STREAM, undefined, wrong)).status).toBe(401);
    expect((await call("GET", NO_STREAM, undefined, wrong)).status).toBe(401);
  });
});

describe("start: key check and start count in one round trip", () => {
  it("a start refused for its body or a missing grant uses up no start", async () => {
    const app = await registerApp();
    for (let i = 0; i < 12; i++) {
      expect((await call("POST", "/api/streams", { userId: "" }, app.headers)).status).toBe(400);
      expect((await call("POST", "/api/streams", { userId: newUserId() }, app.headers)).status).toBe(403);
    }
    expect((await postStream(app, { userId: newUserId() })).status).toBe(201);
  });

  it("a wrong key is 401 before any other answer, and counts no start", async () => {
    const app = await registerApp();
    const wrong = { ...app.headers, "x-api-key": `${app.apiKey}x` };
    expect((await call("POST", "/api/streams", { userId: "" }, wrong)).status).toBe(401);
    expect((await call("POST", "/api/streams", { userId: newUserId() }, wrong)).status).toBe(401);
  });
});

describe("device tokens", () => {
  const deviceCall = (token: string) => call("GET", "/api/device/stream", undefined, { authorization: `Bearer ${token}` });
  const mint = async (userId: string, ttlSeconds: number) => (await call("POST", "/api/admin/device-tokens", { userId, ttlSeconds }, ADMIN)).body;

  it("a device token is accepted until its expiry and refused from that second on", async () => {
    const now = freezeClock();
    const userId = newUserId();
    const { token, expiresAt } = await mint(userId, 120);
    const expiry = Date.parse(expiresAt);
    expect(expiry).toBe((Math.floor(now / 1000) + 120) * 1000);

    shiftClock(expiry - 1 - now);
    expect((await deviceCall(token)).body.error).not.toBe("UNAUTHORIZED");
    shiftClock(1);
    expect(await deviceCall(token)).toMatchObject({ status: 401, body: { error: "UNAUTHORIZED", message: "Invalid or expired device token" } });
    // The socket upgrade checks it the same way.
    const socket = await call("GET", `/api/streams/AAAAAAAAAAAAAAAAAAAAA/ws?token=${token}`, undefined, { upgrade: "websocket" });
    expect(socket).toMatchObject({ status: 401, body: { error: "UNAUTHORIZED" } });
  });

  it("only a device token is a device token: a user grant for the same user is refused (audience checked)", async () => {
    const userId = newUserId();
    const app = await registerApp();
    const grant = await userGrant(userId, app);
    expect(await deviceCall(grant)).toMatchObject({ status: 401, body: { error: "UNAUTHORIZED" } });
    const { token } = await mint(userId, 3_600);
    expect((await deviceCall(token)).status).not.toBe(401);
    // And the other way round: a device token is no user grant.
    const start = await call("POST", "/api/streams", { userId, recording: { mode: "off" } }, { ...app.headers, "x-user-grant": token });
    expect(start).toMatchObject({ status: 403, body: { error: "USER_NOT_GRANTED" } });
  });

  it("a user grant is accepted until its expiry and refused from that second on", async () => {
    const now = freezeClock();
    const userId = newUserId();
    const app = await registerApp();
    const grant = (await call("POST", "/api/admin/user-grants", { userId, packageName: app.packageName, ttlSeconds: 60 }, ADMIN)).body;
    const expiry = Date.parse(grant.expiresAt);
    shiftClock(expiry - 1 - now);
    const body = { userId, recording: { mode: "off" } };
    expect((await call("POST", "/api/streams", body, { ...app.headers, "x-user-grant": grant.token })).status).toBe(201);
    shiftClock(1);
    expect(await call("POST", "/api/streams", body, { ...app.headers, "x-user-grant": grant.token })).toMatchObject({ status: 403, body: { error: "USER_NOT_GRANTED" } });
  });
});
