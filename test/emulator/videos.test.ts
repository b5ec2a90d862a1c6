// The emulator's videos (emulator/videos.ts): a live input's recordings, as Cloudflare Stream keeps them. Every
// answer is checked against the cloudflare SDK's types and, with the fixture, Cloudflare's published schema
// (api() and checkedFetch).
import Cloudflare from "cloudflare";
import { beforeEach, describe, expect, it } from "vitest";
import { StreamEmulator, type VideoEvent } from "../../emulator/core.ts";
import { signWebhook } from "../../emulator/videos.ts";
import { ACCOUNT, BASE, INPUTS, TOKEN, api, control, createInput, reset, state, type Json } from "./helpers.ts";
import { checkedFetch } from "./openapi.ts";

const STREAM = `${BASE}/client/v4/accounts/${ACCOUNT}/stream`;
const RECORDED = { recording: { mode: "automatic", timeoutSeconds: 30 }, deleteRecordingAfterDays: 30, defaultCreator: "stream-abc" };

beforeEach(() => reset());

const advance = (seconds: number) => control("POST", "clock", { advanceSeconds: seconds });
const connect = (uid: string) => control("POST", `live_inputs/${uid}/connect`);
const disconnect = (uid: string) => control("POST", `live_inputs/${uid}/disconnect`);
const videosOf = async (uid: string): Promise<Json[]> => (await api("GET", `${INPUTS}/${uid}/videos`)).body.result;
const video = async (uid: string): Promise<Json> => (await api("GET", `${STREAM}/${uid}`)).body.result;

