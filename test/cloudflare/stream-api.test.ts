import { beforeEach, describe, expect, it } from "vitest";
import { CloudflareCallError, META_MARKER, StreamApi, parseIngestState } from "../../src/cloudflare/stream-api";
import { ApiError } from "../../src/http/errors";
import { RecordingBudget, calls, cloudflare, control, injectFault, resetEmulator, testConfig, type Json } from "./emulated";

/** StreamApi (src/cloudflare/stream-api.ts) against the Stream emulator, with a budget that records what it is told. */
let budget: RecordingBudget;
let api: StreamApi;
beforeEach(async () => {
  await resetEmulator();
  budget = new RecordingBudget();
  api = new StreamApi(testConfig(), budget);
});

const recording = { mode: "off" as const };
const newInput = (streamId = `s-${crypto.randomUUID()}`, extra: Partial<Parameters<StreamApi["createLiveInput"]>[0]> = {}) =>
  api.createLiveInput({ streamId, ingestProtocol: "rtmp", recording, deleteRecordingAfterDays: null, ...extra });
const rejection = (p: Promise<unknown>) => p.then(() => expect.unreachable("should have thrown"), (e: unknown) => e as CloudflareCallError);
const inputPath = (uid: string) => `/client/v4/accounts/*/stream/live_inputs/${uid}`;

