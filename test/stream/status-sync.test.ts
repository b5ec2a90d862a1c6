import { env, runInDurableObject } from "cloudflare:test";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { clock, resetClock, shiftClock } from "../../src/clock";
import {
  expireTimer,
  streamTimers,
  LIVE_INPUTS_PATH,
  call,
  emulator,
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
} from "../helpers";

beforeEach(resetEmulator);
afterEach(resetClock);

/** The gap between two reads of `timer`: fires it, moves the clock to the slot it planned, fires it there. */
async function pollInterval(streamId: string, timer: string): Promise<number> {
  await expireTimer(streamId, timer);
  shiftClock((await streamTimers(streamId))[timer]! - clock.now());
  await expireTimer(streamId, timer);
  return (await streamTimers(streamId))[timer]! - clock.now();
}

/** One interval, less the real time the test itself took since the read. */
function expectInterval(gap: number, interval: number) {
  expect(gap).toBeGreaterThan(interval - 5_000);
  expect(gap).toBeLessThanOrEqual(interval);
}

const SECRET = env.WEBHOOK_SECRET as string;



/** Makes the emulator produce a real webhook for an ingest change and delivers its payload to us. */
async function ingestEvent(uid: string, action: "connect" | "disconnect" | "error", body?: unknown): Promise<Json> {
  await emulator("POST", "config", { webhookUrl: "http://coordinator.test/api/webhooks/cloudflare-stream", webhookSecret: SECRET });
  await emulator("DELETE", "webhooks");
  await emulator("POST", `live_inputs/${uid}/${action}`, body);
  const { deliveries } = await emulator("GET", "webhooks");
  expect(deliveries).toHaveLength(1);
  return deliverWebhook(deliveries[0].payload);
}

async function deliverWebhook(payload: unknown, secret = SECRET): Promise<Json> {
  return call("POST", "/api/webhooks/cloudflare-stream", payload, { "cf-webhook-auth": secret });
}

async function liveStream(app: TestApp) {
  const userId = newUserId();
  const s = await startStream(app, userId);
  const viewer = await openSocket(s.streamId, { headers: app.headers });
  await viewer.next("managed_stream_status");
  const input = await inputFor(s.streamId);
  return { s, viewer, input, userId };
}

