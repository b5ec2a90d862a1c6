import { env, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { ADMIN, call, registerApp } from "../helpers";

describe("admin API", () => {
  it("registers an app once and returns its key once", async () => {
    const res = await call("POST", "/api/admin/apps", { packageName: "com.example.once" }, ADMIN);
    expect(res.status).toBe(201);
    expect(res.body.packageName).toBe("com.example.once");
    expect(res.body.apiKey).toMatch(/^sc_[A-Za-z0-9_-]{40}$/);

    const again = await call("POST", "/api/admin/apps", { packageName: "com.example.once" }, ADMIN);
    expect(again.status).toBe(409);
    expect(again.body).toEqual({ error: "APP_EXISTS", message: expect.any(String) });
  });

  it("stores only a salted hash of the key", async () => {
    const app = await registerApp();
    const stored = await runInDurableObject(env.APPS.getByName(app.packageName), (_instance, state) =>
      state.storage.sql.exec("SELECT * FROM account").toArray(),
    );
    expect(stored).toHaveLength(1);
    expect(JSON.stringify(stored)).not.toContain(app.apiKey);
    expect(stored[0]!.key_salt).toMatch(/^[0-9a-f]{32}$/);
    expect(stored[0]!.key_hash).toMatch(/^[0-9a-f]{64}$/);
  });

  it("rotates a key: the old one stops working, the new one works", async () => {
    const app = await registerApp();
    const rotated = await call("POST", `/api/admin/apps/${app.packageName}/rotate-key`, undefined, ADMIN);
    expect(rotated.status).toBe(200);
    expect(rotated.body.apiKey).not.toBe(app.apiKey);

    const old = await call("GET", "/api/streams/AAAAAAAAAAAAAAAAAAAAA", undefined, app.headers);
    expect(old.status).toBe(401);
    const fresh = await call("GET", "/api/streams/AAAAAAAAAAAAAAAAAAAAA", undefined, {
      "x-api-key": rotated.body.apiKey,
      "x-package-name": app.packageName,
    });
    expect(fresh.status).toBe(404);
  });

  it("deletes an app: its key no longer authenticates", async () => {
    const app = await registerApp();
    expect((await call("DELETE", `/api/admin/apps/${app.packageName}`, undefined, ADMIN)).status).toBe(200);
    expect((await call("POST", "/api/streams", { userId: "u1" }, app.headers)).status).toBe(401);
    const missing = await call("DELETE", `/api/admin/apps/${app.packageName}`, undefined, ADMIN);
    expect(missing.status).toBe(404);
    expect(missing.body.error).toBe("APP_NOT_FOUND");
    expect((await call("POST", `/api/admin/apps/${app.packageName}/rotate-key`, undefined, ADMIN)).body.error).toBe("APP_NOT_FOUND");
  });

  it("mints expiring device tokens", async () => {
    const res = await call("POST", "/api/admin/device-tokens", { userId: "user-42", ttlSeconds: 120 }, ADMIN);
    expect(res.status).toBe(201);
    expect(res.body.token.split(".")).toHaveLength(3);
    const expires = Date.parse(res.body.expiresAt);
    expect(expires - Date.now()).toBeGreaterThan(100_000);
    expect(expires - Date.now()).toBeLessThanOrEqual(121_000);
  });

  it("refuses admin calls without the right token", async () => {
    for (const headers of [{}, { authorization: "Bearer wrong" }, { authorization: "Basic abc" }] as Record<string, string>[]) {
      const res = await call("POST", "/api/admin/apps", { packageName: "com.example.nope" }, headers);
      expect(res.status).toBe(401);
      expect(res.body.error).toBe("UNAUTHORIZED");
    }
  });

  it("404s (never 500s) an app name with malformed percent-encoding", async () => {
    const res = await call("POST", "/api/admin/apps/%E0%A4%A/rotate-key", undefined, ADMIN);
    expect(res).toMatchObject({ status: 404, body: { error: "APP_NOT_FOUND" } });
  });

  it("validates admin bodies", async () => {
    const bad = await call("POST", "/api/admin/apps", { packageName: "bad name!" }, ADMIN);
    expect(bad.status).toBe(400);
    expect(bad.body.error).toBe("INVALID_REQUEST");
    const token = await call("POST", "/api/admin/device-tokens", { userId: "u", ttlSeconds: 5 }, ADMIN);
    expect(token.status).toBe(400);
  });
});
