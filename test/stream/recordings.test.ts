// Recordings, never orphaned (src/stream/recordings.ts): each promise of issue 14 part 1, and its fault paths,
// against the emulator's videos (emulator/videos.ts).
import { env, runInDurableObject } from "cloudflare:test";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { clock, resetClock, shiftClock } from "../../src/clock";
import { SETTLE_DELAYS_MS } from "../../src/stream/recordings";
import { sweepLeakedInputs } from "../../src/sweep/leak-sweep";
import { signWebhook } from "../../emulator/videos";
import {
  ADMIN,
  EMULATOR,
  call,
  emulator,
  expireTimer,
  inputFor,
  injectFault,
  newUserId,
  registerApp,
  resetEmulator,
  startStream,
  streamTimers,
  type Json,
  type TestApp,
  ingestByWebhook,
} from "../helpers";

beforeEach(resetEmulator);
afterEach(resetClock);

const VIDEO_SECRET = env.STREAM_VIDEO_WEBHOOK_SECRET as string;
const STREAM_API = `${EMULATOR}/client/v4/accounts/local-account/stream`;
const VIDEOS_PATH = "/client/v4/accounts/*/stream/live_inputs/*/videos";
const RECORDED = { recording: { mode: "automatic", timeoutSeconds: 30 } };

async function cf(method: string, path: string): Promise<{ status: number; body: Json }> {
  const res = await fetch(`${STREAM_API}${path}`, { method, headers: { authorization: "Bearer local-dev-token" } });
  return { status: res.status, body: await res.json() };
}

/** The emulator makes a real live-input webhook for an ingest change; it is delivered to us. */
async function ingest(uid: string, action: "connect" | "disconnect"): Promise<void> {
  expect((await ingestByWebhook(uid, action)).status).toBe(200);
}

async function recordedStream(app: TestApp, extra: Record<string, unknown> = {}) {
  const s = await startStream(app, newUserId(), { ...RECORDED, ...extra });
  const input = await inputFor(s.streamId);
  return { streamId: s.streamId as string, input };
}

const recordings = async (app: TestApp, streamId: string) => call("GET", `/api/streams/${streamId}/recordings`, undefined, app.headers);
const videosBy = async (creator: string): Promise<Json[]> => (await cf("GET", `?creator=${creator}`)).body.result;
const stop = (streamId: string) => call("POST", `/api/admin/streams/${streamId}/stop`, undefined, ADMIN);

/** Drops a timer as a crash would have before it was written (or after it ran). */
async function dropTimer(streamId: string, timer: string): Promise<void> {
  await runInDurableObject(env.STREAMS.getByName(streamId), (_i, state) => {
    state.storage.sql.exec("DELETE FROM schedule WHERE name = ?", timer);
  });
}

/** The emulator's ready delay passes (its own clock), so the next read sees `ready`. */
const videosBecomeReady = () => emulator("POST", "clock", { advanceSeconds: 3600 });

