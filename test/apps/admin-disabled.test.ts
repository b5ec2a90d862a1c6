import { env, SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import worker from "../../src/index";
import type { Env } from "../../src/env";

describe("a deployment without ADMIN_TOKEN", () => {
  it("refuses every admin call", async () => {
    const request = new Request("http://coordinator.test/api/admin/apps", {
      method: "POST",
      headers: { authorization: "Bearer anything", "content-type": "application/json" },
      body: JSON.stringify({ packageName: "com.example.x" }),
    });
    const res = await worker.fetch(request, { ...env, ADMIN_TOKEN: undefined } as unknown as Env, {} as ExecutionContext);
    expect(res.status).toBe(403);
    expect(await res.json()).toEqual({ error: "ADMIN_DISABLED", message: expect.stringContaining("ADMIN_TOKEN") });
    // The configured test worker still accepts its own token.
    expect((await SELF.fetch("http://coordinator.test/healthz")).status).toBe(200);
  });
});
