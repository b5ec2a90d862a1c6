import { env } from "cloudflare:test";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { freezeClock, resetClock, shiftClock } from "../../src/clock";
import { newUserId, postStream, registerApp, resetEmulator } from "../helpers";

beforeEach(resetEmulator);
afterEach(resetClock);

describe("stream starts per app", () => {
  it("the start-rate window is one minute: full just before it ends, free again at one minute", async () => {
    const app = await registerApp();
    const account = env.APPS.getByName(app.packageName);
    const t0 = freezeClock();
    for (let i = 0; i < 3; i++) expect(await account.consumeStreamStart(3)).toEqual({ ok: true });
    shiftClock(30_000);
    expect(await account.consumeStreamStart(3)).toMatchObject({ ok: false, status: 429, error: "RATE_LIMITED", retryAfter: 30 });
    shiftClock(29_999);
    expect(await account.consumeStreamStart(3)).toMatchObject({ ok: false, status: 429, retryAfter: 1 });
    shiftClock(1);
    expect(await account.consumeStreamStart(3)).toEqual({ ok: true });
    // The refused starts were not counted: two more fit, then the window is full again.
    expect(await account.consumeStreamStart(3)).toEqual({ ok: true });
    expect(await account.consumeStreamStart(3)).toEqual({ ok: true });
    expect(await account.consumeStreamStart(3)).toMatchObject({ ok: false, retryAfter: 60 });
    expect(t0 + 60_000).toBe(t0 + 60_000);
  });

  it("STREAM_STARTS_PER_MINUTE (10) starts a minute over HTTP; the 11th is 429 with Retry-After", async () => {
    const app = await registerApp();
    freezeClock();
    for (let i = 0; i < 10; i++) expect((await postStream(app, { userId: newUserId(), recording: { mode: "off" } })).status).toBe(201);
    const refused = await postStream(app, { userId: newUserId(), recording: { mode: "off" } });
    expect(refused).toMatchObject({ status: 429, body: { error: "RATE_LIMITED" } });
    expect(refused.headers.get("retry-after")).toBe("60");
    shiftClock(60_000);
    expect((await postStream(app, { userId: newUserId(), recording: { mode: "off" } })).status).toBe(201);
  });
});
