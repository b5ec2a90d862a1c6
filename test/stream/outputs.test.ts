import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { freezeClock, resetClock, shiftClock } from "../../src/clock";
import { env, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import {
  ADMIN,
  expireTimer,
  LIVE_INPUTS_PATH,
  call,
  inputFor,
  injectFault,
  newUserId,
  openSocket,
  postStream,
  registerApp,
  resetEmulator,
  startStream,
  waitFor,
  type Json,
  type TestApp,
  cloudflareDirect,
  sharedStream,
  emulator,
} from "../helpers";

beforeEach(resetEmulator);
afterEach(resetClock);

const OUTPUTS_PATH = `${LIVE_INPUTS_PATH}/*/outputs`;
const add = (app: TestApp, streamId: string, body: unknown, headers: Record<string, string> = {}) =>
  call("POST", `/api/streams/${streamId}/outputs`, body, { ...app.headers, ...headers });
const list = (app: TestApp, streamId: string) => call("GET", `/api/streams/${streamId}/outputs`, undefined, app.headers);
const remove = (app: TestApp, streamId: string, outputId: string) => call("DELETE", `/api/streams/${streamId}/outputs/${outputId}`, undefined, app.headers);
const yt = (key: string) => `rtmp://a.rtmp.youtube.com/live2/${key}`;

/** Cloudflare's outputs for the stream as full URLs, to compare one for one with ours. */
async function remoteUrls(streamId: string): Promise<string[]> {
  const input = await inputFor(streamId);
  return (input?.outputs ?? []).map((o: Json) => `${o.url}/${o.streamKey}`).sort();
}
async function ourUrls(app: TestApp, streamId: string): Promise<string[]> {
  return (await list(app, streamId)).body.outputs.map((o: Json) => o.url).sort();
}

describe("POST /api/streams/:streamId/outputs", () => {
  it("adds an output, split into url and streamKey at Cloudflare", async () => {
    const app = await registerApp();
    const s = await startStream(app);
    const res = await add(app, s.streamId, { url: yt("my-key-1"), name: "YouTube" });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ success: true, outputId: expect.any(String), message: "Output added successfully" });
    const input = await inputFor(s.streamId);
    expect(input.outputs).toHaveLength(1);
    expect(input.outputs[0]).toMatchObject({ url: "rtmp://a.rtmp.youtube.com/live2", streamKey: "my-key-1", enabled: true });

    const listed = await list(app, s.streamId);
    expect(listed.status).toBe(200);
    expect(listed.body).toEqual({
      streamId: s.streamId,
      outputs: [{ outputId: res.body.outputId, url: yt("my-key-1"), name: "YouTube", addedBy: app.packageName, status: "connecting", error: null, enabled: true }],
      total: 1,
      maxPerStream: 10,
      maxPerApp: 10,
    });
  });

  it("INVALID_URL for every malformed url, before anything else", async () => {
    const app = await registerApp();
    const s = await startStream(app);
    const bodies = [{}, { url: 42 }, { url: "http://x.example/live/k" }, { url: "rtmp://" }, { url: `rtmp://h.example/${"k".repeat(2_050)}` }, "{bad json", []];
    for (const body of bodies) {
      const res = await add(app, s.streamId, body);
      expect(res.status, JSON.stringify(body).slice(0, 40)).toBe(400);
      expect(res.body).toEqual({ error: "INVALID_URL", message: expect.any(String) });
    }
    // A bad name is not a bad URL.
    expect(await add(app, s.streamId, { url: yt("named"), name: 7 })).toMatchObject({ status: 400, body: { error: "INVALID_REQUEST" } });
    // URL checks come before the stream lookup.
    const unknown = await add(app, "AAAAAAAAAAAAAAAAAAAAA", { url: "ftp://nope" });
    expect(unknown.body.error).toBe("INVALID_URL");
  });

  it("STREAM_NOT_FOUND, then NOT_A_VIEWER, in that order", async () => {
    const [owner, stranger] = [await registerApp(), await registerApp()];
    const s = await startStream(owner);
    expect(await add(owner, "AAAAAAAAAAAAAAAAAAAAA", { url: yt("k") })).toMatchObject({
      status: 404,
      body: { error: "STREAM_NOT_FOUND", message: "Managed stream not found" },
    });
    expect(await add(stranger, s.streamId, { url: yt("k") })).toMatchObject({
      status: 403,
      body: { error: "NOT_A_VIEWER", message: "App is not viewing the stream" },
    });
    // An app that left is no longer a viewer.
    await call("DELETE", `/api/streams/${s.streamId}`, undefined, owner.headers);
    expect((await add(owner, s.streamId, { url: yt("k") })).body.error).toBe("NOT_A_VIEWER");
  });

  it("MAX_OUTPUTS_REACHED at 10 per stream, checked before the app cap and duplicates", async () => {
    const { a, b, s } = await sharedStream();
    for (let i = 0; i < 6; i++) expect((await add(a, s.streamId, { url: yt(`a${i}`) })).status).toBe(200);
    for (let i = 0; i < 4; i++) expect((await add(b, s.streamId, { url: yt(`b${i}`) })).status).toBe(200);
    const full = await add(b, s.streamId, { url: yt("a0") });
    expect(full).toMatchObject({ status: 409, body: { error: "MAX_OUTPUTS_REACHED", message: "Maximum outputs per stream reached (10)" } });
  });

  it("MAX_APP_OUTPUTS_REACHED at 10 per app across streams, checked before duplicates", async () => {
    const app = await registerApp();
    const [s1, s2] = [await startStream(app), await startStream(app)];
    for (let i = 0; i < 5; i++) await add(app, s1.streamId, { url: yt(`one${i}`) });
    for (let i = 0; i < 5; i++) await add(app, s2.streamId, { url: yt(`two${i}`) });
    const s3 = await startStream(app);
    expect(await add(app, s3.streamId, { url: yt("three") })).toMatchObject({
      status: 409,
      body: { error: "MAX_APP_OUTPUTS_REACHED", message: "Maximum outputs per app reached (10)" },
    });
    // Both the app cap and a duplicate apply: the app cap wins.
    expect((await add(app, s1.streamId, { url: yt("one0") })).body.error).toBe("MAX_APP_OUTPUTS_REACHED");
  });

  it("DUPLICATE_URL after normalizing scheme and host case, default port and trailing slash", async () => {
    const { a, b, s } = await sharedStream();
    await add(a, s.streamId, { url: "rtmp://live.example.com/app/key" });
    for (const url of ["RTMP://LIVE.example.com:1935/app/key/", "rtmp://live.EXAMPLE.com/app/key"]) {
      expect(await add(b, s.streamId, { url })).toMatchObject({ status: 409, body: { error: "DUPLICATE_URL", message: "URL already exists as output" } });
    }
    // Duplicates are refused before Cloudflare is even asked (two 500s: the retry after a lost answer fails too).
    await injectFault({ method: "POST", path: OUTPUTS_PATH, status: 500, count: 2 });
    expect((await add(b, s.streamId, { url: "rtmp://live.example.com/app/key" })).body.error).toBe("DUPLICATE_URL");
    expect((await add(b, s.streamId, { url: "rtmp://live.example.com/app/other" })).body.error).toBe("CLOUDFLARE_ERROR");
  });

  it("an Idempotency-Key makes a retry return the original result and create nothing new", async () => {
    const app = await registerApp();
    const s = await startStream(app);
    const headers = { "idempotency-key": "retry-1" };
    const [first, concurrent] = await Promise.all([add(app, s.streamId, { url: yt("idem") }, headers), add(app, s.streamId, { url: yt("idem") }, headers)]);
    const again = await add(app, s.streamId, { url: yt("idem") }, headers);
    expect(first.status).toBe(200);
    expect(concurrent.body).toEqual(first.body);
    expect(again.body).toEqual(first.body);
    expect(await remoteUrls(s.streamId)).toEqual([yt("idem")]);
    // Without the key, the same URL is a duplicate.
    expect((await add(app, s.streamId, { url: yt("idem") })).body.error).toBe("DUPLICATE_URL");
    // The same key for a different request is refused.
    expect(await add(app, s.streamId, { url: yt("other") }, headers)).toMatchObject({ status: 422, body: { error: "IDEMPOTENCY_KEY_REUSED" } });
  });

  it("a failed request with an Idempotency-Key is not remembered: fix the cause, retry, succeed", async () => {
    const [owner, late] = [await registerApp(), await registerApp()];
    const userId = newUserId();
    const s = await startStream(owner, userId);
    const headers = { "idempotency-key": "late-1" };
    expect((await add(late, s.streamId, { url: yt("late") }, headers)).body.error).toBe("NOT_A_VIEWER");
    await startStream(late, userId);
    expect((await add(late, s.streamId, { url: yt("late") }, headers)).status).toBe(200);
  });

  it("restreamDestinations at start pass the same rules, and each result is reported", async () => {
    const app = await registerApp();
    const res = await postStream(app, {
      userId: newUserId(),
      restreamDestinations: [{ url: yt("d1"), name: "YT" }, { url: "http://bad" }, { url: yt("d1") }, { url: 7 }],
    });
    expect(res.status).toBe(201);
    expect(res.body.restreamResults).toEqual([
      { url: yt("d1"), success: true, outputId: expect.any(String) },
      { url: "http://bad", success: false, error: "INVALID_URL", message: expect.any(String) },
      { url: yt("d1"), success: false, error: "DUPLICATE_URL", message: "URL already exists as output" },
      { url: null, success: false, error: "INVALID_URL", message: "url must be a string" },
    ]);
    expect(await remoteUrls(res.body.streamId)).toEqual([yt("d1")]);
  });
});