describe("webhooks", () => {
  it("connected / disconnected reach viewers at once, without a poll", async () => {
    const app = await registerApp();
    const { s, viewer, input } = await liveStream(app);
    const before = (await emulator("GET", "calls")).calls.length;

    const res = await ingestEvent(input.uid, "connect");
    expect(res).toMatchObject({ status: 200, body: { ok: true, streamId: s.streamId, applied: true } });
    expect(await viewer.next("managed_stream_status", 1_000)).toMatchObject({ status: "active" });
    await ingestEvent(input.uid, "disconnect");
    expect(await viewer.next("managed_stream_status", 1_000)).toMatchObject({ status: "preparing", message: expect.stringContaining("reconnect") });
    // No Cloudflare API call was needed for either.
    expect((await emulator("GET", "calls")).calls.length).toBe(before);
    // Polling now only confirms now and then: not live, sockets open, webhooks trusted → one read per
    // 5 min. (Measured slot to slot: the first read after a change falls on the stream's slot, anywhere
    // in the interval, so a single "next read" delay says nothing.)
    expectInterval(await pollInterval(s.streamId, "poll-input"), 5 * 60_000);
  });

  it("while live and trusted, the input read only confirms (15 min); a read that catches a missed webhook brings polling back", async () => {
    const app = await registerApp();
    const { s, viewer, input } = await liveStream(app);
    await ingestEvent(input.uid, "connect");
    expectInterval(await pollInterval(s.streamId, "poll-input"), 15 * 60_000);
    const due = () => streamTimers(s.streamId).then((t) => t["poll-input"]! - clock.now());
    // Ingest drops and its webhook is lost: the confirm read sees it, and stops trusting webhooks.
    await emulator("POST", `live_inputs/${input.uid}/disconnect`);
    await expireTimer(s.streamId, "poll-input");
    await waitFor(async () => viewer.messages.find((m) => m.status === "preparing"), 10_000, "preparing push");
    expect(await due()).toBeLessThanOrEqual(30_000);
    await emulator("POST", `live_inputs/${input.uid}/connect`);
    await expireTimer(s.streamId, "poll-input");
    expect(await due()).toBeLessThanOrEqual(75_000);
  });

  it("errored: the stream and its outputs show the error with its message", async () => {
    const app = await registerApp();
    const { s, viewer, input } = await liveStream(app);
    await call("POST", `/api/streams/${s.streamId}/outputs`, { url: "rtmp://live.example.com/app/k" }, app.headers);
    await ingestEvent(input.uid, "error", { code: "ERR_GOP_OUT_OF_RANGE", message: "GOP too long" });
    const status = await waitFor(async () => viewer.messages.find((m) => m.status === "error"), 10_000, "error status");
    expect(status.message).toContain("ERR_GOP_OUT_OF_RANGE");
    expect(status.outputs[0]).toMatchObject({ status: "error", error: expect.stringContaining("GOP too long") });
    const listed = await call("GET", `/api/streams/${s.streamId}/outputs`, undefined, app.headers);
    expect(listed.body.outputs[0]).toMatchObject({ status: "error", error: expect.stringContaining("ERR_GOP_OUT_OF_RANGE") });
  });

  it("refuses a wrong secret, malformed payloads and unknown inputs, changing nothing", async () => {
    const app = await registerApp();
    const { s, input } = await liveStream(app);
    const payload = { name: "Stream Live Input", data: { input_id: input.uid, event_type: "live_input.connected", updated_at: new Date().toISOString() } };
    expect((await deliverWebhook(payload, "wrong")).status).toBe(401);
    expect((await call("POST", "/api/webhooks/cloudflare-stream", payload)).status).toBe(401);
    expect(await deliverWebhook({ data: { input_id: "xyz" } })).toMatchObject({ status: 400, body: { error: "INVALID_PAYLOAD" } });
    expect((await deliverWebhook("{nope")).body.error).toBe("INVALID_PAYLOAD");
    const unknown = await deliverWebhook({ data: { ...payload.data, input_id: "0".repeat(32) } });
    expect(unknown).toMatchObject({ status: 404, body: { error: "UNKNOWN_LIVE_INPUT" } });
    expect((await call("GET", `/api/streams/${s.streamId}`, undefined, app.headers)).body.status).toBe("preparing");
  });

  it("a poll in flight does not overwrite a webhook applied meanwhile", async () => {
    const app = await registerApp();
    const { s, input } = await liveStream(app);
    // The poll reads Cloudflare slowly (and sees the input not yet connected)...
    await injectFault({ method: "GET", path: `${LIVE_INPUTS_PATH}/*`, delayMs: 400 });
    const polling = expireTimer(s.streamId, "poll-input");
    await new Promise((r) => setTimeout(r, 100));
    // ...while the connected webhook lands.
    await deliverWebhook({ data: { input_id: input.uid, event_type: "live_input.connected", updated_at: new Date().toISOString() } });
    await polling;
    expect((await call("GET", `/api/streams/${s.streamId}`, undefined, app.headers)).body.status).toBe("active");
  });

  it("ignores an event older than one already applied", async () => {
    const app = await registerApp();
    const { s, input } = await liveStream(app);
    const at = (iso: number, type: string) => ({ data: { input_id: input.uid, event_type: type, updated_at: new Date(iso).toISOString() } });
    const now = Date.now();
    await deliverWebhook(at(now, "live_input.connected"));
    const late = await deliverWebhook(at(now - 5_000, "live_input.disconnected"));
    expect(late.body).toMatchObject({ applied: false });
    expect((await call("GET", `/api/streams/${s.streamId}`, undefined, app.headers)).body.status).toBe("active");
  });
});

