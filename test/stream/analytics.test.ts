import { env, runDurableObjectAlarm } from "cloudflare:test";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { resetClock, shiftClock } from "../../src/clock";
import { ADMIN, call, emulator, expireTimer, inputFor, newUserId, openSocket, registerApp, resetEmulator, startStream, type Json, ingestByWebhook } from "../helpers";

beforeEach(resetEmulator);
afterEach(resetClock);


/** The emulator's real webhook for an ingest change, delivered to us. */
async function ingest(uid: string, action: "connect" | "disconnect"): Promise<void> {
  expect((await ingestByWebhook(uid, action)).body.applied).toBe(true);
}

/** The last recording's delete may settle from a timer: run the stream's due timers until analytics are gone. */
async function waitForGone(streamId: string, headers: Record<string, string>): Promise<void> {
  for (let i = 0; i < 5; i++) {
    if ((await call("GET", `/api/streams/${streamId}/analytics`, undefined, headers)).status === 404) return;
    await runDurableObjectAlarm(env.STREAMS.getByName(streamId));
  }
  expect((await call("GET", `/api/streams/${streamId}/analytics`, undefined, headers)).status).toBe(404);
}

const analytics = async (streamId: string, headers: Record<string, string>) => call("GET", `/api/streams/${streamId}/analytics`, undefined, headers);