describe("videos: a live input's recordings", () => {
  it("a connect creates a live-inprogress video of the input, its creator the input's defaultCreator", async () => {
    const li = await createInput(RECORDED);
    expect(await videosOf(li.uid)).toEqual([]);
    await connect(li.uid);
    const [v] = await videosOf(li.uid);
    expect(v).toMatchObject({ liveInput: li.uid, creator: "stream-abc", readyToStream: false, status: { state: "live-inprogress" }, duration: -1 });
    expect(v.uid).toMatch(/^[0-9a-f]{32}$/);
    expect(v.uid).not.toBe(li.uid);
    expect(v).not.toHaveProperty("thumbnail");
    expect(v).not.toHaveProperty("scheduledDeletion");
    expect(await video(v.uid)).toEqual(v);
  });

  it("an input without recording (mode off) makes no video", async () => {
    const li = await createInput({ defaultCreator: "c" });
    await connect(li.uid);
    await disconnect(li.uid);
    await advance(120);
    expect(await videosOf(li.uid)).toEqual([]);
  });

  it("a reconnect within recording.timeoutSeconds continues the same video; past it a new video starts", async () => {
    const li = await createInput(RECORDED);
    await connect(li.uid);
    await advance(6);
    await disconnect(li.uid);
    await advance(29);
    await connect(li.uid);
    const [first, ...rest] = await videosOf(li.uid);
    expect(rest).toEqual([]);
    expect(first.status.state).toBe("live-inprogress");
    await advance(4);
    await disconnect(li.uid);
    await advance(31);
    // The window passed: the first video is final, and the next connect starts a second one.
    expect((await video(first.uid)).status.state).toBe("inprogress");
    await connect(li.uid);
    const list = await videosOf(li.uid);
    expect(list.map((v: Json) => v.uid)).toEqual([expect.any(String), first.uid]); // newest first
    expect(list[0].uid).not.toBe(first.uid);
    expect(list[0].status.state).toBe("live-inprogress");
  });

  it("after the window the video is inprogress, then ready after videoReadyDelaySeconds with duration, playback, thumbnail, preview and scheduledDeletion", async () => {
    await control("POST", "config", { videoReadyDelaySeconds: 40 });
    const li = await createInput({ ...RECORDED, deleteRecordingAfterDays: 45 });
    await connect(li.uid);
    await advance(6);
    await disconnect(li.uid);
    await advance(10);
    await connect(li.uid);
    await advance(3);
    await disconnect(li.uid);
    const [v] = await videosOf(li.uid);
    await advance(30);
    const processing = await video(v.uid);
    expect(processing).toMatchObject({ status: { state: "inprogress" }, readyToStream: false });
    expect(processing.duration).toBeCloseTo(9, 0);
    await advance(39);
    expect((await video(v.uid)).status.state).toBe("inprogress");
    await advance(1);
    const ready = await video(v.uid);
    expect(ready).toMatchObject({ status: { state: "ready" }, readyToStream: true, liveInput: li.uid, creator: "stream-abc" });
    expect(ready.duration).toBeCloseTo(9, 0); // the two sessions, not the gap between them
    expect(ready.playback).toEqual({
      hls: `http://127.0.0.1:8788/playback/${v.uid}/manifest/video.m3u8`,
      dash: `http://127.0.0.1:8788/playback/${v.uid}/manifest/video.mpd`,
    });
    expect(ready.thumbnail).toBe(`http://127.0.0.1:8788/playback/${v.uid}/thumbnails/thumbnail.jpg`);
    expect(ready.preview).toBe(`http://127.0.0.1:8788/playback/${v.uid}/watch`);
    expect(Date.parse(ready.scheduledDeletion) - Date.parse(ready.readyToStreamAt)).toBe(45 * 86_400_000);
  });

  it("a video is deleted at its scheduledDeletion", async () => {
    await control("POST", "config", { videoReadyDelaySeconds: 0 });
    const li = await createInput({ ...RECORDED, recording: { mode: "automatic", timeoutSeconds: 1 } });
    await connect(li.uid);
    await disconnect(li.uid);
    await advance(2);
    const [v] = await videosOf(li.uid);
    expect(v.status.state).toBe("ready");
    await advance(30 * 86_400 - 60);
    expect((await api("GET", `${STREAM}/${v.uid}`)).status).toBe(200);
    await advance(120);
    expect((await api("GET", `${STREAM}/${v.uid}`)).status).toBe(404);
  });

  it("videos survive the input's deletion: the input's listing is gone (404), GET /stream still finds them", async () => {
    const li = await createInput(RECORDED);
    await connect(li.uid);
    const [v] = await videosOf(li.uid);
    expect((await api("DELETE", `${INPUTS}/${li.uid}`)).status).toBe(200); // deleted while live
    const gone = await api("GET", `${INPUTS}/${li.uid}/videos`);
    expect(gone.status).toBe(404);
    expect(gone.body.errors[0].code).toBe(10003);
    const byCreator = (await api("GET", `${STREAM}?creator=stream-abc`)).body.result;
    expect(byCreator.map((x: Json) => x.uid)).toEqual([v.uid]);
    // The input is gone for good, so its recording ends at once (no reconnect can continue it).
    expect(byCreator[0].status.state).toBe("inprogress");
    expect((await api("GET", `${STREAM}?live_input_id=${li.uid}`)).body.result.map((x: Json) => x.uid)).toEqual([v.uid]);
  });

  it("GET /stream filters by creator, live_input_id and status, orders newest first (asc=true: oldest), and refuses bad filters", async () => {
    await control("POST", "config", { videoReadyDelaySeconds: 0 });
    const a = await createInput({ ...RECORDED, defaultCreator: "stream-a", recording: { mode: "automatic", timeoutSeconds: 1 } });
    const b = await createInput({ ...RECORDED, defaultCreator: "stream-b" });
    await connect(a.uid);
    await disconnect(a.uid);
    await advance(2);
    await connect(b.uid);
    const all = (await api("GET", STREAM)).body.result;
    expect(all.map((v: Json) => v.liveInput)).toEqual([b.uid, a.uid]);
    expect((await api("GET", `${STREAM}?asc=true`)).body.result.map((v: Json) => v.liveInput)).toEqual([a.uid, b.uid]);
    expect((await api("GET", `${STREAM}?creator=stream-a`)).body.result.map((v: Json) => v.liveInput)).toEqual([a.uid]);
    expect((await api("GET", `${STREAM}?live_input_id=${b.uid}`)).body.result.map((v: Json) => v.creator)).toEqual(["stream-b"]);
    expect((await api("GET", `${STREAM}?status=ready`)).body.result.map((v: Json) => v.liveInput)).toEqual([a.uid]);
    expect((await api("GET", `${STREAM}?status=live-inprogress`)).body.result.map((v: Json) => v.liveInput)).toEqual([b.uid]);
    expect((await api("GET", `${STREAM}?limit=1`)).body.result).toHaveLength(1);
    expect((await api("GET", `${STREAM}?creator=nobody`)).body.result).toEqual([]);
    for (const bad of ["status=done", "limit=0", "limit=1001", "asc=maybe", "before=yesterday"]) {
      const r = await api("GET", `${STREAM}?${bad}`);
      expect(r.status, bad).toBe(400);
      expect(r.body.errors[0].code).toBe(10005);
    }
  });

  it("DELETE /stream/:uid deletes a video; unknown uids are 404; a wrong method is 405", async () => {
    const li = await createInput(RECORDED);
    await connect(li.uid);
    const [v] = await videosOf(li.uid);
    const del = await api("DELETE", `${STREAM}/${v.uid}`);
    expect(del.status).toBe(200);
    expect(del.body.result).toBeNull();
    expect((await api("GET", `${STREAM}/${v.uid}`)).status).toBe(404);
    expect((await api("DELETE", `${STREAM}/${v.uid}`)).status).toBe(404);
    expect(await videosOf(li.uid)).toEqual([]);
    expect((await api("PATCH", `${STREAM}/${v.uid}`)).status).toBe(405);
  });

  it("GET /stream/storage-usage counts minutes and videos, per creator or for the account", async () => {
    await control("POST", "config", { videoReadyDelaySeconds: 0, storageMinutesLimit: 500 });
    const a = await createInput({ ...RECORDED, defaultCreator: "stream-a", recording: { mode: "automatic", timeoutSeconds: 1 } });
    await connect(a.uid);
    await advance(150);
    await disconnect(a.uid);
    await advance(2);
    const b = await createInput({ ...RECORDED, defaultCreator: "stream-b" });
    await connect(b.uid);
    const usage = (await api("GET", `${STREAM}/storage-usage`)).body.result;
    expect(usage).toEqual({ totalStorageMinutes: 3, totalStorageMinutesLimit: 500, videoCount: 2 });
    const mine = (await api("GET", `${STREAM}/storage-usage?creator=stream-a`)).body.result;
    expect(mine).toEqual({ creator: "stream-a", totalStorageMinutes: 3, totalStorageMinutesLimit: 500, videoCount: 1 });
  });

  it("faults apply to the video endpoints like the others (a lost answer on a delete that happened)", async () => {
    const li = await createInput(RECORDED);
    await connect(li.uid);
    const [v] = await videosOf(li.uid);
    await control("POST", "faults", { method: "DELETE", path: "/client/v4/accounts/*/stream/*", status: 500, afterEffect: true });
    expect((await api("DELETE", `${STREAM}/${v.uid}`)).status).toBe(500);
    expect((await api("GET", `${STREAM}/${v.uid}`)).status).toBe(404); // it was deleted all the same
    await control("POST", "faults", { method: "GET", path: "/client/v4/accounts/*/stream/live_inputs/*/videos", status: 503 });
    expect((await api("GET", `${INPUTS}/${li.uid}/videos`)).status).toBe(503);
    expect((await api("GET", `${INPUTS}/${li.uid}/videos`)).status).toBe(200);
  });
});

