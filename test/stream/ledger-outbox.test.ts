import { env, evictDurableObject, runInDurableObject } from "cloudflare:test";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { clock, freezeClock, resetClock, shiftClock } from "../../src/clock";
import { appObjectUnreachable, call, fireAlarm, openSocket, registerApp, resetEmulator, startStream, streamTimers, waitFor } from "../helpers";

beforeEach(resetEmulator);
afterEach(resetClock);

describe("the per-app ledger outbox", () => {
  it("a release the app's object did not take is retried 5 s later from the alarm, and then delivered", async () => {
    const app = await registerApp();
    const s = await startStream(app);
    const viewer = await openSocket(s.streamId, { headers: app.headers });
    await viewer.next("managed_stream_status");
    const added = await call("POST", `/api/streams/${s.streamId}/outputs`, { url: "rtmp://a.rtmp.youtube.com/live2/ledger" }, app.headers);
    expect(added.status).toBe(200);
    const account = env.APPS.getByName(app.packageName);
    expect(await account.outputCount()).toBe(1);

    const unreachable = await appObjectUnreachable(s.streamId, ["releaseOutput"]);
    const now = freezeClock();
    expect((await call("DELETE", `/api/streams/${s.streamId}/outputs/${added.body.outputId}`, undefined, app.headers)).status).toBeLessThan(300);
    expect(await account.outputCount()).toBe(1);
    expect((await streamTimers(s.streamId))["ledger-outbox"]).toBe(now + 5_000);
    await unreachable.restore();

    shiftClock(4_999);
    await fireAlarm(s.streamId);
    expect(await account.outputCount()).toBe(1);
    shiftClock(1);
    await fireAlarm(s.streamId);
    expect(await account.outputCount()).toBe(0);
    expect(await streamTimers(s.streamId)).not.toHaveProperty("ledger-outbox");
    expect(clock.now()).toBe(now + 5_000);
  });

  it("a commit that keeps failing keeps being retried, and is delivered once the object answers", async () => {
    const app = await registerApp();
    const s = await startStream(app);
    const viewer = await openSocket(s.streamId, { headers: app.headers });
    await viewer.next("managed_stream_status");
    const unreachable = await appObjectUnreachable(s.streamId, ["commitOutput"]);
    const now = freezeClock();
    const added = await call("POST", `/api/streams/${s.streamId}/outputs`, { url: "rtmp://a.rtmp.youtube.com/live2/commit" }, app.headers);
    expect(added.status).toBe(200);
    expect((await streamTimers(s.streamId))["ledger-outbox"]).toBe(now + 5_000);
    shiftClock(5_000);
    await fireAlarm(s.streamId);
    expect((await streamTimers(s.streamId))["ledger-outbox"]).toBe(now + 10_000);
    await unreachable.restore();
    shiftClock(5_000);
    await fireAlarm(s.streamId);
    expect(await streamTimers(s.streamId)).not.toHaveProperty("ledger-outbox");
    // Committed at the app's object (not left pending for its slow reconcile).
    const states = await runInDurableObject(env.APPS.getByName(app.packageName), (_i, state) =>
      state.storage.sql.exec<{ state: string }>("SELECT state FROM output_ledger").toArray().map((r) => r.state),
    );
    expect(states).toEqual(["committed"]);
  });
  it("a release queued but never delivered nor retried (the object evicted first) is delivered when the stream wakes", async () => {
    const app = await registerApp();
    const s = await startStream(app);
    const viewer = await openSocket(s.streamId, { headers: app.headers });
    await viewer.next("managed_stream_status");
    const added = await call("POST", `/api/streams/${s.streamId}/outputs`, { url: "rtmp://a.rtmp.youtube.com/live2/evicted" }, app.headers);
    const account = env.APPS.getByName(app.packageName);
    expect(await account.outputCount()).toBe(1);
    const unreachable = await appObjectUnreachable(s.streamId, ["releaseOutput"]);
    expect((await call("DELETE", `/api/streams/${s.streamId}/outputs/${added.body.outputId}`, undefined, app.headers)).status).toBeLessThan(300);
    await unreachable.restore();
    // As if the object was evicted after the queued release, before its retry timer was written.
    const stub = env.STREAMS.getByName(s.streamId);
    await runInDurableObject(stub, (_i, state) => void state.storage.sql.exec("DELETE FROM schedule WHERE name = 'ledger-outbox'"));
    viewer.ws.close();
    await evictDurableObject(stub);
    expect(await account.outputCount()).toBe(1);
    // The next request wakes the object, which delivers what it still holds.
    expect((await call("GET", `/api/streams/${s.streamId}`, undefined, app.headers)).status).toBe(200);
    await waitFor(async () => (await account.outputCount()) === 0, 5_000, "the release to reach the app's ledger");
  });
});