describe("recordings are never orphaned", () => {
  it("every live input we create carries defaultCreator = the streamId, so its videos name the stream", async () => {
    const app = await registerApp();
    const { streamId, input } = await recordedStream(app);
    await ingest(input.uid, "connect");
    const videos = await videosBy(streamId);
    expect(videos).toHaveLength(1);
    expect(videos[0]).toMatchObject({ creator: streamId, liveInput: input.uid, status: { state: "live-inprogress" } });
  });

  it("the stream learns each video uid after each connect, durably (a timer set with the connect)", async () => {
    const app = await registerApp();
    const { streamId, input } = await recordedStream(app);
    await ingest(input.uid, "connect");
    expect(Object.keys(await streamTimers(streamId))).toContain("recordings-capture");
    await expireTimer(streamId, "recordings-capture");
    const first = (await recordings(app, streamId)).body;
    expect(first).toEqual([expect.objectContaining({ state: "recording", endedAt: null, hlsUrl: null })]);
    // A reconnect past the input's window makes a second video: learned at that connect.
    await ingest(input.uid, "disconnect");
    await emulator("POST", "clock", { advanceSeconds: 31 });
    await ingest(input.uid, "connect");
    await expireTimer(streamId, "recordings-capture");
    const both = (await recordings(app, streamId)).body;
    expect(both.map((r: Json) => r.recordingId)).toEqual((await videosBy(streamId)).map((v: Json) => v.uid).reverse());
    expect(both.map((r: Json) => r.state)).toEqual(["processing", "recording"]);
  });

  it("a stream deleted while live keeps its recording: listed before the input is deleted, then settled to ready", async () => {
    const app = await registerApp();
    const { streamId, input } = await recordedStream(app);
    await ingest(input.uid, "connect");
    await dropTimer(streamId, "recordings-capture"); // not captured yet
    expect((await stop(streamId)).body.status).toBe("stopped");
    expect(await inputFor(streamId)).toBeUndefined();
    const listed = (await recordings(app, streamId)).body;
    expect(listed).toHaveLength(1);
    expect(listed[0].recordingId).toBe((await videosBy(streamId))[0].uid);
    expect(Object.keys(await streamTimers(streamId))).toContain("recordings-settle");
    await videosBecomeReady();
    await expireTimer(streamId, "recordings-settle");
    const [ready] = (await recordings(app, streamId)).body;
    expect(ready).toMatchObject({ state: "ready", hlsUrl: expect.stringContaining(`${ready.recordingId}/manifest/video.m3u8`), dashUrl: expect.any(String), thumbnailUrl: expect.any(String) });
    expect(ready.durationSeconds).toBeGreaterThanOrEqual(0);
    expect(Date.parse(ready.endedAt)).toBeGreaterThanOrEqual(Date.parse(ready.startedAt));
    expect(Object.keys(await streamTimers(streamId))).not.toContain("recordings-settle");
  });

  it("a crash between connect and capture, and a failing listing at the stop: the settle still finds it by creator", async () => {
    const app = await registerApp();
    const { streamId, input } = await recordedStream(app);
    await ingest(input.uid, "connect");
    await dropTimer(streamId, "recordings-capture");
    await injectFault({ method: "GET", path: VIDEOS_PATH, status: 500, count: 5 });
    await stop(streamId);
    expect((await recordings(app, streamId)).body).toEqual([]);
    await videosBecomeReady();
    await expireTimer(streamId, "recordings-settle");
    const listed = (await recordings(app, streamId)).body;
    expect(listed).toEqual([expect.objectContaining({ recordingId: (await videosBy(streamId))[0].uid, state: "ready" })]);
  });

  it("the settle is bounded: one listing per pass, at most 7, then what never became ready is an error", async () => {
    await emulator("POST", "config", { videoReadyDelaySeconds: 86_400 * 365 });
    const app = await registerApp();
    const { streamId, input } = await recordedStream(app);
    await ingest(input.uid, "connect");
    await stop(streamId);
    const since = Date.now();
    for (let pass = 1; pass <= SETTLE_DELAYS_MS.length; pass++) {
      expect(Object.keys(await streamTimers(streamId)), `pass ${pass}`).toContain("recordings-settle");
      await expireTimer(streamId, "recordings-settle");
    }
    expect(Object.keys(await streamTimers(streamId))).not.toContain("recordings-settle");
    // This stream's listings only: other tests' streams in this file may settle in the background meanwhile.
    const { calls } = await emulator("GET", `calls?since=${since}`);
    expect(calls.filter((c: Json) => c.query?.includes(`creator=${streamId}`)).length).toBe(SETTLE_DELAYS_MS.length);
    expect((await recordings(app, streamId)).body).toEqual([expect.objectContaining({ state: "error", hlsUrl: null })]);
  });

  it("the signed ready webhook settles a recording at once; a bad signature is 401 and changes nothing", async () => {
    const app = await registerApp();
    const { streamId, input } = await recordedStream(app);
    await ingest(input.uid, "connect");
    await stop(streamId);
    await cf("GET", ""); // lets the emulator see the end
    await emulator("DELETE", "webhooks");
    await fetch(`${STREAM_API}/webhook`, { method: "PUT", headers: { authorization: "Bearer local-dev-token" }, body: JSON.stringify({ notificationUrl: "http://coordinator.test/x" }) });
    await videosBecomeReady();
    const delivery = (await emulator("GET", "webhooks")).deliveries.find((d: Json) => d.event === "video.ready");
    expect(delivery).toBeDefined();
    const body: string = delivery.body;
    // Cloudflare signs with the secret PUT /stream/webhook gave; ours is that secret (STREAM_VIDEO_WEBHOOK_SECRET).
    const time = String(Math.floor(clock.now() / 1000));
    const post = async (signature: string) =>
      call("POST", "/api/webhooks/cloudflare-stream-video", body, { "webhook-signature": signature, "content-type": "application/json" });
    const before = (await recordings(app, streamId)).body;
    expect(before).toEqual([expect.objectContaining({ state: "recording" })]);
    for (const bad of [`time=${time},sig1=${await signWebhook("wrong-secret", time, body)}`, `time=${time}`, "", `time=${Number(time) - 600},sig1=${await signWebhook(VIDEO_SECRET, String(Number(time) - 600), body)}`]) {
      const res = await post(bad);
      expect(res.status, bad).toBe(401);
      expect(res.body.error).toBe("UNAUTHORIZED");
    }
    expect((await recordings(app, streamId)).body).toEqual(before); // no state change
    const ok = await post(`time=${time},sig1=${await signWebhook(VIDEO_SECRET, time, body)}`);
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({ ok: true, streamId, applied: true });
    expect((await recordings(app, streamId)).body).toEqual([expect.objectContaining({ state: "ready" })]);
    expect(Object.keys(await streamTimers(streamId))).not.toContain("recordings-settle");
  });

  it("GET recordings: apps that took part and the admin; others and unknown streams get 404 JSON", async () => {
    const app = await registerApp();
    const other = await registerApp();
    const { streamId, input } = await recordedStream(app);
    await ingest(input.uid, "connect");
    await expireTimer(streamId, "recordings-capture");
    expect((await recordings(app, streamId)).body).toHaveLength(1);
    expect((await call("GET", `/api/admin/streams/${streamId}/recordings`, undefined, ADMIN)).body).toHaveLength(1);
    const stranger = await recordings(other, streamId);
    expect(stranger.status).toBe(404);
    expect(stranger.body.error).toBe("STREAM_NOT_FOUND");
    expect((await recordings(app, "x".repeat(21))).body.error).toBe("STREAM_NOT_FOUND");
    expect((await call("GET", `/api/streams/${streamId}/recordings`)).status).toBe(401);
  });
});

