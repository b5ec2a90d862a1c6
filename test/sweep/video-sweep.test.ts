// The leak sweep's second half (src/sweep/video-sweep.ts): zero orphaned videos. Videos are made the way
// Cloudflare makes them, by connecting a recorded live input at the emulator.
import { env } from "cloudflare:test";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { streamApiFor } from "../../src/budget/budgeted-api";
import { clock, resetClock, shiftClock } from "../../src/clock";
import { loadConfig } from "../../src/config";
import { sweepLeakedInputs } from "../../src/sweep/leak-sweep";
import { sweepVideos } from "../../src/sweep/video-sweep";
import { ADMIN, EMULATOR, call, emulator, injectFault, inputFor, newUserId, registerApp, resetEmulator, startStream, waitFor, type Json } from "../helpers";

beforeEach(resetEmulator);
afterEach(() => {
  vi.restoreAllMocks();
  resetClock();
});

const STREAM_API = `${EMULATOR}/client/v4/accounts/local-account/stream`;
const AUTH = { authorization: "Bearer local-dev-token", "content-type": "application/json" };
const MINUTES_10 = 10 * 60_000;

/** A video recorded behind our back, by a live input whose `defaultCreator` is `creator` (or none). */
async function videoBy(creator: string | null): Promise<{ uid: string; created: number }> {
  const res = await fetch(`${STREAM_API}/live_inputs`, {
    method: "POST",
    headers: AUTH,
    body: JSON.stringify({ recording: { mode: "automatic" }, ...(creator === null ? {} : { defaultCreator: creator }) }),
  });
  const input = ((await res.json()) as Json).result;
  await emulator("POST", `live_inputs/${input.uid}/connect`);
  const videos: Json[] = ((await (await fetch(`${STREAM_API}?asc=true`, { headers: AUTH })).json()) as Json).result;
  const video = videos.find((v) => v.liveInput === input.uid);
  return { uid: video.uid, created: Date.parse(video.created) };
}

async function videoUids(): Promise<string[]> {
  return ((await (await fetch(`${STREAM_API}?asc=true`, { headers: AUTH })).json()) as Json).result.map((v: Json) => v.uid);
}

/** Spends `slots` of the (cleared) budget's window, as other callers' calls would have. */
async function fillBudget(slots: number): Promise<void> {
  const config = loadConfig(env);
  const settings = { limit: config.apiBudgetPer5Min, pollShare: config.apiBudgetPollShare };
  for (let left = slots; left > 0; ) {
    const lease = await env.BUDGET.getByName("global").lease("user", settings, Math.min(64, left), 10_000);
    if (!lease.granted) return;
    left -= lease.count;
  }
}

const refusals = async () => (await call("GET", "/api/admin/stats", undefined, ADMIN)).body.budget.refusals;

const GHOST = "ghost0000000000000000"; // a streamId no stream object knows

