import { beforeEach, describe, expect, it } from "vitest";
import { StreamApi } from "../../src/cloudflare/stream-api";
import { deleteVideo, getVideo, listAllVideos, listInputVideos, listVideosByCreator, toRemoteVideo } from "../../src/cloudflare/video-api";
import { RecordingBudget, calls, control, injectFault, resetEmulator, testConfig } from "./emulated";

/** The recordings' API (src/cloudflare/video-api.ts) against the Stream emulator. */
let budget: RecordingBudget;
let api: StreamApi;
beforeEach(async () => {
  await resetEmulator();
  budget = new RecordingBudget();
  api = new StreamApi(testConfig(), budget);
});

const rejection = (p: Promise<unknown>) => p.then(() => expect.unreachable("should have thrown"), (e: unknown) => e as { upstreamStatus?: number });
const UNKNOWN = "0123456789abcdef0123456789abcdef";
const videoPath = (uid: string) => `/client/v4/accounts/*/stream/${uid}`;

/** A recording input for `streamId` that has broadcast once (one video, its creator the stream). */
async function recordedInput(streamId: string): Promise<{ input: string; video: string }> {
  const input = await api.createLiveInput({ streamId, ingestProtocol: "rtmp", recording: { mode: "automatic" }, deleteRecordingAfterDays: null });
  await control("POST", `live_inputs/${input.uid}/connect`);
  const videos = await listInputVideos(api, input.uid, "cleanup");
  expect(videos).toHaveLength(1);
  return { input: input.uid, video: videos[0]!.uid };
}

describe("reading recordings", () => {
  it("an input's videos, the videos of one creator, and every video oldest first", async () => {
    const a = await recordedInput("stream-a");
    await control("POST", "clock", { advanceMs: 60_000 });
    const b = await recordedInput("stream-b");
    const [video] = await listInputVideos(api, a.input, "cleanup");
    expect(video).toMatchObject({ uid: a.video, creator: "stream-a", liveInput: a.input, state: "live-inprogress" });
    expect((await listVideosByCreator(api, "stream-b", "cleanup")).map((v) => v.uid)).toEqual([b.video]);
    expect((await listAllVideos(api, "cleanup")).map((v) => v.uid)).toEqual([a.video, b.video]);
    expect(budget.acquired.every((c) => c.priority === "cleanup" || c.priority === "user")).toBe(true);
  });

  it("each call is paid from the budget at the caller's priority", async () => {
    await listAllVideos(api, "poll");
    await listVideosByCreator(api, "x", "user");
    await getVideo(api, UNKNOWN, "cleanup");
    expect(budget.acquired.map((c) => c.priority)).toEqual(["poll", "user", "cleanup"]);
  });

  it("a deleted input's video list is a 404 failure; one video is null when Cloudflare has none", async () => {
    expect(await rejection(listInputVideos(api, UNKNOWN, "cleanup"))).toMatchObject({ upstreamStatus: 404 });
    expect(await getVideo(api, UNKNOWN, "cleanup")).toBeNull();
  });

  it("a video read that fails other than 404 is thrown, not taken as gone", async () => {
    const { video } = await recordedInput("stream-a");
    await injectFault({ method: "GET", path: videoPath(video), status: 500 });
    expect(await rejection(getVideo(api, video, "cleanup"))).toMatchObject({ upstreamStatus: 500 });
    expect(await getVideo(api, video, "cleanup")).toMatchObject({ uid: video, creator: "stream-a" });
  });

  it("an input's video list answered with a bare null is no videos, not a crash", async () => {
    const realFetch = globalThis.fetch;
    globalThis.fetch = async () => new Response("null", { status: 200, headers: { "content-type": "application/json" } });
    try {
      // The SDK takes fetch when its client is made.
      expect(await listInputVideos(new StreamApi(testConfig(), budget), "abc", "cleanup")).toEqual([]);
    } finally {
      globalThis.fetch = realFetch;
    }
  });

  it("a list answered without an array is no videos", async () => {
    await injectFault({ method: "GET", path: "/client/v4/accounts/*/stream", status: 200, body: { success: true, errors: [], messages: [], result: { not: "a list" } } });
    expect(await listAllVideos(api, "cleanup")).toEqual([]);
  });
});