describe("deleting a recording", () => {
  async function liveRecording(app: TestApp) {
    const { streamId, input } = await recordedStream(app);
    await ingest(input.uid, "connect");
    await expireTimer(streamId, "recordings-capture");
    const [rec] = (await recordings(app, streamId)).body;
    return { streamId, recordingId: rec.recordingId as string };
  }

  it("the app that started the stream and the admin may; a participant that did not start it gets 403; unknown is 404", async () => {
    const app = await registerApp();
    const joiner = await registerApp();
    const { streamId, recordingId } = await liveRecording(app);
    const userId = (await call("GET", `/api/streams/${streamId}`, undefined, app.headers)).body;
    void userId;
    await runInDurableObject(env.STREAMS.getByName(streamId), (_i, state) => {
      state.storage.sql.exec("INSERT INTO participants (package_name, joined_at) VALUES (?, ?)", joiner.packageName, Date.now());
    });
    const forbidden = await call("DELETE", `/api/streams/${streamId}/recordings/${recordingId}`, undefined, joiner.headers);
    expect(forbidden.status).toBe(403);
    expect(forbidden.body.error).toBe("FORBIDDEN");
    expect((await cf("GET", `/${recordingId}`)).status).toBe(200);
    const unknown = await call("DELETE", `/api/streams/${streamId}/recordings/nope`, undefined, app.headers);
    expect(unknown.status).toBe(404);
    expect(unknown.body.error).toBe("RECORDING_NOT_FOUND");
    const del = await call("DELETE", `/api/streams/${streamId}/recordings/${recordingId}`, undefined, app.headers);
    expect(del.status).toBe(200);
    expect((await cf("GET", `/${recordingId}`)).status).toBe(404);
    expect((await recordings(app, streamId)).body).toEqual([expect.objectContaining({ recordingId, state: "deleted", hlsUrl: null, expiresAt: null })]);
    // A deleted recording is never brought back by a later capture.
    await expireTimer(streamId, "recordings-capture").catch(() => undefined);
    expect((await recordings(app, streamId)).body[0].state).toBe("deleted");
    const { recordingId: second, streamId: s2 } = await liveRecording(app);
    expect((await call("DELETE", `/api/admin/streams/${s2}/recordings/${second}`, undefined, ADMIN)).status).toBe(200);
  });

  it("a lost answer on the delete is settled by reading the truth (200), a delete Cloudflare did not confirm is finished by the timer (202)", async () => {
    const app = await registerApp();
    const { streamId, recordingId } = await liveRecording(app);
    await injectFault({ method: "DELETE", path: "/client/v4/accounts/*/stream/*", status: 500, afterEffect: true });
    expect((await call("DELETE", `/api/streams/${streamId}/recordings/${recordingId}`, undefined, app.headers)).status).toBe(200);
    expect((await cf("GET", `/${recordingId}`)).status).toBe(404);

    const other = await liveRecording(app);
    await injectFault({ method: "DELETE", path: "/client/v4/accounts/*/stream/*", drop: true, count: 2 });
    const pending = await call("DELETE", `/api/streams/${other.streamId}/recordings/${other.recordingId}`, undefined, app.headers);
    expect(pending.status).toBe(202);
    expect((await recordings(app, other.streamId)).body[0].state).toBe("deleted");
    expect((await cf("GET", `/${other.recordingId}`)).status).toBe(200); // still at Cloudflare
    await expireTimer(other.streamId, "recordings-expire");
    expect((await cf("GET", `/${other.recordingId}`)).status).toBe(404);
  });
});

