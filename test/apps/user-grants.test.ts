import { env } from "cloudflare:test";
import { beforeEach, describe, expect, it } from "vitest";
import type { Env } from "../../src/env";
import worker from "../../src/index";
import { ADMIN, call, newUserId, registerApp, resetEmulator, type TestApp } from "../helpers";

beforeEach(resetEmulator);

/** The Worker as deployed with REQUIRE_USER_GRANT=true. */
async function strict(method: string, path: string, headers: Record<string, string>, body?: unknown) {
  const request = new Request(`http://coordinator.test${path}`, {
    method,
    headers: { ...headers, ...(body === undefined ? {} : { "content-type": "application/json" }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const res = await worker.fetch(request, { ...env, REQUIRE_USER_GRANT: "true" } as unknown as Env, {} as ExecutionContext);
  return { status: res.status, body: res.status === 101 ? null : ((await res.json()) as { error?: string; streamId?: string }) };
}

async function grant(userId: string, app: TestApp): Promise<string> {
  const res = await call("POST", "/api/admin/user-grants", { userId, packageName: app.packageName }, ADMIN);
  expect(res.status).toBe(201);
  return res.body.token;
}

describe("user grants (REQUIRE_USER_GRANT=true)", () => {
  it("an app may start or join a user's stream only with that user's grant for that app", async () => {
    const [a, b] = [await registerApp(), await registerApp()];
    const userId = newUserId();
    expect(await strict("POST", "/api/streams", a.headers, { userId })).toMatchObject({ status: 403, body: { error: "USER_NOT_GRANTED" } });
    const forA = await grant(userId, a);
    expect((await strict("POST", "/api/streams", { ...b.headers, "x-user-grant": forA }, { userId })).status).toBe(403);
    expect((await strict("POST", "/api/streams", { ...a.headers, "x-user-grant": forA }, { userId: newUserId() })).status).toBe(403);
    const started = await strict("POST", "/api/streams", { ...a.headers, "x-user-grant": forA }, { userId });
    expect(started.status).toBe(201);

    // An app that never joined cannot watch by knowing the stream id.
    const path = `/api/streams/${started.body!.streamId}/ws`;
    expect(await strict("GET", path, { ...b.headers, upgrade: "websocket" })).toMatchObject({ status: 403, body: { error: "NOT_A_PARTICIPANT" } });
    expect((await strict("GET", path, { ...a.headers, upgrade: "websocket" })).status).toBe(101);
  });
});