describe("polling", () => {
  it("reads both status shapes", async () => {
    for (const statusShape of ["object", "string"]) {
      await emulator("POST", "config", { statusShape });
      const app = await registerApp();
      const { s, viewer, input } = await liveStream(app);
      await emulator("POST", `live_inputs/${input.uid}/connect`);
      await expireTimer(s.streamId, "poll-input");
      expect(await viewer.next("managed_stream_status")).toMatchObject({ status: "active" });
    }
  });

  it("live without webhooks: the input is read every 75 s, the outputs listed every 30 min", async () => {
    const app = await registerApp();
    const { s, input } = await liveStream(app);
    await call("POST", `/api/streams/${s.streamId}/outputs`, { url: "rtmp://live.example.com/app/k75" }, app.headers);
    await emulator("POST", `live_inputs/${input.uid}/connect`);
    expectInterval(await pollInterval(s.streamId, "poll-input"), 75_000);
    expectInterval(await pollInterval(s.streamId, "poll-outputs"), 30 * 60_000);
  });

  it("stops polling when nobody is connected and the input is not live", async () => {
    const app = await registerApp();
    const s = await startStream(app, newUserId());
    expect(Object.keys(await streamTimers(s.streamId))).toContain("poll-input");
    // Past the fast window, with no client and no ingest, the next poll plans nothing.
    await runInDurableObject(env.STREAMS.getByName(s.streamId), (_i, state) => {
      state.storage.sql.exec("UPDATE stream SET created_at = created_at - 600000");
    });
    await expireTimer(s.streamId, "poll-input");
    expect(Object.keys(await streamTimers(s.streamId))).not.toContain("poll-input");
  });

  it("a failing poll is retried with backoff; the timer is never lost", async () => {
    const app = await registerApp();
    const { s } = await liveStream(app);
    await injectFault({ method: "GET", path: `${LIVE_INPUTS_PATH}/*`, status: 500, count: 3 });
    for (let i = 0; i < 3; i++) {
      await expireTimer(s.streamId, "poll-input");
      expect(Object.keys(await streamTimers(s.streamId))).toContain("poll-input");
    }
    const due = (await streamTimers(s.streamId))["poll-input"]! - Date.now();
    expect(due).toBeGreaterThan(4_000); // third failure: ~8 s ± jitter
  });

  it("pushes a change once: a poll that changes nothing sends nothing", async () => {
    const app = await registerApp();
    const { s, viewer } = await liveStream(app);
    const count = viewer.messages.length;
    await expireTimer(s.streamId, "poll-input");
    await expireTimer(s.streamId, "poll-input");
    await new Promise((r) => setTimeout(r, 100));
    expect(viewer.messages.length).toBe(count);
  });
});