describe("DELETE and PATCH", () => {
  it("only the adding app may remove; 404 for unknown outputs", async () => {
    const { a, b, s } = await sharedStream();
    const { outputId } = (await add(a, s.streamId, { url: yt("mine") })).body;
    expect(await remove(b, s.streamId, outputId)).toMatchObject({ status: 403, body: { error: "NOT_AUTHORIZED", message: "App did not add this output" } });
    expect(await remove(a, s.streamId, "nope")).toMatchObject({ status: 404, body: { error: "OUTPUT_NOT_FOUND", message: "Output ID not found" } });
    expect(await remove(a, s.streamId, outputId)).toMatchObject({ status: 200, body: { success: true, message: "Output removed successfully" } });
    expect(await remoteUrls(s.streamId)).toEqual([]);
    expect((await remove(a, s.streamId, outputId)).body.error).toBe("OUTPUT_NOT_FOUND");
    expect((await remove(a, "AAAAAAAAAAAAAAAAAAAAA", outputId)).body.error).toBe("STREAM_NOT_FOUND");
  });

  it("outputs outlive their owner's viewing; the owner may still remove them after leaving", async () => {
    const { a, b, s } = await sharedStream();
    const { outputId } = (await add(a, s.streamId, { url: yt("keeps") })).body;
    await call("DELETE", `/api/streams/${s.streamId}`, undefined, a.headers);
    expect(await remoteUrls(s.streamId)).toEqual([yt("keeps")]);
    expect((await list(b, s.streamId)).body.total).toBe(1);
    expect((await remove(a, s.streamId, outputId)).status).toBe(200);
  });

  it("PATCH enabled maps to Cloudflare's toggle, owner only", async () => {
    const { a, b, s } = await sharedStream();
    const { outputId } = (await add(a, s.streamId, { url: yt("toggle") })).body;
    const path = `/api/streams/${s.streamId}/outputs/${outputId}`;
    expect((await call("PATCH", path, { enabled: false }, b.headers)).body.error).toBe("NOT_AUTHORIZED");
    expect((await call("PATCH", path, { enabled: "no" }, a.headers)).status).toBe(400);
    expect((await call("PATCH", path, { enabled: false }, a.headers)).status).toBe(200);
    expect((await inputFor(s.streamId)).outputs[0].enabled).toBe(false);
    expect((await list(a, s.streamId)).body.outputs[0]).toMatchObject({ enabled: false, status: "unknown" });
    // Refused by Cloudflare: the client hears it, and the output is as it was.
    await injectFault({ method: "PUT", path: `${OUTPUTS_PATH}/*`, status: 400 });
    const failed = await call("PATCH", path, { enabled: true }, a.headers);
    expect(failed).toMatchObject({ status: 502, body: { error: "CLOUDFLARE_ERROR" } });
    expect((await list(a, s.streamId)).body.outputs[0]).toMatchObject({ enabled: false, status: "unknown", error: null });
    expect((await inputFor(s.streamId)).outputs[0].enabled).toBe(false);
    expect((await call("PATCH", path, { enabled: true }, a.headers)).status).toBe(200);
    expect((await list(a, s.streamId)).body.outputs[0]).toMatchObject({ enabled: true, status: "connecting", error: null });
  });

  it("GET is for viewers only", async () => {
    const [a, stranger] = [await registerApp(), await registerApp()];
    const s = await startStream(a);
    expect(await list(stranger, s.streamId)).toMatchObject({ status: 403, body: { error: "NOT_A_VIEWER" } });
    expect((await list(stranger, "AAAAAAAAAAAAAAAAAAAAA")).body.error).toBe("STREAM_NOT_FOUND");
    await call("DELETE", `/api/streams/${s.streamId}`, undefined, a.headers);
    expect(await list(a, s.streamId)).toMatchObject({ status: 403, body: { error: "NOT_A_VIEWER" } });
  });
});

