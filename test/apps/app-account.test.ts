import { env, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { AppAccount } from "../../src/apps/app-account";
import { freezeClock, resetClock, shiftClock } from "../../src/clock";
import { ADMIN, call, newUserId, postStream, registerApp, resetEmulator } from "../helpers";

beforeEach(resetEmulator);
afterEach(resetClock);

describe("stream starts per app", () => {
  it("the start-rate window is one minute: full just before it ends, free again at one minute", async () => {
    const app = await registerApp();
    const account = env.APPS.getByName(app.packageName);
    const t0 = freezeClock();
    for (let i = 0; i < 3; i++) expect(await account.consumeStreamStart(3)).toEqual({ ok: true });
    shiftClock(30_000);
    expect(await account.consumeStreamStart(3)).toMatchObject({
      ok: false,
      status: 429,
      error: "RATE_LIMITED",
      message: "Too many stream starts: at most 3 per minute per app",
      retryAfter: 30,
    });
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

describe("an app's account", () => {
  it("two registrations of one name at the same moment: one key is issued, the other is APP_EXISTS (never a 500)", async () => {
    const packageName = `com.test.race.${crypto.randomUUID().slice(0, 8)}`;
    const replies = await Promise.all([0, 1, 2].map(() => call("POST", "/api/admin/apps", { packageName }, ADMIN)));
    expect(replies.map((r) => r.status).sort()).toEqual([201, 409, 409]);
    expect(replies.filter((r) => r.status === 409).map((r) => r.body)).toEqual([
      { error: "APP_EXISTS", message: `App ${packageName} is already registered` },
      { error: "APP_EXISTS", message: `App ${packageName} is already registered` },
    ]);
  });

  it("a registration that started while another was hashing its key does not overwrite it: APP_EXISTS, the first key kept", async () => {
    const packageName = `com.test.race.${crypto.randomUUID().slice(0, 8)}`;
    const account = env.APPS.getByName(packageName);
    // Called on the instance, both start before either has stored its key (they interleave at the hash's await).
    const [first, second] = await runInDurableObject(account, (instance) => {
      const app = instance as unknown as AppAccount;
      return Promise.all([app.register(packageName), app.register(packageName)]);
    });
    expect(first).toMatchObject({ ok: true });
    expect(second).toEqual({ ok: false, status: 409, error: "APP_EXISTS", message: `App ${packageName} is already registered` });
    expect(await account.verifyKey((first as { apiKey: string }).apiKey)).toBe(true);
  });

  it("an app removed and registered again starts with a fresh start allowance and a new key", async () => {
    const app = await registerApp();
    const account = env.APPS.getByName(app.packageName);
    freezeClock();
    for (let i = 0; i < 3; i++) await account.consumeStreamStart(3);
    expect(await account.consumeStreamStart(3)).toMatchObject({ ok: false, error: "RATE_LIMITED" });
    expect(await account.remove()).toEqual({ ok: true });
    expect(await account.verifyKey(app.apiKey)).toBe(false);
    const again = await account.register(app.packageName);
    expect(again).toMatchObject({ ok: true });
    expect(await account.consumeStreamStart(3)).toEqual({ ok: true });
    expect(await account.verifyKey(app.apiKey)).toBe(false);
    expect(await account.verifyKey((again as { apiKey: string }).apiKey)).toBe(true);
  });

  it("a start is counted only behind a valid key, and not at all when no start is asked", async () => {
    const app = await registerApp();
    const account = env.APPS.getByName(app.packageName);
    freezeClock();
    expect(await account.authorize("sc_wrong", 1)).toEqual({ valid: false, start: null });
    expect(await account.authorize(app.apiKey, null)).toEqual({ valid: true, start: null });
    expect(await account.authorize(app.apiKey, 1)).toEqual({ valid: true, start: { ok: true } });
    expect(await account.authorize(app.apiKey, 1)).toMatchObject({ valid: true, start: { ok: false, error: "RATE_LIMITED", retryAfter: 60 } });
  });

  it("an unregistered app has no key to check, rotate or remove", async () => {
    const account = env.APPS.getByName(`com.test.none.${crypto.randomUUID().slice(0, 8)}`);
    expect(await account.verifyKey("sc_anything")).toBe(false);
    expect(await account.rotateKey()).toMatchObject({ ok: false, status: 404, error: "APP_NOT_FOUND", message: "App is not registered" });
    expect(await account.remove()).toMatchObject({ ok: false, status: 404, error: "APP_NOT_FOUND", message: "App is not registered" });
  });
});

/** A stream object holding one output row in `state` (as its add left it), without a stream around it. */
async function streamHolding(streamId: string, outputId: string, state: "pending" | "ready" | "deleting"): Promise<void> {
  await runInDurableObject(env.STREAMS.getByName(streamId), (_i, s) => {
    s.storage.sql.exec(
      `INSERT INTO outputs (output_id, added_by, url, normalized_url, masked_url, server, stream_key, state, created_at)
       VALUES (?, 'com.test', 'rtmp://h/app/k', ?, 'rtmp://h/app/****', 'rtmp://h/app', 'k', ?, 0)
       ON CONFLICT(output_id) DO UPDATE SET state = excluded.state`,
      outputId,
      `rtmp://h/app/${outputId}`,
      state,
    );
  });
}

describe("the output ledger's reconcile (reservations a crash left pending)", () => {
  const ledgerOf = (account: DurableObjectStub<import("../../src/apps/app-account").AppAccount>) =>
    runInDurableObject(account, (_i, s) =>
      Object.fromEntries(s.storage.sql.exec<{ output_id: string; state: string }>("SELECT output_id, state FROM output_ledger").toArray().map((r) => [r.output_id, r.state])),
    );
  const alarmOf = (account: DurableObjectStub<import("../../src/apps/app-account").AppAccount>) =>
    runInDurableObject(account, (_i, s) => s.storage.getAlarm());
  const newStreamId = () => `stream-${crypto.randomUUID()}`;

  it("a reservation pending for 2 minutes whose stream never made the output gives its slot back; one pending less long keeps it", async () => {
    const account = env.APPS.getByName((await registerApp()).packageName);
    freezeClock();
    expect(await account.reserveOutput(newStreamId(), "out-never")).toBe(true);
    shiftClock(2 * 60_000 - 1);
    expect(await runDurableObjectAlarm(account)).toBe(true);
    expect(await ledgerOf(account)).toEqual({ "out-never": "pending" });
    shiftClock(1);
    expect(await runDurableObjectAlarm(account)).toBe(true);
    expect(await ledgerOf(account)).toEqual({});
    expect(await account.outputCount()).toBe(0);
    // Nothing is pending any more: no reconcile is left armed.
    expect(await alarmOf(account)).toBeNull();
  });

  it("a reservation whose stream is deleting the output gives its slot back", async () => {
    const account = env.APPS.getByName((await registerApp()).packageName);
    const streamId = newStreamId();
    await streamHolding(streamId, "out-going", "deleting");
    freezeClock();
    await account.reserveOutput(streamId, "out-going");
    shiftClock(2 * 60_000);
    await runDurableObjectAlarm(account);
    expect(await ledgerOf(account)).toEqual({});
  });

  it("a reservation whose output is live at its stream is committed, and then keeps its slot for good (the per-app cap holds)", async () => {
    const account = env.APPS.getByName((await registerApp()).packageName);
    const [live, never] = [newStreamId(), newStreamId()];
    await streamHolding(live, "out-live", "ready");
    freezeClock();
    await account.reserveOutput(live, "out-live");
    await account.reserveOutput(never, "out-never");
    shiftClock(2 * 60_000);
    await runDurableObjectAlarm(account);
    expect(await ledgerOf(account)).toEqual({ "out-live": "committed" });
    // A committed slot is never looked at again, however old.
    shiftClock(24 * 3_600_000);
    await runInDurableObject(account, async (_i, s) => void (await s.storage.setAlarm(Date.now())));
    await runDurableObjectAlarm(account);
    expect(await ledgerOf(account)).toEqual({ "out-live": "committed" });
    expect(await account.outputCount()).toBe(1);
  });

  it("a reservation its stream is still adding stays pending, is looked at again a minute later, and is committed once the add lands", async () => {
    const account = env.APPS.getByName((await registerApp()).packageName);
    const streamId = newStreamId();
    await streamHolding(streamId, "out-slow", "pending");
    const t0 = freezeClock();
    await account.reserveOutput(streamId, "out-slow");
    shiftClock(2 * 60_000);
    await runDurableObjectAlarm(account);
    expect(await ledgerOf(account)).toEqual({ "out-slow": "pending" });
    expect(await alarmOf(account)).toBe(t0 + 2 * 60_000 + 60_000);
    await streamHolding(streamId, "out-slow", "ready");
    shiftClock(60_000);
    await runDurableObjectAlarm(account);
    expect(await ledgerOf(account)).toEqual({ "out-slow": "committed" });
    expect(await alarmOf(account)).toBeNull();
  });

  it("the reconcile is due 2 minutes after the oldest pending reservation, also when a reservation is refused at the cap", async () => {
    const account = env.APPS.getByName((await registerApp()).packageName);
    const t0 = freezeClock();
    await account.reserveOutput(newStreamId(), "out-0");
    expect(await alarmOf(account)).toBe(t0 + 2 * 60_000);
    shiftClock(30_000);
    for (let i = 1; i < 10; i++) await account.reserveOutput(newStreamId(), `out-${i}`);
    expect(await alarmOf(account)).toBe(t0 + 2 * 60_000);
    // The cap is full of pending reservations: a refused one still (re)arms the reconcile that may free them.
    await runInDurableObject(account, async (_i, s) => void (await s.storage.deleteAlarm()));
    expect(await account.reserveOutput(newStreamId(), "out-10")).toBe(false);
    expect(await alarmOf(account)).toBe(t0 + 2 * 60_000);
  });

  it("a reservation made when the oldest pending one is already overdue arms the reconcile a second later, not in the past", async () => {
    const account = env.APPS.getByName((await registerApp()).packageName);
    const t0 = freezeClock();
    await account.reserveOutput(newStreamId(), "out-old");
    shiftClock(10 * 60_000);
    await account.reserveOutput(newStreamId(), "out-new");
    expect(await alarmOf(account)).toBe(t0 + 10 * 60_000 + 1_000);
  });

  it("a stream that cannot answer is logged and its reservation stays pending; the other reservations are still settled", async () => {
    const account = env.APPS.getByName((await registerApp()).packageName);
    const [broken, never] = [newStreamId(), newStreamId()];
    // A stream object whose outputs table cannot be read: its hasOutput() throws.
    await runInDurableObject(env.STREAMS.getByName(broken), (_i, s) => {
      s.storage.sql.exec("DROP TABLE outputs");
      s.storage.sql.exec("CREATE TABLE outputs (unrelated TEXT)");
    });
    const t0 = freezeClock();
    await account.reserveOutput(broken, "out-broken");
    await account.reserveOutput(never, "out-never");
    const logged = vi.spyOn(console, "error").mockImplementation(() => undefined);
    try {
      shiftClock(2 * 60_000);
      await runDurableObjectAlarm(account);
      expect(logged).toHaveBeenCalledWith("ledger reconcile: stream unreachable", expect.stringContaining("output_id"));
    } finally {
      logged.mockRestore();
    }
    expect(await ledgerOf(account)).toEqual({ "out-broken": "pending" });
    expect(await alarmOf(account)).toBe(t0 + 2 * 60_000 + 60_000);
  });

  it("once every reservation is committed or released, the next reconcile leaves no alarm behind", async () => {
    const account = env.APPS.getByName((await registerApp()).packageName);
    freezeClock();
    await account.reserveOutput(newStreamId(), "out-a");
    await account.reserveOutput(newStreamId(), "out-b");
    await account.commitOutput("out-a");
    await account.releaseOutput("out-b");
    expect(await runDurableObjectAlarm(account)).toBe(true);
    expect(await alarmOf(account)).toBeNull();
    expect(await ledgerOf(account)).toEqual({ "out-a": "committed" });
  });
});