describe("the leak sweep deletes videos of streams we do not know, and nothing else", () => {
  it("only videos whose creator is one of our streamIds are checked: others, and videos without a creator, are left alone", async () => {
    const ghost = await videoBy(GHOST);
    const foreign = await videoBy("someone-else");
    const anonymous = await videoBy(null);
    const report = await sweepLeakedInputs(env, Math.max(ghost.created, foreign.created, anonymous.created) + MINUTES_10 + 1);
    expect(report.videosChecked).toBe(1);
    expect(report.videosDeleted).toEqual([ghost.uid]);
    const left = await videoUids();
    expect(left).toContain(foreign.uid);
    expect(left).toContain(anonymous.uid);
    expect(left).not.toContain(ghost.uid);
  });

  it("a video of an unknown stream is kept for LEAK_SWEEP_MINUTES (10) after it was created, deleted just after", async () => {
    const ghost = await videoBy(GHOST);
    const early = await sweepLeakedInputs(env, ghost.created + MINUTES_10);
    expect(early).toMatchObject({ videosChecked: 1, videosDeleted: [] });
    expect(await videoUids()).toContain(ghost.uid);
    expect((await sweepLeakedInputs(env, ghost.created + MINUTES_10 + 1)).videosDeleted).toEqual([ghost.uid]);
    expect(await videoUids()).not.toContain(ghost.uid);
  });

  it("a running stream's video is kept however old it is, beside an unknown stream's that is deleted", async () => {
    const app = await registerApp();
    const s = await startStream(app, newUserId(), { recording: { mode: "automatic" } });
    const input = await inputFor(s.streamId);
    await emulator("POST", `live_inputs/${input.uid}/connect`);
    const ghost = await videoBy(GHOST);
    const report = await sweepLeakedInputs(env, ghost.created + 24 * 60 * MINUTES_10);
    expect(report).toMatchObject({ videosChecked: 2, videosDeleted: [ghost.uid], failed: [] });
    expect(await videoUids()).toHaveLength(1);
  });

  it("a video whose delete Cloudflare refuses is reported failed, logged with the reason, and deleted by a later run", async () => {
    const ghost = await videoBy(GHOST);
    const errors = vi.spyOn(console, "error").mockImplementation(() => undefined);
    await injectFault({ method: "DELETE", path: "/client/v4/accounts/*/stream/*", status: 403, count: 1 });
    const failed = await sweepLeakedInputs(env, ghost.created + MINUTES_10 + 1);
    expect(failed).toMatchObject({ videosDeleted: [], failed: [ghost.uid] });
    expect(errors).toHaveBeenCalledWith("leak sweep could not delete a video", expect.any(String));
    expect(await videoUids()).toContain(ghost.uid);
    expect((await sweepLeakedInputs(env, ghost.created + MINUTES_10 + 1)).videosDeleted).toEqual([ghost.uid]);
  });

  it("a run that deleted only videos logs its report", async () => {
    const ghost = await videoBy(GHOST);
    const logs = vi.spyOn(console, "log").mockImplementation(() => undefined);
    await sweepLeakedInputs(env, ghost.created + MINUTES_10 + 1);
    const line = logs.mock.calls.find((c) => c[0] === "leak sweep");
    expect(line).toBeDefined();
    expect(JSON.parse(line![1] as string)).toMatchObject({ deleted: [], failed: [], videosDeleted: [ghost.uid] });
  });

  it("the video sweep spends the budget's cleanup share: with the budget full, its listing is refused and counted as a cleanup call", async () => {
    // Slots this isolate leased earlier expire first (a lease lives at most 10 s), so the listing asks the budget.
    shiftClock(11_000);
    const config = loadConfig(env);
    await fillBudget(config.apiBudgetPer5Min);
    const before = await refusals();
    const report = { checked: 0, deleted: [], failed: [], outputsDeleted: 0, videosChecked: 0, videosDeleted: [] };
    await expect(sweepVideos(env, streamApiFor(env, config), clock.now(), MINUTES_10, report)).rejects.toThrow(/budget/);
    await waitFor(async () => (await refusals()).cleanup === before.cleanup + 1, 5_000, "a cleanup refusal counted");
    expect(await refusals()).toMatchObject({ user: before.user, poll: before.poll, cleanup: before.cleanup + 1 });
  });

  it("the video sweep's deletes spend the cleanup share too: one refused by a full budget is counted as a cleanup call and reported failed", async () => {
    const ghost = await videoBy(GHOST);
    shiftClock(11_000); // earlier leased slots expire (a lease lives at most 10 s)
    const config = loadConfig(env);
    await fillBudget(config.apiBudgetPer5Min - 1); // one call left: the listing
    const before = await refusals();
    const report = { checked: 0, deleted: [], failed: [] as string[], outputsDeleted: 0, videosChecked: 0, videosDeleted: [] };
    await sweepVideos(env, streamApiFor(env, config), ghost.created + MINUTES_10 + 1, MINUTES_10, report);
    expect(report).toMatchObject({ videosChecked: 1, videosDeleted: [], failed: [ghost.uid] });
    await waitFor(async () => (await refusals()).cleanup === before.cleanup + 1, 5_000, "a cleanup refusal counted");
    expect(await refusals()).toMatchObject({ user: before.user, poll: before.poll, cleanup: before.cleanup + 1 });
  });
});