describe("stream keys stay secret", () => {
  it("another app sees the URL masked, over REST and WebSocket", async () => {
    const { a, b, s } = await sharedStream();
    const wa = await openSocket(s.streamId, { headers: a.headers });
    const wb = await openSocket(s.streamId, { headers: b.headers });
    await add(a, s.streamId, { url: yt("super-secret-key"), name: "YT" });

    expect((await list(a, s.streamId)).body.outputs[0].url).toBe(yt("super-secret-key"));
    expect((await list(b, s.streamId)).body.outputs[0].url).toBe("rtmp://a.rtmp.youtube.com/live2/****");

    const seenByA = await waitFor(async () => wa.messages.find((m) => m.outputs?.length), 10_000, "a's push");
    const seenByB = await waitFor(async () => wb.messages.find((m) => m.outputs?.length), 10_000, "b's push");
    expect(seenByA.outputs[0]).toMatchObject({ url: yt("super-secret-key"), name: "YT", status: "stopped" });
    expect(seenByA.outputs[0]).not.toHaveProperty("error"); // absent, not null (the SDK's `error?: string`)
    expect(seenByB.outputs[0].url).toBe("rtmp://a.rtmp.youtube.com/live2/****");
    expect(JSON.stringify(wb.messages)).not.toContain("super-secret-key");
  });
});