describe("per-stream analytics", () => {
  it("are exact for a scripted presence and ingest sequence (clock shifted, no timers of their own)", async () => {
    const [a, b] = [await registerApp(), await registerApp()];
    const userId = newUserId();
    // The script's times are shifted clock; the real time the calls take (well under a second each)
    // adds to them, so sums are exact to within that real time, and everything counted is exact.
    const realStart = Date.now();
    const s = await startStream(a, userId); // t = 0 (the stream's createdAt)
    const input = await inputFor(s.streamId);
    shiftClock(10_000);
    const va = await openSocket(s.streamId, { headers: a.headers }); // 10 s: 1 app viewing
    await va.next("managed_stream_status");
    shiftClock(20_000);
    await ingest(input.uid, "connect"); // 30 s: live
    shiftClock(20_000);
    await startStream(b, userId);
    const vb = await openSocket(s.streamId, { headers: b.headers }); // 50 s: 2 apps
    await vb.next("managed_stream_status");
    while ((await va.next("managed_stream_status")).viewers !== 2);
    shiftClock(40_000);
    vb.ws.close(1000, "bye"); // 90 s: 1 app
    while ((await va.next("managed_stream_status")).viewers !== 1);
    shiftClock(10_000);
    await ingest(input.uid, "disconnect"); // 100 s: the glasses drop
    shiftClock(30_000);
    await ingest(input.uid, "connect"); // 130 s: back (a reconnect)
    shiftClock(20_000); // 150 s: read
    const res = await analytics(s.streamId, a.headers);
    expect(res.status).toBe(200);
    const r = res.body;
    const real = (Date.now() - realStart) / 1000;
    const within = (actual: number, expected: number, slack: number) => expect(Math.abs(actual - expected)).toBeLessThanOrEqual(slack);
    expect(r).toMatchObject({ streamId: s.streamId, peakViewers: 2, uniqueViewers: 2, reconnects: 1 });
    // viewers: 1×40 (10–50) + 2×40 (50–90) + 1×60 (90–150) = 180 viewer-seconds = 3 viewer-minutes
    within(r.viewerMinutes * 60, 180, 2 * real + 0.3);
    // ingest up 30–100 and 130–150
    within(r.liveSeconds, 90, real + 0.5);
    expect(r.timeline.bucketSeconds).toBe(60);
    expect(r.timeline.maxViewers).toEqual([2, 2, 1]);
    // bucket 0: 1×40 + 2×10 = 60 → 1; bucket 1: 2×30 + 1×30 = 90 → 1.5; bucket 2 (30 s so far): 1
    [1, 1.5, 1].forEach((mean, i) => within(r.timeline.meanViewers[i], mean, (2 * real) / 30 + 0.01));
    [30, 40, 20].forEach((up, i) => within(r.timeline.ingestUpSeconds[i], up, real + 0.5));
    expect(real).toBeLessThan(10);
    expect(JSON.stringify(r).length).toBeLessThan(20_480);
  });

  it("stop freezes them, and they are kept as long as the stream's record", async () => {
    const app = await registerApp();
    const s = await startStream(app);
    const v = await openSocket(s.streamId, { headers: app.headers });
    await v.next("managed_stream_status");
    shiftClock(30_000);
    expect((await call("POST", `/api/admin/streams/${s.streamId}/stop`, undefined, ADMIN)).status).toBe(200);
    shiftClock(600_000);
    const r = (await analytics(s.streamId, app.headers)).body;
    expect(r.state).toBe("stopped");
    expect(r.viewerMinutes).toBe(0.5);
    expect(r.timeline.maxViewers).toEqual([1]);
    // (the socket opened a moment after the stream was created)
    expect(r.timeline.meanViewers[0]).toBeCloseTo(1, 1);
    // The purge empties the record and its analytics together.
    await expireTimer(s.streamId, "purge");
    await runDurableObjectAlarm(env.STREAMS.getByName(s.streamId));
    expect((await analytics(s.streamId, app.headers)).status).toBe(404);
  });

  it("a recorded stream's analytics outlive its purge with the recordings' record, and go with its last recording", async () => {
    const [app, other] = [await registerApp(), await registerApp()];
    const s = await startStream(app, undefined, { recording: { mode: "automatic", timeoutSeconds: 30 } });
    await ingest((await inputFor(s.streamId)).uid, "connect");
    expect((await call("POST", `/api/admin/streams/${s.streamId}/stop`, undefined, ADMIN)).status).toBe(200);
    await emulator("POST", "clock", { advanceSeconds: 3600 });
    await expireTimer(s.streamId, "recordings-settle");
    await expireTimer(s.streamId, "purge");
    expect((await call("GET", `/api/streams/${s.streamId}`, undefined, app.headers)).status).toBe(404); // the record is purged
    const kept = await analytics(s.streamId, app.headers);
    expect(kept.status).toBe(200);
    expect(kept.body).toMatchObject({ streamId: s.streamId, state: "stopped", reconnects: 0 });
    expect((await analytics(s.streamId, other.headers)).status).toBe(404);
    const [recording] = (await call("GET", `/api/streams/${s.streamId}/recordings`, undefined, app.headers)).body;
    expect((await call("DELETE", `/api/streams/${s.streamId}/recordings/${recording.recordingId}`, undefined, app.headers)).status).toBeLessThan(300);
    await waitForGone(s.streamId, app.headers);
  });

  it("Cloudflare's live viewer count is read with the input poll, only while the input is connected", async () => {
    const app = await registerApp();
    const s = await startStream(app);
    const v = await openSocket(s.streamId, { headers: app.headers });
    await v.next("managed_stream_status");
    const input = await inputFor(s.streamId);
    const stub = env.STREAMS.getByName(s.streamId);
    await emulator("POST", `live_inputs/${input.uid}/connect`);
    await emulator("POST", `live_inputs/${input.uid}/views`, { liveViewers: 7 });
    await expireTimer(s.streamId, "poll-input");
    await runDurableObjectAlarm(stub);
    let r = (await analytics(s.streamId, app.headers)).body;
    expect(r.liveViewers).toMatchObject({ peak: 7, last: 7 });
    expect(r.timeline.liveViewers.at(-1)).toBe(7);
    // Disconnected: the poll reads the input, not the views.
    await emulator("POST", `live_inputs/${input.uid}/disconnect`);
    await emulator("POST", `live_inputs/${input.uid}/views`, { liveViewers: 9 });
    await expireTimer(s.streamId, "poll-input");
    await runDurableObjectAlarm(stub);
    r = (await analytics(s.streamId, app.headers)).body;
    expect(r.liveViewers).toMatchObject({ peak: 7, last: 7 });
    expect(r.liveSeconds).toBeGreaterThanOrEqual(0);
  });

  it("readable by the apps that took part and the admin, by nobody else", async () => {
    const [app, other] = [await registerApp(), await registerApp()];
    const s = await startStream(app);
    expect((await analytics(s.streamId, app.headers)).status).toBe(200);
    expect((await analytics(s.streamId, ADMIN)).status).toBe(200);
    const refused: Json = await analytics(s.streamId, other.headers);
    expect(refused.status).toBe(404);
    expect(refused.body.error).toBe("STREAM_NOT_FOUND");
    expect((await analytics(s.streamId, { authorization: "Bearer wrong" })).status).toBe(401);
    expect((await analytics(s.streamId, {})).status).toBe(401);
    expect((await analytics("not-a-stream-id", app.headers)).status).toBe(404);
  });
});