describe("video webhook", () => {
  it("PUT/GET/DELETE /stream/webhook: one per account, the secret kept across updates", async () => {
    expect((await api("GET", `${STREAM}/webhook`)).status).toBe(404);
    const put = (await api("PUT", `${STREAM}/webhook`, { notificationUrl: "https://hook.test/a" })).body.result;
    expect(put).toEqual({ notificationUrl: "https://hook.test/a", modified: expect.any(String), secret: expect.stringMatching(/^[0-9a-f]{64}$/) });
    const again = (await api("PUT", `${STREAM}/webhook`, { notificationUrl: "https://hook.test/b" })).body.result;
    expect(again.secret).toBe(put.secret);
    expect((await api("GET", `${STREAM}/webhook`)).body.result).toEqual(again);
    expect((await api("PUT", `${STREAM}/webhook`, { notificationUrl: "ftp://x" })).status).toBe(400);
    expect((await api("PUT", `${STREAM}/webhook`, {})).status).toBe(400);
    const del = await api("DELETE", `${STREAM}/webhook`);
    expect(del.body.result).toBe("ok");
    expect((await api("GET", `${STREAM}/webhook`)).status).toBe(404);
  });

  it("a ready video is POSTed to the webhook, the whole video object, signed time=…,sig1=hex(HMAC-SHA256(secret, time.body))", async () => {
    await control("POST", "config", { videoReadyDelaySeconds: 5 });
    const { secret } = (await api("PUT", `${STREAM}/webhook`, { notificationUrl: "https://hook.test/video" })).body.result;
    const li = await createInput({ ...RECORDED, recording: { mode: "automatic", timeoutSeconds: 1 } });
    await connect(li.uid);
    await advance(3);
    await disconnect(li.uid);
    await advance(2);
    expect((await control("GET", "webhooks")).body.deliveries.filter((d: Json) => d.event.startsWith("video."))).toEqual([]);
    await advance(5);
    const deliveries = await waitForVideoDeliveries(1);
    const d = deliveries[0];
    expect(d).toMatchObject({ url: "https://hook.test/video", event: "video.ready", inputId: li.uid });
    const ready = await video(d.videoId);
    expect(JSON.parse(d.body)).toEqual(ready);
    expect(d.payload).toEqual(ready);
    const m = /^time=(\d+),sig1=([0-9a-f]{64})$/.exec(d.headers["webhook-signature"]);
    expect(m).not.toBeNull();
    expect(m![2]).toBe(await signWebhook(secret, m![1]!, d.body));
    expect(m![2]).not.toBe(await signWebhook("wrong", m![1]!, d.body));
    expect(Math.abs(Number(m![1]) * 1000 - Date.parse((await control("GET", "clock")).body.now))).toBeLessThan(5000);
  });

  it("a failed video (control API) is POSTed too, with its error reason", async () => {
    await api("PUT", `${STREAM}/webhook`, { notificationUrl: "https://hook.test/video" });
    const li = await createInput(RECORDED);
    await connect(li.uid);
    const [v] = await videosOf(li.uid);
    expect((await control("POST", `videos/${v.uid}/error`, { code: "ERR_MALFORMED_VIDEO", message: "bad media" })).status).toBe(200);
    const failed = await video(v.uid);
    expect(failed.status).toEqual({ state: "error", errorReasonCode: "ERR_MALFORMED_VIDEO", errorReasonText: "bad media" });
    const [d] = await waitForVideoDeliveries(1);
    expect(d.event).toBe("video.error");
    expect(JSON.parse(d.body)).toEqual(failed);
    expect((await control("POST", "videos/nope/error", {})).status).toBe(404);
  });
});