describe("races", () => {
  it("50 parallel adds to one stream: exactly 10 succeed", async () => {
    const apps = await Promise.all(Array.from({ length: 5 }, () => registerApp()));
    const userId = newUserId();
    const s = await startStream(apps[0]!, userId);
    for (const app of apps.slice(1)) await startStream(app, userId);
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) => add(apps[i % 5]!, s.streamId, { url: yt(`race-${i}`) })),
    );
    expect(results.filter((r) => r.status === 200)).toHaveLength(10);
    expect(new Set(results.filter((r) => r.status !== 200).map((r) => r.body.error))).toEqual(new Set(["MAX_OUTPUTS_REACHED"]));
    expect(await remoteUrls(s.streamId)).toHaveLength(10);
  });

  it("20 parallel adds of one URL: exactly 1 succeeds", async () => {
    const app = await registerApp();
    const s = await startStream(app);
    const results = await Promise.all(Array.from({ length: 20 }, () => add(app, s.streamId, { url: yt("same") })));
    expect(results.filter((r) => r.status === 200)).toHaveLength(1);
    expect(results.filter((r) => r.body.error === "DUPLICATE_URL")).toHaveLength(19);
    expect(await remoteUrls(s.streamId)).toEqual([yt("same")]);
  });

  it("one app adding in parallel across 3 streams: exactly 10 in total", async () => {
    const app = await registerApp();
    const streams = [await startStream(app), await startStream(app), await startStream(app)];
    const results = await Promise.all(
      Array.from({ length: 21 }, (_, i) => add(app, streams[i % 3]!.streamId, { url: yt(`across-${i}`) })),
    );
    expect(results.filter((r) => r.status === 200)).toHaveLength(10);
    expect(results.filter((r) => r.body.error === "MAX_APP_OUTPUTS_REACHED")).toHaveLength(11);
    let total = 0;
    for (const s of streams) total += (await remoteUrls(s.streamId)).length;
    expect(total).toBe(10);
  });
});

