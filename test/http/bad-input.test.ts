import { SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { call, registerApp } from "../helpers";

describe("bad input always gets a clear JSON error", () => {
  it("401 UNAUTHORIZED for missing or wrong app credentials", async () => {
    const app = await registerApp();
    const cases: Record<string, string>[] = [
      {},
      { "x-api-key": app.apiKey },
      { "x-package-name": app.packageName },
      { "x-api-key": "wrong", "x-package-name": app.packageName },
      { "x-api-key": app.apiKey, "x-package-name": "com.other.app" },
      { "x-api-key": app.apiKey, "x-package-name": "bad name" },
    ];
    for (const headers of cases) {
      const res = await call("POST", "/api/streams", { userId: "u" }, headers);
      expect(res.status).toBe(401);
      expect(res.body).toEqual({ error: "UNAUTHORIZED", message: expect.any(String) });
    }
  });

  it("400 for malformed JSON, wrong types and missing fields", async () => {
    const app = await registerApp();
    const malformed = await call("POST", "/api/streams", "{not json", app.headers);
    expect(malformed.status).toBe(400);
    expect(malformed.body.error).toBe("INVALID_JSON");
    for (const body of [{}, { userId: 42 }, { userId: "" }, { userId: "u", recording: { mode: "sometimes" } }, { userId: "u", deleteRecordingAfterDays: 5 }, [], JSON.stringify("text")]) {
      const res = await call("POST", "/api/streams", body, app.headers);
      expect(res.status).toBe(400);
      expect(res.body).toEqual({ error: "INVALID_REQUEST", message: expect.any(String) });
    }
  });

  it("413 for bodies over 16 KiB, declared or streamed", async () => {
    const app = await registerApp();
    const big = JSON.stringify({ userId: "u", padding: "x".repeat(17 * 1024) });
    const declared = await call("POST", "/api/streams", big, app.headers);
    expect(declared.status).toBe(413);
    expect(declared.body.error).toBe("PAYLOAD_TOO_LARGE");

    const stream = new ReadableStream({
      start(controller) {
        for (let i = 0; i < 20; i++) controller.enqueue(new TextEncoder().encode("x".repeat(1024)));
        controller.close();
      },
    });
    const res = await SELF.fetch("http://coordinator.test/api/streams", { method: "POST", headers: app.headers, body: stream });
    expect(res.status).toBe(413);
  });

  it("404 NOT_FOUND for unknown routes and methods", async () => {
    for (const [method, path] of [["GET", "/nope"], ["PUT", "/api/streams"], ["GET", "/api/admin/apps"]] as const) {
      const res = await call(method, path);
      expect(res.status).toBe(404);
      expect(res.body.error).toBe("NOT_FOUND");
    }
  });

  it("GET /healthz", async () => {
    const res = await call("GET", "/healthz");
    expect(res).toMatchObject({ status: 200, body: { ok: true } });
  });
});