describe("retention is ours", () => {
  it("a client's deleteRecordingAfterDays: null is never unbounded, and our own delete runs at RECORDING_RETENTION_DAYS; the compact record lives as long as the recordings", async () => {
    const app = await registerApp();
    const { streamId, input } = await recordedStream(app, { deleteRecordingAfterDays: null });
    expect(input.deleteRecordingAfterDays).toBe(30);
    await ingest(input.uid, "connect");
    await stop(streamId);
    await videosBecomeReady();
    await expireTimer(streamId, "recordings-settle");
    const [ready] = (await recordings(app, streamId)).body;
    expect(Date.parse(ready.expiresAt) - clock.now()).toBeGreaterThan(29 * 86_400_000);
    // Counted from when it became ready (on the emulator's clock, an hour ahead here).
    expect(Date.parse(ready.expiresAt) - clock.now()).toBeLessThanOrEqual(30 * 86_400_000 + 3_700_000);
    // The stream's snapshot is purged after a day; its recordings stay readable by the apps that took part.
    shiftClock(25 * 3_600_000);
    await expireTimer(streamId, "purge");
    expect((await call("GET", `/api/streams/${streamId}`, undefined, app.headers)).status).toBe(404);
    expect((await recordings(app, streamId)).body).toEqual([expect.objectContaining({ recordingId: ready.recordingId, state: "ready" })]);
    // At retention we delete it ourselves; then nothing of the stream is left.
    shiftClock(30 * 86_400_000);
    await expireTimer(streamId, "recordings-expire");
    expect((await cf("GET", `/${ready.recordingId}`)).status).toBe(404);
    expect((await recordings(app, streamId)).status).toBe(404);
    expect(await streamTimers(streamId)).toEqual({});
  });
});

describe("the leak sweep covers videos", () => {
  it("deletes videos of streams we do not know and past retention; keeps a live stream's, even one it has not captured", async () => {
    const app = await registerApp();
    const { streamId, input } = await recordedStream(app);
    await ingest(input.uid, "connect");
    await dropTimer(streamId, "recordings-capture");
    // A video whose stream we never knew (its input gone): an input made behind our back with a streamId-like creator.
    const ghost = "ghost0000000000000000";
    const res = await fetch(`${STREAM_API}/live_inputs`, {
      method: "POST",
      headers: { authorization: "Bearer local-dev-token", "content-type": "application/json" },
      body: JSON.stringify({ recording: { mode: "automatic" }, defaultCreator: ghost }),
    });
    const ghostInput = ((await res.json()) as Json).result;
    await emulator("POST", `live_inputs/${ghostInput.uid}/connect`);
    const notOurs = await fetch(`${STREAM_API}/live_inputs`, {
      method: "POST",
      headers: { authorization: "Bearer local-dev-token", "content-type": "application/json" },
      body: JSON.stringify({ recording: { mode: "automatic" }, defaultCreator: "someone-else" }),
    });
    await emulator("POST", `live_inputs/${((await notOurs.json()) as Json).result.uid}/connect`);
    const report = await sweepLeakedInputs(env, Date.now() + 11 * 60_000);
    const [ghostVideo] = await videosBy(ghost);
    expect(ghostVideo).toBeUndefined();
    expect(report.videosDeleted).toHaveLength(1);
    expect(await videosBy(streamId)).toHaveLength(1);
    expect(await videosBy("someone-else")).toHaveLength(1);
    // The live stream adopted the video the sweep showed it.
    expect((await recordings(app, streamId)).body).toHaveLength(1);
  });
});