describe("video control API and clock", () => {
  it("the clock only moves forward and reset puts it back; bad advances are 400", async () => {
    const before = Date.parse((await control("GET", "clock")).body.now);
    const moved = await advance(3600);
    expect(moved.body.offsetMs).toBe(3_600_000);
    expect(Date.parse(moved.body.now) - before).toBeGreaterThanOrEqual(3_600_000);
    expect((await control("POST", "clock", { advanceMs: -1 })).status).toBe(400);
    expect((await control("POST", "clock", {})).status).toBe(400);
    await reset();
    expect((await control("GET", "clock")).body.offsetMs).toBe(0);
  });

  it("GET /__emulator/state lists every video, and reset clears them", async () => {
    const li = await createInput(RECORDED);
    await connect(li.uid);
    expect((await state()).videos).toHaveLength(1);
    await reset();
    expect((await state()).videos).toEqual([]);
  });
});

describe("the cloudflare SDK against the video endpoints", () => {
  const client = new Cloudflare({ apiToken: TOKEN, baseURL: `${BASE}/client/v4`, maxRetries: 0, fetch: checkedFetch });
  const account_id = ACCOUNT;

  it("list, get, storage usage, delete, webhooks", async () => {
    const li = await createInput(RECORDED);
    await connect(li.uid);
    const page = await client.stream.list({ account_id, creator: "stream-abc" });
    expect(page.result.map((v) => v.liveInput)).toEqual([li.uid]);
    const uid = page.result[0]!.uid!;
    expect((await client.stream.get(uid, { account_id })).status?.state).toBe("live-inprogress");
    expect((await client.stream.list({ account_id, live_input_id: li.uid, status: "live-inprogress" })).result).toHaveLength(1);
    expect((await client.stream.videos.storageUsage({ account_id, creator: "stream-abc" })).videoCount).toBe(1);
    const hook = await client.stream.webhooks.update({ account_id, notificationUrl: "https://hook.test/sdk" });
    expect(hook.secret).toBeTruthy();
    expect((await client.stream.webhooks.get({ account_id })).notificationUrl).toBe("https://hook.test/sdk");
    expect(await client.stream.webhooks.delete({ account_id })).toBe("ok");
    await client.stream.delete(uid, { account_id });
    await expect(client.stream.get(uid, { account_id })).rejects.toMatchObject({ status: 404 });
  });
});