describe("creating and reading live inputs", () => {
  it("a live input is created ours (marked, named, its recordings' creator the stream) and answered with its ingest credentials", async () => {
    const created = await newInput("stream-1", { ingestProtocol: "srt", recording: { mode: "automatic", timeoutSeconds: 10 } });
    expect(created.uid).toMatch(/^[0-9a-f]{32}$/);
    expect(created.ingest).toMatchObject({ rtmpsUrl: expect.stringMatching(/^rtmps?:\/\//), rtmpsStreamKey: expect.any(String) });
    expect(created.ingest.srtUrl).toMatch(/^srt:/);
    expect(created.ingest.srtStreamId).toEqual(expect.any(String));
    expect(created.ingest.srtPassphrase).toEqual(expect.any(String));
    expect(created.ingest.whipUrl).toMatch(/^https?:/);
    const remote = (await cloudflare("GET", `/live_inputs/${created.uid}`)).body.result;
    expect(remote.meta).toEqual({ name: "stream-coordinator:stream-1", managedBy: "stream-coordinator", streamId: "stream-1", ingest: "srt" });
    // Cloudflare does not answer it back: its recordings show it.
    await control("POST", `live_inputs/${created.uid}/connect`);
    expect((await control("GET", "state")).videos.find((v: Json) => v.liveInput === created.uid)?.creator).toBe("stream-1");
    expect(remote.recording).toMatchObject({ mode: "automatic", timeoutSeconds: 10 });
    expect(remote.enabled).toBe(true);
    expect(remote.deleteRecordingAfterDays ?? null).toBeNull();
    expect(await api.getLiveInput(created.uid)).toEqual(created);
  });

  it("a recording retention is sent only when one is set", async () => {
    const sent: Json[] = [];
    const realFetch = globalThis.fetch;
    globalThis.fetch = async (input: RequestInfo | URL, init?: RequestInit) => {
      const request = new Request(input, init);
      if (request.method === "POST") sent.push(await request.clone().json());
      return realFetch(request);
    };
    try {
      // The SDK takes fetch when its client is made.
      api = new StreamApi(testConfig(), budget);
      const created = await newInput(undefined, { deleteRecordingAfterDays: 30 });
      expect((await cloudflare("GET", `/live_inputs/${created.uid}`)).body.result.deleteRecordingAfterDays).toBe(30);
      await newInput(undefined, { deleteRecordingAfterDays: null });
    } finally {
      globalThis.fetch = realFetch;
    }
    expect(sent[0].deleteRecordingAfterDays).toBe(30);
    expect("deleteRecordingAfterDays" in sent[1]).toBe(false);
  });

  it("a create retried for the same stream (its answer lost) returns the same input, not a second one", async () => {
    await injectFault({ method: "POST", path: "/client/v4/accounts/*/stream/live_inputs", status: 500, afterEffect: true });
    const lost = await rejection(newInput("stream-retry"));
    expect(lost).toMatchObject({ upstreamStatus: 500, definitelyNotApplied: false });
    const retried = await newInput("stream-retry");
    const listed = (await cloudflare("GET", "/live_inputs")).body.result.liveInputs;
    expect(listed.map((i: Json) => i.uid)).toEqual([retried.uid]);
  });

  it("an input answered without ingest credentials is a 502 CLOUDFLARE_ERROR, not a half-made stream", async () => {
    for (const body of [{ success: true, errors: [], messages: [], result: { uid: "abc" } }, { success: true, errors: [], messages: [], result: { rtmps: { url: "rtmps://x", streamKey: "k" } } }, { success: true, errors: [], messages: [], result: { uid: "abc", rtmps: { url: "rtmps://x" } } }]) {
      await injectFault({ method: "GET", path: inputPath("abc"), status: 200, body });
      const error = await rejection(api.getLiveInput("abc"));
      expect(error).toBeInstanceOf(ApiError);
      expect(error).toMatchObject({ status: 502, code: "CLOUDFLARE_ERROR", message: "Cloudflare returned a live input without ingest credentials" });
    }
  });

  it("an input without SRT or WebRTC ingest has null for those credentials", async () => {
    await injectFault({ method: "GET", path: inputPath("abc"), status: 200, body: { success: true, errors: [], messages: [], result: { uid: "abc", rtmps: { url: "rtmps://x", streamKey: "k" } } } });
    expect(await api.getLiveInput("abc")).toEqual({
      uid: "abc",
      ingest: { rtmpsUrl: "rtmps://x", rtmpsStreamKey: "k", srtUrl: null, srtStreamId: null, srtPassphrase: null, whipUrl: null },
    });
  });

  it("only our inputs are listed (by marker), with their stream id and creation time", async () => {
    const ours = await newInput("stream-ours");
    await cloudflare("POST", "/live_inputs", { meta: { name: "someone else's" } });
    await cloudflare("POST", "/live_inputs", { meta: { managedBy: META_MARKER } });
    const listed = await api.listOurLiveInputs();
    expect(listed).toHaveLength(2);
    expect(listed).toContainEqual({ uid: ours.uid, streamId: "stream-ours", created: expect.any(String) });
    expect(listed.find((i) => i.uid !== ours.uid)).toMatchObject({ streamId: null });
  });

  it("a listed input without a uid is left out; one without a creation time or a string stream id has null; meta of any other shape is not ours", async () => {
    const listed = [
      { uid: "", meta: { managedBy: META_MARKER, streamId: "s-empty" } },
      { meta: { managedBy: META_MARKER, streamId: "s-none" } },
      { uid: "u1", meta: { managedBy: META_MARKER, streamId: 7 } },
      { uid: "u2", meta: null },
      { uid: "u3", meta: META_MARKER },
      { uid: "u4", meta: { managedBy: "someone-else", streamId: "s-4" } },
      { uid: "u5", meta: { managedBy: META_MARKER, streamId: "s-5" }, created: "2026-12-01T00:00:00Z" },
    ];
    await injectFault({ method: "GET", path: "/client/v4/accounts/*/stream/live_inputs", status: 200, body: { success: true, errors: [], messages: [], result: { liveInputs: listed, range: 7, total: 7 } } });
    expect(await api.listOurLiveInputs()).toEqual([
      { uid: "u1", streamId: null, created: null },
      { uid: "u5", streamId: "s-5", created: "2026-12-01T00:00:00Z" },
    ]);
    await injectFault({ method: "GET", path: "/client/v4/accounts/*/stream/live_inputs", status: 200, body: { success: true, errors: [], messages: [], result: {} } });
    expect(await api.listOurLiveInputs()).toEqual([]);
  });

  it("the ingest state is read from either shape of the input's status", async () => {
    const { uid } = await newInput();
    expect(await api.getIngestState(uid)).toBe("idle");
    expect(budget.acquired.at(-1)?.priority).toBe("user");
    await control("POST", `live_inputs/${uid}/connect`);
    expect(await api.getIngestState(uid, "poll")).toBe("connected");
    expect(budget.acquired.at(-1)?.priority).toBe("poll");
    for (const [status, state] of [
      [null, "idle"],
      [undefined, "idle"],
      ["", "idle"],
      [{}, "idle"],
      [{ current: {} }, "idle"],
      [{ current: { state: "connected" } }, "connected"],
      [{ current: { state: "reconnected" } }, "connected"],
      ["connected", "connected"],
      ["reconnected", "connected"],
      ["reconnecting", "disconnected"],
      [{ current: { state: "client_disconnect" } }, "disconnected"],
      ["ttl_exceeded", "disconnected"],
      [42, "idle"],
    ] as const) {
      expect([status, parseIngestState(status)]).toEqual([status, state]);
    }
  });
});

describe("live viewers (the delivery host's /views)", () => {
  it("reads the live viewer count at poll priority", async () => {
    const { uid } = await newInput();
    await control("POST", `live_inputs/${uid}/connect`);
    await control("POST", `live_inputs/${uid}/views`, { liveViewers: 7 });
    expect(await api.getLiveViewers(uid)).toBe(7);
    await control("POST", `live_inputs/${uid}/views`, { liveViewers: 0 });
    expect(await api.getLiveViewers(uid)).toBe(0);
    expect(budget.acquired.map((a) => a.priority)).toEqual(["user", "poll", "poll"]);
  });

  it("an unknown input's views are a failed call with the host's status", async () => {
    const error = await rejection(api.getLiveViewers("0123456789abcdef0123456789abcdef"));
    expect(error).toBeInstanceOf(CloudflareCallError);
    expect(error.upstreamStatus).toBeGreaterThanOrEqual(400);
    expect(error.message).toMatch(/^The delivery host answered \d+ for views$/);
  });

  /** Runs `fn` with the delivery host's /views answered by `answer` (the emulator's are always well formed). */
  async function withViews(answer: (init?: RequestInit) => Promise<Response>, fn: () => Promise<void>): Promise<void> {
    const realFetch = globalThis.fetch;
    globalThis.fetch = (input: RequestInfo | URL, init?: RequestInit) =>
      String(input instanceof Request ? input.url : input).endsWith("/views") ? answer(init) : realFetch(input, init);
    try {
      await fn();
    } finally {
      globalThis.fetch = realFetch;
    }
  }

  it("a views answer without a whole, non-negative count is a failed call (502), not a number made up", async () => {
    for (const body of ['{"liveViewers":-1}', '{"liveViewers":1.5}', '{"liveViewers":"3"}', "{}", "null", "not json"]) {
      await withViews(async () => new Response(body, { status: 200 }), async () => {
        const error = await rejection(api.getLiveViewers("abc"));
        expect([body, error.message, error.upstreamStatus]).toEqual([body, "The delivery host's views answer has no liveViewers count", 502]);
      });
    }
    await withViews(async () => new Response('{"liveViewers":0}'), async () => expect(await api.getLiveViewers("abc")).toBe(0));
  });

  it("a views refusal without a body is still a failed call with the host's status", async () => {
    await withViews(async () => new Response(null, { status: 404 }), async () => {
      expect(await rejection(api.getLiveViewers("abc"))).toMatchObject({ upstreamStatus: 404, message: "The delivery host answered 404 for views" });
    });
  });

  it("a delivery host that never answers is given up after CLOUDFLARE_TIMEOUT_MS: a lost call, no status", async () => {
    const quick = new StreamApi(testConfig({ CLOUDFLARE_TIMEOUT_MS: "100" }), budget);
    const hang = (init?: RequestInit) => new Promise<Response>((_resolve, reject) => init?.signal?.addEventListener("abort", () => reject(init.signal!.reason)));
    await withViews(hang, async () => {
      const error = await rejection(quick.getLiveViewers("abc"));
      expect(error).toBeInstanceOf(CloudflareCallError);
      expect(error).toMatchObject({ upstreamStatus: undefined, definitelyNotApplied: false });
    });
  });

  it("no delivery host configured: a failed call, nothing sent and no budget spent", async () => {
    const unhosted = new StreamApi(testConfig({ STREAM_CUSTOMER_CODE: "" }), budget);
    const error = await rejection(unhosted.getLiveViewers("abc"));
    expect(error).toBeInstanceOf(CloudflareCallError);
    expect(error.message).toMatch(/No delivery host configured/);
    expect(budget.acquired).toEqual([]);
  });
});

describe("outputs", () => {
  it("an output is created, listed (enabled unless Cloudflare says false), toggled and deleted", async () => {
    const { uid } = await newInput();
    const made = await api.createOutput(uid, { url: "rtmp://a.example/live", streamKey: "key-1", enabled: true });
    expect(made).toMatchObject({ url: "rtmp://a.example/live", streamKey: "key-1", enabled: true });
    expect(made.uid).not.toBe("");
    const off = await api.createOutput(uid, { url: "rtmp://b.example/live", streamKey: "key-2", enabled: false });
    expect(off.enabled).toBe(false);
    expect((await api.listOutputs(uid)).map((o) => [o.uid, o.enabled]).sort()).toEqual([[made.uid, true], [off.uid, false]].sort());
    await api.setOutputEnabled(uid, made.uid, false);
    expect((await api.listOutputs(uid, "user")).find((o) => o.uid === made.uid)?.enabled).toBe(false);
    budget.acquired.length = 0;
    await api.deleteOutput(uid, made.uid);
    expect((await api.listOutputs(uid)).map((o) => o.uid)).toEqual([off.uid]);
    // A delete is the user's by default; a listing is cleanup's.
    expect(budget.acquired.map((a) => a.priority)).toEqual(["user", "cleanup"]);
  });

  it("an output's fields default to empty strings and enabled when Cloudflare leaves them out; an emulator relay state is kept", async () => {
    const body = { success: true, errors: [], messages: [], result: [{}, { uid: "o2", url: "rtmp://x", streamKey: "k", enabled: false, relay: { state: "idle", lastError: null } }, { uid: "o3", relay: "idle" }] };
    await injectFault({ method: "GET", path: `${inputPath("abc")}/outputs`, status: 200, body });
    expect(await api.listOutputs("abc")).toStrictEqual([
      { uid: "", url: "", streamKey: "", enabled: true },
      { uid: "o2", url: "rtmp://x", streamKey: "k", enabled: false, relay: { state: "idle", lastError: null } },
      { uid: "o3", url: "", streamKey: "", enabled: true },
    ]);
  });

  it("deleting an output already gone, or of an input already gone, counts as deleted", async () => {
    const { uid } = await newInput();
    await api.deleteOutput(uid, "0123456789abcdef0123456789abcdef");
    await api.deleteOutput("0123456789abcdef0123456789abcdef", "0123456789abcdef0123456789abcdef");
  });

  it("a delete whose answer was lost is settled by listing: done when the output is gone, whatever else is listed", async () => {
    const { uid } = await newInput();
    await api.createOutput(uid, { url: "rtmp://other.example/live", streamKey: "k", enabled: true });
    const out = await api.createOutput(uid, { url: "rtmp://a.example/live", streamKey: "k", enabled: true });
    await injectFault({ method: "DELETE", path: `${inputPath(uid)}/outputs/${out.uid}`, status: 500, afterEffect: true });
    await control("DELETE", "calls");
    await api.deleteOutput(uid, out.uid);
    expect(await calls()).toEqual([`DELETE /stream/live_inputs/${uid}/outputs/${out.uid} 500`, `GET /stream/live_inputs/${uid}/outputs 200`]);
  });

  it("a delete lost before it happened is sent once more (it is idempotent), and a second loss is an ambiguous failure", async () => {
    const { uid } = await newInput();
    const out = await api.createOutput(uid, { url: "rtmp://a.example/live", streamKey: "k", enabled: true });
    await injectFault({ method: "DELETE", path: `${inputPath(uid)}/outputs/${out.uid}`, drop: true, count: 1 });
    await api.deleteOutput(uid, out.uid);
    expect(await api.listOutputs(uid)).toEqual([]);

    const kept = await api.createOutput(uid, { url: "rtmp://b.example/live", streamKey: "k", enabled: true });
    await injectFault({ method: "DELETE", path: `${inputPath(uid)}/outputs/${kept.uid}`, status: 503, count: 2 });
    await control("DELETE", "calls");
    const error = await rejection(api.deleteOutput(uid, kept.uid));
    expect(error).toMatchObject({ upstreamStatus: 503, definitelyNotApplied: false });
    expect((await calls()).filter((c) => c.startsWith("DELETE"))).toHaveLength(2);
    expect((await api.listOutputs(uid)).map((o) => o.uid)).toEqual([kept.uid]);
  });

  it("a delete whose answer was lost is done when the input itself is gone (its outputs went with it)", async () => {
    const { uid } = await newInput();
    const out = await api.createOutput(uid, { url: "rtmp://a.example/live", streamKey: "k", enabled: true });
    await injectFault({ method: "DELETE", path: `${inputPath(uid)}/outputs/${out.uid}`, status: 500 });
    await injectFault({ method: "GET", path: `${inputPath(uid)}/outputs`, status: 404 });
    await control("DELETE", "calls");
    await api.deleteOutput(uid, out.uid);
    expect(await calls()).toEqual([`DELETE /stream/live_inputs/${uid}/outputs/${out.uid} 500`, `GET /stream/live_inputs/${uid}/outputs 404`]);
  });

  it("a delete Cloudflare refused (4xx) is not retried nor read back: the refusal is the answer", async () => {
    const { uid } = await newInput();
    const out = await api.createOutput(uid, { url: "rtmp://a.example/live", streamKey: "k", enabled: true });
    await injectFault({ method: "DELETE", path: `${inputPath(uid)}/outputs/${out.uid}`, status: 400 });
    await control("DELETE", "calls");
    expect(await rejection(api.deleteOutput(uid, out.uid))).toMatchObject({ upstreamStatus: 400, definitelyNotApplied: true });
    expect(await calls()).toEqual([`DELETE /stream/live_inputs/${uid}/outputs/${out.uid} 400`]);
  });

  it("a delete whose answer was lost and whose truth cannot be read is an ambiguous failure", async () => {
    const { uid } = await newInput();
    const out = await api.createOutput(uid, { url: "rtmp://a.example/live", streamKey: "k", enabled: true });
    await injectFault({ method: "DELETE", path: `${inputPath(uid)}/outputs/${out.uid}`, status: 500, count: 2 });
    await injectFault({ method: "GET", path: `${inputPath(uid)}/outputs`, status: 500, count: 2 });
    expect(await rejection(api.deleteOutput(uid, out.uid))).toMatchObject({ upstreamStatus: 500, definitelyNotApplied: false });
  });

  it("a toggle whose answer was lost is settled by reading that output's flag back", async () => {
    const { uid } = await newInput();
    await api.createOutput(uid, { url: "rtmp://other.example/live", streamKey: "k", enabled: true });
    const out = await api.createOutput(uid, { url: "rtmp://a.example/live", streamKey: "k", enabled: true });
    await injectFault({ method: "PUT", path: `${inputPath(uid)}/outputs/${out.uid}`, status: 502, afterEffect: true });
    await control("DELETE", "calls");
    await api.setOutputEnabled(uid, out.uid, false);
    expect(await calls()).toEqual([`PUT /stream/live_inputs/${uid}/outputs/${out.uid} 502`, `GET /stream/live_inputs/${uid}/outputs 200`]);
    expect((await api.listOutputs(uid)).find((o) => o.uid === out.uid)?.enabled).toBe(false);
  });

  it("a toggle lost before it happened is sent again", async () => {
    const { uid } = await newInput();
    const out = await api.createOutput(uid, { url: "rtmp://a.example/live", streamKey: "k", enabled: true });
    await injectFault({ method: "PUT", path: `${inputPath(uid)}/outputs/${out.uid}`, status: 502 });
    await api.setOutputEnabled(uid, out.uid, false);
    expect((await api.listOutputs(uid)).find((o) => o.uid === out.uid)?.enabled).toBe(false);
  });
});

describe("deleting a live input", () => {
  it("outputs first, then the input; answers how many outputs it deleted", async () => {
    const { uid } = await newInput();
    await api.createOutput(uid, { url: "rtmp://a.example/live", streamKey: "k", enabled: true });
    await api.createOutput(uid, { url: "rtmp://b.example/live", streamKey: "k", enabled: true });
    await control("DELETE", "calls");
    expect(await api.deleteLiveInputWithOutputs(uid)).toBe(2);
    const log = await calls();
    expect(log.map((c) => c.split(" ")[0])).toEqual(["GET", "DELETE", "DELETE", "DELETE"]);
    expect(log.at(-1)).toBe(`DELETE /stream/live_inputs/${uid} 200`);
    expect(budget.acquired.slice(-4).map((a) => a.priority)).toEqual(["cleanup", "cleanup", "cleanup", "cleanup"]);
    expect((await cloudflare("GET", `/live_inputs/${uid}`)).status).toBe(404);
  });

  it("an input already gone counts as deleted, with no outputs", async () => {
    expect(await api.deleteLiveInputWithOutputs("0123456789abcdef0123456789abcdef")).toBe(0);
  });

  it("an output list that fails other than 404 stops the delete (the input is kept, so nothing restreams unseen)", async () => {
    const { uid } = await newInput();
    await injectFault({ method: "GET", path: `${inputPath(uid)}/outputs`, status: 500 });
    expect(await rejection(api.deleteLiveInputWithOutputs(uid))).toMatchObject({ upstreamStatus: 500 });
    expect((await cloudflare("GET", `/live_inputs/${uid}`)).status).toBe(200);
  });

  it("an input delete whose answer was lost is settled by reading the input: done when it is 404", async () => {
    const { uid } = await newInput();
    await injectFault({ method: "DELETE", path: inputPath(uid), status: 500, afterEffect: true });
    await control("DELETE", "calls");
    await api.deleteLiveInput(uid);
    expect(await calls()).toEqual([`DELETE /stream/live_inputs/${uid} 500`, `GET /stream/live_inputs/${uid} 404`]);
  });

  it("an input delete lost before it happened is sent again once the read finds the input still there", async () => {
    const { uid } = await newInput();
    await injectFault({ method: "DELETE", path: inputPath(uid), drop: true });
    await control("DELETE", "calls");
    await api.deleteLiveInput(uid);
    expect((await calls()).map((c) => c.split(" ")[0])).toEqual(["DELETE", "GET", "DELETE"]);
    expect((await cloudflare("GET", `/live_inputs/${uid}`)).status).toBe(404);
  });

  it("an input delete whose answer was lost and whose read fails too is an ambiguous failure", async () => {
    const { uid } = await newInput();
    await injectFault({ method: "DELETE", path: inputPath(uid), status: 500, count: 2 });
    await injectFault({ method: "GET", path: inputPath(uid), status: 500, count: 2 });
    expect(await rejection(api.deleteLiveInput(uid))).toMatchObject({ upstreamStatus: 500, definitelyNotApplied: false });
  });
});

describe("priorities", () => {
  it("each call is paid at its own priority: user for what a user waits on, cleanup for deletes and sweeps", async () => {
    const { uid } = await newInput();
    await api.getLiveInput(uid);
    await api.listOurLiveInputs();
    const out = await api.createOutput(uid, { url: "rtmp://a.example/live", streamKey: "k", enabled: true });
    await injectFault({ method: "PUT", path: `${inputPath(uid)}/outputs/${out.uid}`, status: 502, afterEffect: true });
    await api.setOutputEnabled(uid, out.uid, false);
    await injectFault({ method: "DELETE", path: inputPath(uid), status: 500, afterEffect: true });
    await api.deleteLiveInput(uid);
    expect(budget.acquired.map((a) => a.priority)).toEqual(["user", "user", "cleanup", "user", "user", "user", "cleanup", "cleanup"]);
  });
});

describe("configuration", () => {
  it("without an API token, calls are still sent (with a placeholder) and refused by Cloudflare: an answer, not a crash", async () => {
    const untokened = new StreamApi(testConfig({ CLOUDFLARE_API_TOKEN: "" }), budget);
    expect(await rejection(untokened.listOutputs("abc"))).toMatchObject({ upstreamStatus: 403, definitelyNotApplied: true });
  });

  it("without an account id, calls go to a placeholder account, never to an empty path segment", async () => {
    await control("DELETE", "calls");
    const unaccounted = new StreamApi(testConfig({ CLOUDFLARE_ACCOUNT_ID: "" }), budget);
    await rejection(unaccounted.listOutputs("abc"));
    expect((await control("GET", "calls")).calls.map((c: Json) => c.path)).toEqual(["/client/v4/accounts/unset/stream/live_inputs/abc/outputs"]);
  });
});

describe("every call passes the shared budget", () => {
  it("asks the budget with the configured limit and poll share, at the call's priority", async () => {
    await newInput();
    const config = testConfig();
    expect(budget.acquired).toEqual([{ priority: "user", settings: { limit: config.apiBudgetPer5Min, pollShare: config.apiBudgetPollShare } }]);
  });

  it("a call the budget refuses is not sent: definitely not applied, retry when the budget says, counted by priority", async () => {
    budget.answer = { granted: false, retryAfterMs: 2_500 };
    await control("DELETE", "calls");
    const error = await rejection(api.listOutputs("abc", "poll"));
    expect(error).toMatchObject({ upstreamStatus: undefined, retryAfter: 3, budgetDeferralMs: 2_500, definitelyNotApplied: true });
    expect(error.message).toBe("Cloudflare API budget exhausted; retry in 3 s");
    expect(budget.counted).toEqual([["budget.refused.poll", false]]);
    expect(await calls()).toEqual([]);
  });

  it("a budget that cannot be reached sends nothing: definitely not applied, retried in a second", async () => {
    budget.answer = "unreachable";
    await control("DELETE", "calls");
    const error = await rejection(newInput());
    expect(error).toMatchObject({ upstreamStatus: undefined, retryAfter: 1, budgetDeferralMs: 1_000, definitelyNotApplied: true });
    expect(error.message).toBe("Cloudflare API budget unavailable; retry shortly");
    expect(budget.counted).toEqual([["budget.unavailable", false]]);
    expect(await calls()).toEqual([]);
  });

  it("a 429 from Cloudflare blocks the whole budget for its retry-after (300 s when it gives none)", async () => {
    await injectFault({ method: "POST", path: "/client/v4/accounts/*/stream/live_inputs", status: 429, retryAfter: 17 });
    expect(await rejection(newInput())).toMatchObject({ upstreamStatus: 429, retryAfter: 17, definitelyNotApplied: true });
    await injectFault({ method: "POST", path: "/client/v4/accounts/*/stream/live_inputs", status: 429 });
    const error = await rejection(newInput());
    expect(error.retryAfter).toBeUndefined();
    expect(budget.rateLimited).toEqual([17, 300]);
    expect(budget.counted).toEqual([]);
  });

  it("a 429 still fails the call when the budget cannot take the report", async () => {
    budget.reportRateLimited = async () => {
      throw new Error("budget object unreachable");
    };
    await injectFault({ method: "POST", path: "/client/v4/accounts/*/stream/live_inputs", status: 429, retryAfter: 5 });
    expect(await rejection(newInput())).toMatchObject({ upstreamStatus: 429 });
  });

  it("failed calls are counted as server, client or unreachable (rarely: written at once); a 404 is an answer, not counted", async () => {
    const { uid } = await newInput();
    await injectFault({ method: "GET", path: inputPath(uid), status: 500 });
    await rejection(api.getLiveInput(uid));
    await injectFault({ method: "GET", path: inputPath(uid), status: 499 });
    await rejection(api.getLiveInput(uid));
    await injectFault({ method: "GET", path: inputPath(uid), status: 400 });
    await rejection(api.getLiveInput(uid));
    await injectFault({ method: "GET", path: inputPath(uid), drop: true });
    await rejection(api.getLiveInput(uid));
    await rejection(api.getLiveInput("0123456789abcdef0123456789abcdef"));
    expect(budget.counted).toEqual([
      ["cloudflare.failed.server", true],
      ["cloudflare.failed.client", true],
      ["cloudflare.failed.client", true],
      ["cloudflare.failed.unreachable", true],
    ]);
  });

  it("a budget without counters serves, refuses and fails calls all the same", async () => {
    const plain = { acquire: budget.acquire.bind(budget), reportRateLimited: budget.reportRateLimited.bind(budget) };
    const uncounted = new StreamApi(testConfig(), plain);
    const { uid } = await uncounted.createLiveInput({ streamId: "s-plain", ingestProtocol: "rtmp", recording, deleteRecordingAfterDays: null });
    await injectFault({ method: "GET", path: inputPath(uid), status: 500 });
    expect(await rejection(uncounted.getLiveInput(uid))).toMatchObject({ upstreamStatus: 500 });
    budget.answer = { granted: false, retryAfterMs: 1_000 };
    expect(await rejection(uncounted.getLiveInput(uid))).toMatchObject({ budgetDeferralMs: 1_000 });
    budget.answer = "unreachable";
    expect(await rejection(uncounted.getLiveInput(uid))).toMatchObject({ budgetDeferralMs: 1_000, retryAfter: 1 });
    expect(budget.counted).toEqual([]);
  });

  it("a 500 answer to a create is 'maybe applied', so the caller keeps the work pending", async () => {
    await injectFault({ method: "POST", path: "/client/v4/accounts/*/stream/live_inputs", status: 500 });
    expect(await rejection(newInput())).toMatchObject({ status: 502, code: "CLOUDFLARE_ERROR", upstreamStatus: 500, definitelyNotApplied: false });
  });
});