describe("the latest ready recording is carried by the stream's view, managed_stream_status and the watch view", () => {
  it("once ready: in GET /api/streams/:id, in the next status push while live, and from latestRecording()/watchView() after the purge", async () => {
    const { openSocket } = await import("../helpers");
    const app = await registerApp();
    const { streamId, input } = await recordedStream(app);
    const viewer = await openSocket(streamId, { headers: app.headers });
    await viewer.next("managed_stream_status");
    await ingest(input.uid, "connect");
    await expireTimer(streamId, "recordings-capture");
    expect((await call("GET", `/api/streams/${streamId}`, undefined, app.headers)).body).not.toHaveProperty("latestRecording");
    // The glasses drop past the window: the first recording ends and becomes ready; the reconnect's capture learns it.
    await ingest(input.uid, "disconnect");
    await videosBecomeReady();
    await ingest(input.uid, "connect");
    await expireTimer(streamId, "recordings-capture");
    const [first] = (await recordings(app, streamId)).body;
    expect(first.state).toBe("ready");
    const snapshot = (await call("GET", `/api/streams/${streamId}`, undefined, app.headers)).body;
    expect(snapshot.latestRecording).toMatchObject({ recordingId: first.recordingId, state: "ready", hlsUrl: first.hlsUrl });
    let pushed: Json;
    do pushed = await viewer.next("managed_stream_status");
    while (!pushed.latestRecording);
    expect(pushed.latestRecording).toEqual({ recordingId: first.recordingId, hlsUrl: first.hlsUrl, dashUrl: first.dashUrl, thumbnailUrl: first.thumbnailUrl, durationSeconds: first.durationSeconds });
    await stop(streamId);
    shiftClock(25 * 3_600_000);
    await expireTimer(streamId, "purge");
    const stub = env.STREAMS.getByName(streamId);
    expect(await stub.latestRecording()).toMatchObject({ recordingId: first.recordingId, state: "ready" });
    expect(await stub.watchView(null)).toMatchObject({ state: "offline", streamId, latestRecording: { recordingId: first.recordingId, hlsUrl: first.hlsUrl } });
  });
});

describe("what recordings cost", () => {
  it("a recording costs 5 Stream calls from connect to our retention delete (capture, pre-delete listing, 2 settle passes, delete), none per live hour", async () => {
    await emulator("POST", "config", { videoReadyDelaySeconds: 60 }); // Cloudflare: ready within about a minute
    const app = await registerApp();
    const { streamId, input } = await recordedStream(app);
    const since = Date.now();
    await ingest(input.uid, "connect");
    await expireTimer(streamId, "recordings-capture");
    await stop(streamId);
    await emulator("POST", "clock", { advanceSeconds: 30 });
    await expireTimer(streamId, "recordings-settle"); // +30 s: still processing
    expect((await recordings(app, streamId)).body[0].state).toBe("processing");
    await emulator("POST", "clock", { advanceSeconds: 60 });
    await expireTimer(streamId, "recordings-settle"); // +90 s: ready
    expect((await recordings(app, streamId)).body[0].state).toBe("ready");
    expect(Object.keys(await streamTimers(streamId))).not.toContain("recordings-settle");
    shiftClock(31 * 86_400_000);
    await expireTimer(streamId, "recordings-expire");
    const { calls } = await emulator("GET", `calls?since=${since}`);
    // Video calls: an input's /videos, and /stream[/…] outside the live-input API.
    const videoCalls = calls.filter((c: Json) => c.path.endsWith("/videos") || (/\/stream(\/|$)/.test(c.path) && !c.path.includes("/live_inputs")));
    expect(videoCalls.map((c: Json) => `${c.method} ${c.path.replace(/[0-9a-f]{32}/g, ":id")}`)).toEqual([
      "GET /client/v4/accounts/local-account/stream/live_inputs/:id/videos",
      "GET /client/v4/accounts/local-account/stream/live_inputs/:id/videos",
      "GET /client/v4/accounts/local-account/stream",
      "GET /client/v4/accounts/local-account/stream",
      "DELETE /client/v4/accounts/local-account/stream/:id",
    ]);
  });
});