describe("recording driver hook (StreamEmulator in this isolate, its own clock)", () => {
  it("tells a listener started → paused → continued → paused → ended → ready → deleted, in order, with the video and input", async () => {
    let now = Date.parse("2026-01-01T00:00:00Z");
    const emu = new StreamEmulator({ now: () => now, videoReadyDelaySeconds: 10 });
    const events: VideoEvent[] = [];
    const off = emu.videos.onEvent((e) => events.push(e));
    const call = (method: string, path: string, body?: unknown) =>
      emu.fetch(new Request(`http://x/client/v4/accounts/local-account/stream${path}`, { method, headers: { authorization: "Bearer local-dev-token" }, body: body === undefined ? undefined : JSON.stringify(body) }));
    const li = (await (await call("POST", "/live_inputs", { recording: { mode: "automatic", timeoutSeconds: 30 }, deleteRecordingAfterDays: 30 })).json()) as Json;
    const input = li.result.uid as string;
    emu.connect(input);
    const videoUid = emu.videos.currentVideo(input)!.videoUid;
    now += 5000;
    emu.disconnect(input);
    now += 10_000;
    emu.connect(input);
    expect(emu.videos.currentVideo(input)).toEqual({ videoUid, session: 1 });
    emu.videos.reportMedia(videoUid, { durationSeconds: 7.5, width: 320, height: 240 });
    now += 2500;
    emu.disconnect(input);
    now += 30_000;
    emu.tick();
    expect(emu.videos.currentVideo(input)).toBeNull();
    now += 10_000;
    emu.tick();
    const ready = (await (await call("GET", `/${videoUid}`)).json()) as Json;
    expect(ready.result).toMatchObject({ duration: 7.5, input: { width: 320, height: 240 }, readyToStream: true });
    await call("DELETE", `/${videoUid}`);
    off();
    expect(events.map((e) => [e.type, e.videoUid, e.inputUid])).toEqual(
      ["started", "paused", "continued", "paused", "ended", "ready", "deleted"].map((t) => [t, videoUid, input]),
    );
    expect(events.find((e) => e.type === "continued")).toMatchObject({ session: 1 });
    const paused = events.find((e) => e.type === "paused");
    expect(paused).toMatchObject({ until: (paused as { at: number }).at + 30_000 });
    // The end is dated when the window passed, not when someone looked.
    expect(events.find((e) => e.type === "ended")!.at).toBe(Date.parse("2026-01-01T00:00:00Z") + 5000 + 10_000 + 2500 + 30_000);
  });
});