describe("Cloudflare faults leave ours and Cloudflare's outputs equal, one for one", () => {
  // Lost answers (5xx, timeouts, drops) are covered call by call in fault-matrix.test.ts.
  it("delete: a refusal keeps the output on both sides; a retry removes it from both", async () => {
    const app = await registerApp();
    const s = await startStream(app);
    const { outputId } = (await add(app, s.streamId, { url: yt("stay") })).body;
    await injectFault({ method: "DELETE", path: `${OUTPUTS_PATH}/*`, status: 400 });
    expect((await remove(app, s.streamId, outputId)).body.error).toBe("CLOUDFLARE_ERROR");
    expect(await remoteUrls(s.streamId)).toEqual(await ourUrls(app, s.streamId));
    expect((await remove(app, s.streamId, outputId)).status).toBe(200);
    expect(await remoteUrls(s.streamId)).toEqual([]);
    expect(await ourUrls(app, s.streamId)).toEqual([]);
  });

  it("stopping the stream deletes its outputs and frees the app's slots", async () => {
    const app = await registerApp();
    const s = await startStream(app);
    for (let i = 0; i < 10; i++) await add(app, s.streamId, { url: yt(`stop-${i}`) });
    const input = await inputFor(s.streamId);
    await call("POST", `/api/admin/streams/${s.streamId}/stop`, undefined, ADMIN);
    expect(await inputFor(s.streamId)).toBeUndefined();
    expect(input.outputs).toHaveLength(10);
    const next = await startStream(app);
    expect((await add(app, next.streamId, { url: yt("fresh") })).status).toBe(200);
  });
});

describe("a crash in the middle of adding an output", () => {
  it("the reconcile timer adopts what Cloudflare made, and drops what it did not", async () => {
    const app = await registerApp();
    const s = await startStream(app);
    const input = await inputFor(s.streamId);
    // Cloudflare made one output, then our object died before recording it; a second never got made.
    await cloudflareDirect("POST", `/${input.uid}/outputs`, { url: "rtmp://a.rtmp.youtube.com/live2", streamKey: "made" });
    await runInDurableObject(env.STREAMS.getByName(s.streamId), (_i, state) => {
      for (const [id, key] of [["crash-made", "made"], ["crash-lost", "lost"]]) {
        state.storage.sql.exec(
          `INSERT INTO outputs (output_id, added_by, url, normalized_url, masked_url, server, stream_key, name, state, created_at)
           VALUES (?, ?, ?, ?, ?, 'rtmp://a.rtmp.youtube.com/live2', ?, NULL, 'pending', 0)`,
          id, app.packageName, yt(key!), yt(key!), "rtmp://a.rtmp.youtube.com/live2/****", key!,
        );
      }
      state.storage.sql.exec("INSERT INTO schedule (name, due_at) VALUES ('outputs-reconcile', 0)");
    });
    await env.APPS.getByName(app.packageName).reserveOutput(s.streamId, "crash-made");
    await env.APPS.getByName(app.packageName).reserveOutput(s.streamId, "crash-lost");
    await expireTimer(s.streamId, "outputs-reconcile");

    const listed = (await list(app, s.streamId)).body.outputs;
    expect(listed.map((o: Json) => o.outputId)).toEqual(["crash-made"]);
    expect(await remoteUrls(s.streamId)).toEqual([yt("made")]);
    expect(await env.APPS.getByName(app.packageName).outputCount()).toBe(1);
  });

  it("a live input gone at Cloudflare has no outputs: the reconcile settles its rows once, without retrying", async () => {
    const app = await registerApp();
    const s = await startStream(app);
    const input = await inputFor(s.streamId);
    await runInDurableObject(env.STREAMS.getByName(s.streamId), (_i, state) => {
      state.storage.sql.exec(
        `INSERT INTO outputs (output_id, added_by, url, normalized_url, masked_url, server, stream_key, name, state, created_at)
         VALUES ('crash-pending', ?, ?, ?, 'rtmp://a.rtmp.youtube.com/live2/****', 'rtmp://a.rtmp.youtube.com/live2', 'k', NULL, 'pending', 0)`,
        app.packageName, yt("k"), yt("k"),
      );
      state.storage.sql.exec("INSERT INTO schedule (name, due_at) VALUES ('outputs-reconcile', 0)");
    });
    await env.APPS.getByName(app.packageName).reserveOutput(s.streamId, "crash-pending");
    // Deleted behind our back (an operator, another tool): Cloudflare answers 404 for the input and its outputs.
    await cloudflareDirect("DELETE", `/${input.uid}`);
    await expireTimer(s.streamId, "outputs-reconcile");

    expect((await list(app, s.streamId)).body.outputs).toEqual([]);
    expect(await env.APPS.getByName(app.packageName).outputCount()).toBe(0);
    // Settled, not failed: no retry of the reconcile is left behind.
    const attempts = await runInDurableObject(env.STREAMS.getByName(s.streamId), (_i, state) =>
      state.storage.sql.exec<{ attempts: number }>("SELECT attempts FROM schedule WHERE name = 'outputs-reconcile'").toArray(),
    );
    expect(attempts).toEqual([]);
  });
});