describe("output status", () => {
  async function withOutput() {
    const app = await registerApp();
    const live = await liveStream(app);
    const added = await call("POST", `/api/streams/${live.s.streamId}/outputs`, { url: "rtmp://live.example.com/app/key1" }, app.headers);
    const cfOutput = (await inputFor(live.s.streamId)).outputs[0];
    return { app, ...live, outputId: added.body.outputId, cfOutput };
  }
  const outputStatus = async (app: TestApp, streamId: string) =>
    (await call("GET", `/api/streams/${streamId}/outputs`, undefined, app.headers)).body.outputs[0];

  it("connecting until the input has been connected for the debounce period, then active", async () => {
    const { app, s, input } = await withOutput();
    expect(await outputStatus(app, s.streamId)).toMatchObject({ status: "connecting" });
    await emulator("POST", `live_inputs/${input.uid}/connect`);
    await expireTimer(s.streamId, "poll-input");
    expect(await outputStatus(app, s.streamId)).toMatchObject({ status: "connecting" });
    expect(Object.keys(await streamTimers(s.streamId))).toContain("ingest-stable");
    await runInDurableObject(env.STREAMS.getByName(s.streamId), (_i, state) => {
      state.storage.sql.exec("UPDATE meta SET value = '0' WHERE key = 'ingestChangedAt'");
    });
    await expireTimer(s.streamId, "ingest-stable");
    expect(await outputStatus(app, s.streamId)).toMatchObject({ status: "active", error: null });
  });

  it("a relay error shows as error with its message, and clears when the relay recovers", async () => {
    const { app, s, viewer, cfOutput, userId } = await withOutput();
    const other = await registerApp();
    await postStream(other, { userId });
    await emulator("POST", `outputs/${cfOutput.uid}/relay`, { state: "error", lastError: "rtmp://live.example.com/app/key1: Connection refused by destination" });
    await expireTimer(s.streamId, "poll-outputs");
    expect(await outputStatus(app, s.streamId)).toMatchObject({ status: "error", error: expect.stringContaining("Connection refused") });
    const pushed = await waitFor(async () => viewer.messages.find((m) => m.outputs?.[0]?.status === "error"), 10_000, "push");
    expect(pushed.outputs[0].error).toContain("Connection refused");
    // Another app sees the error with the destination's key masked.
    const seenByOther = (await call("GET", `/api/streams/${s.streamId}/outputs`, undefined, other.headers)).body.outputs[0];
    expect(seenByOther.error).toContain("Connection refused");
    expect(seenByOther.error).not.toContain("key1");
    await emulator("POST", `outputs/${cfOutput.uid}/relay`, { state: "active", lastError: null });
    await expireTimer(s.streamId, "poll-outputs");
    expect(await outputStatus(app, s.streamId)).toMatchObject({ status: "connecting", error: null });
  });

  it("an output that vanished at Cloudflare shows as error", async () => {
    const { app, s, input, cfOutput } = await withOutput();
    await cloudflareDirect("DELETE", `/${input.uid}/outputs/${cfOutput.uid}`);
    await expireTimer(s.streamId, "poll-outputs");
    expect(await outputStatus(app, s.streamId)).toMatchObject({ status: "error", error: "Output no longer exists at Cloudflare" });
  });

  it("a failing read is not vouched for by webhooks: outputs go unknown at once and viewers are told", async () => {
    const { app, s, viewer, input } = await withOutput();
    await ingestEvent(input.uid, "connect");
    await runInDurableObject(env.STREAMS.getByName(s.streamId), (_i, state) => {
      state.storage.sql.exec("UPDATE meta SET value = '0' WHERE key = 'ingestChangedAt'");
      // The last confirm was 10 minutes ago: fresh at the webhook cadence (stale after 45 min).
      state.storage.sql.exec("UPDATE meta SET value = ? WHERE key = 'lastInputSyncAt'", String(Date.now() - 600_000));
    });
    await expireTimer(s.streamId, "ingest-stable");
    expect(await outputStatus(app, s.streamId)).toMatchObject({ status: "active" });
    await waitFor(async () => viewer.messages.find((m) => m.outputs?.[0]?.status === "active"), 10_000, "active push");
    const told = viewer.messages.length;
    await injectFault({ method: "GET", path: `${LIVE_INPUTS_PATH}/*`, status: 500, count: 1 });
    await expireTimer(s.streamId, "poll-input");
    expect(await outputStatus(app, s.streamId)).toMatchObject({ status: "unknown" });
    await waitFor(async () => viewer.messages.slice(told).find((m) => m.outputs?.[0]?.status === "stopped"), 10_000, "push of unknown");
  });

  it("a read our own budget held back is no failure: webhooks still vouch, nothing goes unknown", async () => {
    const { app, s, input } = await withOutput();
    await ingestEvent(input.uid, "connect");
    await runInDurableObject(env.STREAMS.getByName(s.streamId), (_i, state) => {
      state.storage.sql.exec("UPDATE meta SET value = '0' WHERE key = 'ingestChangedAt'");
      // As above: fresh at the webhook cadence, but stale at once if this read counted as failing.
      state.storage.sql.exec("UPDATE meta SET value = ? WHERE key = 'lastInputSyncAt'", String(Date.now() - 600_000));
    });
    await expireTimer(s.streamId, "ingest-stable");
    expect(await outputStatus(app, s.streamId)).toMatchObject({ status: "active" });
    // A Cloudflare 429 blocks the shared budget for its retry-after: the next read is held back, never sent.
    await injectFault({ method: "POST", path: LIVE_INPUTS_PATH, status: 429, retryAfter: 2, count: 1 });
    expect((await postStream(app, { userId: newUserId() })).status).toBe(502);
    const sent = (await emulator("GET", "calls")).calls.length;
    await expireTimer(s.streamId, "poll-input");
    expect((await emulator("GET", "calls")).calls.length).toBe(sent);
    expect(await outputStatus(app, s.streamId)).toMatchObject({ status: "active" });
    expect((await streamTimers(s.streamId))["poll-input"]! - clock.now()).toBeLessThanOrEqual(2_500); // the deferral, not a backoff
    await new Promise((r) => setTimeout(r, 2_100)); // the block ends before the next test
  });

  it("unknown after three intervals without a successful sync", async () => {
    const { app, s } = await withOutput();
    await runInDurableObject(env.STREAMS.getByName(s.streamId), (_i, state) => {
      state.storage.sql.exec("UPDATE stream SET created_at = created_at - 600000");
      state.storage.sql.exec("INSERT OR REPLACE INTO meta (key, value) VALUES ('lastInputSyncAt', ?)", String(Date.now() - 600_000));
    });
    expect(await outputStatus(app, s.streamId)).toMatchObject({ status: "unknown" });
  });
});

describe("outputs poll", () => {
  it("takes Cloudflare's enabled flag as the truth", async () => {
    const app = await registerApp();
    const { s, input } = await liveStream(app);
    await call("POST", `/api/streams/${s.streamId}/outputs`, { url: "rtmp://live.example.com/app/flag" }, app.headers);
    const cfOutput = (await inputFor(s.streamId)).outputs[0];
    await cloudflareDirect("PUT", `/${input.uid}/outputs/${cfOutput.uid}`, { enabled: false });
    await expireTimer(s.streamId, "poll-outputs");
    const listed = (await call("GET", `/api/streams/${s.streamId}/outputs`, undefined, app.headers)).body.outputs[0];
    expect(listed).toMatchObject({ enabled: false, status: "unknown" });
  });
});