describe("recording driver hold and reset (StreamEmulator in this isolate, its own clock)", () => {
  async function endedVideo(delaySeconds: number) {
    let now = Date.parse("2026-01-01T00:00:00Z");
    const emu = new StreamEmulator({ now: () => now, videoReadyDelaySeconds: delaySeconds });
    const events: VideoEvent[] = [];
    emu.videos.onEvent((e) => {
      events.push(e);
      if (e.type === "ended") emu.videos.holdReady(e.videoUid);
    });
    const call = (method: string, path: string, body?: unknown) =>
      emu.fetch(new Request(`http://x/client/v4/accounts/local-account/stream${path}`, { method, headers: { authorization: "Bearer local-dev-token" }, body: body === undefined ? undefined : JSON.stringify(body) }));
    const li = (await (await call("POST", "/live_inputs", { recording: { mode: "automatic", timeoutSeconds: 5 } })).json()) as Json;
    const input = li.result.uid as string;
    emu.connect(input);
    const videoUid = emu.videos.currentVideo(input)!.videoUid;
    now += 4000;
    emu.disconnect(input);
    now += 5000;
    emu.tick();
    const video = async () => ((await (await call("GET", `/${videoUid}`)).json()) as Json).result;
    return { emu, events, videoUid, input, video, advance: (ms: number) => (now += ms), now: () => now };
  }

  it("a video a driver holds stays inprogress past the ready delay until its media is finished, then is ready with the driver's numbers", async () => {
    const v = await endedVideo(2);
    expect((await v.video()).status.state).toBe("inprogress");
    v.advance(10_000);
    v.emu.tick();
    expect((await v.video()).status.state, "held past videoReadyDelaySeconds").toBe("inprogress");
    v.emu.videos.reportMedia(v.videoUid, { durationSeconds: 3.96, width: 320, height: 240 }, { final: true });
    const ready = await v.video();
    expect(ready).toMatchObject({ status: { state: "ready" }, duration: 3.96, input: { width: 320, height: 240 } });
    expect(ready.readyToStreamAt, "ready when the media was finished, not before").toBe(new Date(v.now()).toISOString());
  });

  it("a hold released before the ready delay keeps the delay; a driver that never finishes holds at most 60 s", async () => {
    const early = await endedVideo(10);
    early.emu.videos.mediaFinished(early.videoUid);
    expect((await early.video()).status.state).toBe("inprogress");
    early.advance(10_000);
    expect((await early.video()).status.state).toBe("ready");

    const stuck = await endedVideo(1);
    stuck.advance(59_000);
    expect((await stuck.video()).status.state).toBe("inprogress");
    stuck.advance(1_000);
    expect((await stuck.video()).status.state).toBe("ready");
  });

  it("reset tells the driver every video is deleted (so it drops their media)", async () => {
    const v = await endedVideo(1);
    v.emu.reset();
    expect(v.events.at(-1)).toMatchObject({ type: "deleted", videoUid: v.videoUid, inputUid: v.input });
  });
});

async function waitForVideoDeliveries(n: number): Promise<Json[]> {
  for (let i = 0; i < 100; i++) {
    const all = (await control("GET", "webhooks")).body.deliveries.filter((d: Json) => d.event.startsWith("video."));
    if (all.length >= n) return all;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error("no video webhook delivery");
}