describe("promises kept over time", () => {
  it("an Idempotency-Key is remembered for 24 hours after the add, and not a millisecond more", async () => {
    const app = await registerApp();
    const s = await startStream(app);
    // A socket keeps the app a viewer across the day (its join window is long gone).
    const viewer = await openSocket(s.streamId, { headers: app.headers });
    await viewer.next("managed_stream_status");
    const addedAt = freezeClock();
    const headers = { "idempotency-key": "day-1" };
    const first = await add(app, s.streamId, { url: yt("day") }, headers);
    expect(first.status).toBe(200);

    shiftClock(24 * 3_600_000 - 1);
    expect((await add(app, s.streamId, { url: yt("day") }, headers)).body).toEqual(first.body);
    expect((await add(app, s.streamId, { url: yt("day2") }, headers)).body.error).toBe("IDEMPOTENCY_KEY_REUSED");

    shiftClock(1);
    const fresh = await add(app, s.streamId, { url: yt("day2") }, headers);
    expect(fresh.status).toBe(200);
    expect(fresh.body.outputId).not.toBe(first.body.outputId);
    expect(addedAt + 24 * 3_600_000).toBe(addedAt + 86_400_000);
  });

  it("reconcile deletes outputs at Cloudflare that no row of ours claims, and keeps ours", async () => {
    const app = await registerApp();
    const s = await startStream(app);
    const viewer = await openSocket(s.streamId, { headers: app.headers });
    await viewer.next("managed_stream_status");
    expect((await add(app, s.streamId, { url: yt("ours") })).status).toBe(200);
    const input = await inputFor(s.streamId);
    await cloudflareDirect("POST", `/${input.uid}/outputs`, { url: "rtmp://a.rtmp.youtube.com/live2", streamKey: "orphan" });
    expect(await remoteUrls(s.streamId)).toEqual([yt("orphan"), yt("ours")]);
    await runInDurableObject(env.STREAMS.getByName(s.streamId), (_i, state) => {
      state.storage.sql.exec("INSERT INTO schedule (name, due_at) VALUES ('outputs-reconcile', 0) ON CONFLICT(name) DO UPDATE SET due_at = 0");
    });
    await expireTimer(s.streamId, "outputs-reconcile");
    expect(await remoteUrls(s.streamId)).toEqual([yt("ours")]);
    expect(await ourUrls(app, s.streamId)).toEqual([yt("ours")]);
  });

  // A listing of Cloudflare's outputs read before a PATCH landed carries the flag from before it: applied
  // after the PATCH's answer, it would undo the PATCH on our side only (seen in the e2e fault matrix).
  for (const [reader, timer] of [
    ["the reconcile", "outputs-reconcile"],
    ["the outputs poll", "poll-outputs"],
  ] as const) {
    it(`${reader}'s listing, read before a PATCH landed, does not undo the PATCH (ours stays what Cloudflare has)`, async () => {
      const app = await registerApp();
      const s = await startStream(app);
      const { outputId } = (await add(app, s.streamId, { url: yt("crossed") })).body;
      // The listing is read at once (enabled: true) and answered 800 ms later; the PATCH lands in between.
      await injectFault({ method: "GET", path: OUTPUTS_PATH, answerDelayMs: 800, count: 1 });
      await runInDurableObject(env.STREAMS.getByName(s.streamId), (_i, state) => {
        state.storage.sql.exec("INSERT INTO schedule (name, due_at) VALUES (?, 0) ON CONFLICT(name) DO UPDATE SET due_at = 0", timer);
      });
      const reading = expireTimer(s.streamId, timer);
      await waitFor(async () => (await emulator("GET", "faults")).faults.length === 0, 5_000, "the listing to be read");
      const path = `/api/streams/${s.streamId}/outputs/${outputId}`;
      expect((await call("PATCH", path, { enabled: false }, app.headers)).status).toBe(200);
      await reading;
      expect((await inputFor(s.streamId)).outputs[0].enabled).toBe(false);
      expect((await list(app, s.streamId)).body.outputs[0]).toMatchObject({ outputId, enabled: false });
    });
  }

  it("a listing read with no PATCH in flight sets our flag to Cloudflare's (the flag is Cloudflare's truth)", async () => {
    const app = await registerApp();
    const s = await startStream(app);
    const { outputId } = (await add(app, s.streamId, { url: yt("truth") })).body;
    const input = await inputFor(s.streamId);
    await cloudflareDirect("PUT", `/${input.uid}/outputs/${input.outputs[0].uid}`, { enabled: false });
    await runInDurableObject(env.STREAMS.getByName(s.streamId), (_i, state) => {
      state.storage.sql.exec("INSERT INTO schedule (name, due_at) VALUES ('outputs-reconcile', 0) ON CONFLICT(name) DO UPDATE SET due_at = 0");
    });
    await expireTimer(s.streamId, "outputs-reconcile");
    expect((await list(app, s.streamId)).body.outputs[0]).toMatchObject({ outputId, enabled: false });
  });

  it("a ledger reconcile keeps the slot of an output that is live at its stream (the per-app cap holds)", async () => {
    const app = await registerApp();
    const s = await startStream(app);
    const viewer = await openSocket(s.streamId, { headers: app.headers });
    await viewer.next("managed_stream_status");
    const added = await add(app, s.streamId, { url: yt("live") });
    expect(added.status).toBe(200);
    const account = env.APPS.getByName(app.packageName);
    const now = freezeClock();
    // As a lost commit leaves it: the output is live at the stream, the ledger still says pending.
    await runInDurableObject(account, async (_i, state) => {
      state.storage.sql.exec("UPDATE output_ledger SET state = 'pending', updated_at = ?", now);
      await state.storage.setAlarm(Date.now() + 60_000);
    });
    const ledger = () =>
      runInDurableObject(account, (_i, state) => state.storage.sql.exec<{ state: string }>("SELECT state FROM output_ledger").toArray().map((r) => r.state));

    shiftClock(2 * 60_000 - 1);
    await runDurableObjectAlarm(account);
    expect(await ledger()).toEqual(["pending"]);
    shiftClock(1);
    await runInDurableObject(account, async (_i, state) => void (await state.storage.setAlarm(Date.now() + 60_000)));
    await runDurableObjectAlarm(account);
    expect(await ledger()).toEqual(["committed"]);
    expect(await account.outputCount()).toBe(1);
  });
});
