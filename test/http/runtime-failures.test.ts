import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import worker from "../../src/index";
import type { Env } from "../../src/env";
import { ApiError, errorResponse, runtimeUnavailable } from "../../src/http/errors";
import { registerApp, type Json } from "../helpers";

/** An error as the runtime throws it from a Durable Object stub: message plus Cloudflare's flags. */
const runtimeError = (message: string, flags: { retryable?: boolean; overloaded?: boolean } = {}) => Object.assign(new Error(message), flags);

async function answer(error: unknown) {
  const res = errorResponse(error);
  const body: Json = await res.json();
  return { status: res.status, retryAfter: res.headers.get("retry-after"), type: res.headers.get("content-type"), body };
}

describe("runtime failures are 503 + Retry-After, never a 500", () => {
  it("maps errors Cloudflare flags as retryable or overloaded", async () => {
    expect(await answer(runtimeError("anything at all", { retryable: true }))).toEqual({
      status: 503,
      retryAfter: "1",
      type: "application/json; charset=utf-8",
      body: { error: "SERVICE_UNAVAILABLE", message: expect.any(String) },
    });
    const overloaded = await answer(runtimeError("anything at all", { overloaded: true }));
    expect(overloaded.status).toBe(503);
    expect(overloaded.retryAfter).toBe("5");
    expect(overloaded.body.error).toBe("SERVICE_UNAVAILABLE");
  });

  it("recognises the runtime's messages when the flags are missing (the local runtime)", async () => {
    for (const message of [
      "Network connection lost.",
      "Durable Object reset because its code was updated.",
      "Durable Object storage operation exceeded timeout which caused object to be reset.",
      "Durable Object's isolate exceeded its memory limit and was reset.",
      "Internal error in Durable Object storage caused object to be reset.",
      "Cannot resolve Durable Object due to transient issue on remote node.",
    ]) {
      const a = await answer(runtimeError(message));
      expect([message, a.status, a.retryAfter, a.body.error]).toEqual([message, 503, "1", "SERVICE_UNAVAILABLE"]);
    }
    for (const message of ["Durable Object is overloaded. Too many requests queued.", "Your account is generating too much load on Durable Objects. Please back off and try again later."]) {
      const a = await answer(runtimeError(message));
      expect([message, a.status, a.retryAfter]).toEqual([message, 503, "5"]);
    }
  });

  it("keeps a bug a 500 INTERNAL_ERROR, without its text", async () => {
    for (const error of [new TypeError("x is not a function"), runtimeError("disk full", { retryable: false }), "a thrown string", null]) {
      const a = await answer(error);
      expect(a.status).toBe(500);
      expect(a.body).toEqual({ error: "INTERNAL_ERROR", message: "Internal server error" });
    }
    expect(runtimeUnavailable(new Error("Storage: network connection lost"))).toBeNull();
  });

  it("gives every 503 a Retry-After, even one that named none", async () => {
    const a = await answer(new ApiError(503, "BUSY", "The user's stream is changing state; retry shortly"));
    expect([a.status, a.retryAfter, a.body.error]).toEqual([503, "1", "BUSY"]);
    const b = await answer(new ApiError(503, "SERVICE_UNAVAILABLE", "later", 7));
    expect(b.retryAfter).toBe("7");
    const c = await answer(new ApiError(404, "NOT_FOUND", "no"));
    expect(c.retryAfter).toBeNull();
  });

  it("answers 503 when a Durable Object call fails mid-request (through the real router)", async () => {
    const app = await registerApp();
    // The app registry's stub fails the way a lost or overloaded object does.
    const failing = (error: Error) =>
      ({
        ...env,
        APPS: { getByName: () => ({ verifyKey: () => Promise.reject(error) }) },
      }) as unknown as Env;
    for (const [error, retryAfter] of [
      [runtimeError("Network connection lost."), "1"],
      [runtimeError("Durable Object is overloaded. Too many requests queued.", { overloaded: true }), "5"],
    ] as const) {
      const request = new Request("http://coordinator.test/api/streams/abcdefghijklmnopqrstu", { headers: app.headers });
      const res = await worker.fetch(request, failing(error), {} as ExecutionContext);
      expect(res.status).toBe(503);
      expect(res.headers.get("retry-after")).toBe(retryAfter);
      expect(await res.json()).toEqual({ error: "SERVICE_UNAVAILABLE", message: expect.any(String) });
    }
  });
});
