import { env } from "cloudflare:test";
import { beforeEach, describe, expect, it } from "vitest";
import { LIVE_INPUTS_PATH, injectFault, newUserId, postStream, registerApp, resetEmulator } from "../helpers";

beforeEach(resetEmulator);

describe("the shared API budget", () => {
  it("a Cloudflare 429 blocks every later call for its retry-after, without calling Cloudflare", async () => {
    const app = await registerApp();
    await injectFault({ method: "POST", path: LIVE_INPUTS_PATH, status: 429, retryAfter: 2 });
    expect((await postStream(app, { userId: newUserId() })).status).toBe(502);
    const held = await postStream(app, { userId: newUserId() });
    expect(held).toMatchObject({ status: 502, body: { error: "CLOUDFLARE_ERROR", message: expect.stringContaining("budget") } });
    expect(Number(held.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    const usage = await env.BUDGET.getByName("global").usage();
    expect(usage.blockedUntil).not.toBeNull();
    await new Promise((r) => setTimeout(r, 2_100));
    expect((await postStream(app, { userId: newUserId() })).status).toBe(201);
  });

  it("counts every Cloudflare call", async () => {
    const app = await registerApp();
    await postStream(app, { userId: newUserId() });
    expect((await env.BUDGET.getByName("global").usage()).usedLast5Min).toBe(1);
  });
});