describe("deleting a recording", () => {
  it("a video is deleted; one already gone counts as deleted", async () => {
    const { video } = await recordedInput("stream-a");
    await deleteVideo(api, video, "cleanup");
    expect(await getVideo(api, video, "cleanup")).toBeNull();
    await deleteVideo(api, video, "cleanup");
  });

  it("a delete whose answer was lost is settled by reading the video back", async () => {
    const { video } = await recordedInput("stream-a");
    await injectFault({ method: "DELETE", path: videoPath(video), status: 500, afterEffect: true });
    await control("DELETE", "calls");
    await deleteVideo(api, video, "cleanup");
    expect(await calls()).toEqual([`DELETE /stream/${video} 500`, `GET /stream/${video} 404`]);
  });

  it("a delete lost before it happened is sent again; lost twice, it is an ambiguous failure", async () => {
    const { video } = await recordedInput("stream-a");
    await injectFault({ method: "DELETE", path: videoPath(video), drop: true });
    await deleteVideo(api, video, "cleanup");
    expect(await getVideo(api, video, "cleanup")).toBeNull();

    const other = await recordedInput("stream-b");
    await injectFault({ method: "DELETE", path: videoPath(other.video), status: 503, count: 2 });
    expect(await rejection(deleteVideo(api, other.video, "cleanup"))).toMatchObject({ upstreamStatus: 503 });
    expect(await getVideo(api, other.video, "cleanup")).not.toBeNull();
  });

  it("a delete Cloudflare refused is the answer: thrown, not read back", async () => {
    const { video } = await recordedInput("stream-a");
    await injectFault({ method: "DELETE", path: videoPath(video), status: 403 });
    await control("DELETE", "calls");
    expect(await rejection(deleteVideo(api, video, "cleanup"))).toMatchObject({ upstreamStatus: 403 });
    expect(await calls()).toEqual([`DELETE /stream/${video} 403`]);
  });
});

describe("a video as Cloudflare describes it", () => {
  it("takes every field Cloudflare gives", () => {
    expect(
      toRemoteVideo({
        uid: "v1",
        creator: "stream-a",
        liveInput: "in-1",
        status: { state: "error", errorReasonCode: "ERR_NON_VIDEO", errorReasonText: "not a video" },
        created: "2026-12-01T10:00:00.000Z",
        readyToStreamAt: "2026-12-01T10:05:00.000Z",
        duration: 12.5,
        playback: { hls: "https://h/v1.m3u8", dash: "https://h/v1.mpd" },
        thumbnail: "https://h/v1.jpg",
      }),
    ).toEqual({
      uid: "v1",
      creator: "stream-a",
      liveInput: "in-1",
      state: "error",
      created: Date.parse("2026-12-01T10:00:00.000Z"),
      readyAt: Date.parse("2026-12-01T10:05:00.000Z"),
      durationSeconds: 12.5,
      hlsUrl: "https://h/v1.m3u8",
      dashUrl: "https://h/v1.mpd",
      thumbnailUrl: "https://h/v1.jpg",
      errorReason: "ERR_NON_VIDEO: not a video",
    });
  });

  it("fields missing, empty or of the wrong type are null; a video without a state is queued", () => {
    const bare = { uid: "v1", creator: null, liveInput: null, state: "queued", created: null, readyAt: null, durationSeconds: null, hlsUrl: null, dashUrl: null, thumbnailUrl: null, errorReason: null };
    expect(toRemoteVideo({ uid: "v1" })).toEqual(bare);
    expect(
      toRemoteVideo({ uid: "v1", creator: "", liveInput: 5, status: null, created: "not a date", readyToStreamAt: 7, duration: -1, playback: null, thumbnail: "" }),
    ).toEqual(bare);
    expect(toRemoteVideo({ uid: "v1", status: "ready", playback: "x", duration: "3" })).toEqual(bare);
    expect(toRemoteVideo({ uid: "v1", duration: 0 })).toMatchObject({ durationSeconds: 0 });
  });

  it("an error reason is whichever of its code and text Cloudflare gives", () => {
    expect(toRemoteVideo({ uid: "v", status: { errorReasonCode: "ERR_X" } })?.errorReason).toBe("ERR_X");
    expect(toRemoteVideo({ uid: "v", status: { errorReasonText: "broken" } })?.errorReason).toBe("broken");
    expect(toRemoteVideo({ uid: "v", status: { errorReasonCode: "", errorReasonText: "" } })?.errorReason).toBeNull();
  });

  it("anything without a uid is not a video, and is left out of a list", async () => {
    for (const raw of [null, undefined, "v1", 5, {}, { uid: "" }, { uid: 7 }]) expect(toRemoteVideo(raw)).toBeNull();
    const body = { success: true, errors: [], messages: [], result: [{ uid: "" }, null, { uid: "v2" }] };
    await injectFault({ method: "GET", path: "/client/v4/accounts/*/stream", status: 200, body });
    expect((await listAllVideos(api, "cleanup")).map((v) => v.uid)).toEqual(["v2"]);
  });
});
