import { env, runInDurableObject } from "cloudflare:test";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { hashKey } from "../../src/apps/credentials";
import { resetClock, shiftClock } from "../../src/clock";
import { KEY_CACHE_MS } from "../../src/http/auth";
import { ADMIN, call, newUserId, postStream, registerApp, resetEmulator } from "../helpers";

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
