// Churn: 50 recorded streams, each with a crash or a lost answer at a random point of its recording's life
// (before the capture, at the stop's listing, at the input delete, during the settle, during a delete), leave
// 0 orphaned live inputs and 0 orphaned videos: every video is listed by its stream while kept, and after
// retention nothing is left at Cloudflare (src/stream/recordings.ts, src/sweep/video-sweep.ts).
import { env, evictDurableObject, runInDurableObject } from "cloudflare:test";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { resetClock, shiftClock } from "../../src/clock";
import { sweepLeakedInputs } from "../../src/sweep/leak-sweep";
import { ADMIN, EMULATOR, call, emulator, emulatorInputs, expireTimer, inputFor, injectFault, newUserId, registerApp, resetEmulator, startStream, streamTimers, type Json, ingestByWebhook } from "../helpers";

beforeEach(resetEmulator);
afterEach(resetClock);

const STREAM_API = `${EMULATOR}/client/v4/accounts/local-account/stream`;
const STREAMS = 50;
const CRASHES = ["none", "before-capture", "stop-listing-fails", "input-delete-dropped", "settle-listing-fails", "evicted-before-settle", "delete-dropped"] as const;

/** A small seeded PRNG, so a failing run can be repeated. */
function prng(seed: number): () => number {
  return () => {
    seed = (seed * 1_103_515_245 + 12_345) & 0x7fffffff;
    return seed / 0x7fffffff;
  };
}

async function allVideos(): Promise<Json[]> {
  const res = await fetch(STREAM_API, { headers: { authorization: "Bearer local-dev-token" } });
  return ((await res.json()) as Json).result;
}


/** Runs the stream's due work (cleanup, recordings) until none of it is left, as the alarm would over time. */
async function drain(streamId: string, names: string[]): Promise<void> {
  for (let round = 0; round < 12; round++) {
    const timers = await streamTimers(streamId);
    const due = names.filter((n) => n in timers);
    if (due.length === 0) return;
    await expireTimer(streamId, due[0]!);
  }
}

describe("recordings churn", () => {
  it(`${STREAMS} streams with crashes at random points leave 0 orphaned inputs and 0 orphaned videos`, { timeout: 240_000 }, async () => {
    const random = prng(20_261_201);
    // Starts are limited to 10 per minute per app: a new app every 8 streams.
    const apps = [];
    for (let i = 0; i < Math.ceil(STREAMS / 8); i++) apps.push(await registerApp());
    const streams: Array<{ streamId: string; crash: (typeof CRASHES)[number]; app: (typeof apps)[number] }> = [];
    for (let i = 0; i < STREAMS; i++) {
      const app = apps[Math.floor(i / 8)]!;
      const crash = CRASHES[Math.floor(random() * CRASHES.length)]!;
      const s = await startStream(app, newUserId(), { recording: { mode: "automatic", timeoutSeconds: 30 } });
      const input = await inputFor(s.streamId);
      await ingestByWebhook(input.uid, "connect");
      // Never captured, and the stop's own listing fails too: only the settle's listing by creator can find it.
      if (crash === "before-capture" || crash === "stop-listing-fails") {
        await runInDurableObject(env.STREAMS.getByName(s.streamId), (_i, state) => void state.storage.sql.exec("DELETE FROM schedule WHERE name = 'recordings-capture'"));
      } else {
        await expireTimer(s.streamId, "recordings-capture");
      }
      if (crash === "stop-listing-fails") await injectFault({ method: "GET", path: "/client/v4/accounts/*/stream/live_inputs/*/videos", status: 500 });
      if (crash === "input-delete-dropped") await injectFault({ method: "DELETE", path: "/client/v4/accounts/*/stream/live_inputs/*", drop: true, count: 2 });
      await call("POST", `/api/admin/streams/${s.streamId}/stop`, undefined, ADMIN);
      await emulator("DELETE", "faults");
      streams.push({ streamId: s.streamId, crash, app });
    }
    expect(new Set(streams.map((s) => s.crash)).size).toBe(CRASHES.length);

    // Every stop finishes (the cleanup timer retries what failed), and no live input of ours is left.
    for (const s of streams) await drain(s.streamId, ["cleanup"]);
    expect(await emulatorInputs()).toEqual([]);

    // The recordings become ready; each stream settles, through failures and evictions.
    await emulator("POST", "clock", { advanceSeconds: 3600 });
    for (const s of streams) {
      if (s.crash === "settle-listing-fails") await injectFault({ method: "GET", path: "/client/v4/accounts/*/stream", status: 503 });
      if (s.crash === "evicted-before-settle") {
        await evictDurableObject(env.STREAMS.getByName(s.streamId));
      }
      await drain(s.streamId, ["recordings-settle"]);
      await emulator("DELETE", "faults");
    }
    // No video is an orphan: each is listed, ready, by the stream its creator names.
    const videos = await allVideos();
    expect(videos).toHaveLength(STREAMS);
    for (const s of streams) {
      const listed = (await call("GET", `/api/streams/${s.streamId}/recordings`, undefined, s.app.headers)).body;
      const theirs = videos.filter((v: Json) => v.creator === s.streamId).map((v: Json) => v.uid);
      expect(listed.map((r: Json) => r.recordingId), s.crash).toEqual(theirs);
      expect(listed.map((r: Json) => r.state), s.crash).toEqual(["ready"]);
    }

    // Some deletes lose their answer; at retention the rest go. Afterwards nothing is left at Cloudflare.
    for (const s of streams.filter((x) => x.crash === "delete-dropped")) {
      const [rec] = (await call("GET", `/api/streams/${s.streamId}/recordings`, undefined, s.app.headers)).body;
      await injectFault({ method: "DELETE", path: "/client/v4/accounts/*/stream/*", drop: true, count: 2 });
      expect((await call("DELETE", `/api/streams/${s.streamId}/recordings/${rec.recordingId}`, undefined, s.app.headers)).status).toBe(202);
      await emulator("DELETE", "faults");
    }
    shiftClock(31 * 86_400_000);
    for (const s of streams) await drain(s.streamId, ["recordings-expire"]);
    expect(await allVideos()).toEqual([]);
    const report = await sweepLeakedInputs(env, Date.now() + 31 * 86_400_000);
    expect(report.videosDeleted).toEqual([]);
    expect(report.deleted).toEqual([]);
  });
});
