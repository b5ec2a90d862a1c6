// The emulator's restart path (emulator/snapshot.ts via StreamEmulator.snapshotForDisk/restore): what a
// second process restores from the first one's snapshot. File handling is covered end to end in
// test/e2e/emulator-persistence.test.mjs.
import { describe, expect, it } from "vitest";
import { StreamEmulator } from "../../emulator/core.ts";
import { RESTART_DISCONNECT_REASON, type Snapshot } from "../../emulator/snapshot.ts";
import type { Json } from "./helpers.ts";
import { expectResponseMatches } from "./openapi.ts";

const BASE = "http://emu.test";
const INPUTS = `${BASE}/client/v4/accounts/local-account/stream/live_inputs`;
const WEBHOOK = "http://coordinator.test/hook";

function emulator(sent: { url: string; body: Json }[] = [], answer: () => Response = () => new Response("ok")): StreamEmulator {
  return new StreamEmulator({
    webhook: { url: WEBHOOK, secret: "s" },
    sendWebhook: async (url, init) => {
      sent.push({ url, body: JSON.parse(String(init.body)) });
      return answer();
    },
  });
}

async function call(emu: StreamEmulator, method: string, url: string, body?: unknown, headers: Record<string, string> = {}): Promise<Json> {
  const res = await emu.fetch(
    new Request(url, {
      method,
      headers: { authorization: "Bearer local-dev-token", "content-type": "application/json", ...headers },
      body: body === undefined ? undefined : JSON.stringify(body),
    }),
  );
  const parsed = await res.json();
  expectResponseMatches(method, url, res.status, parsed);
  return { status: res.status, body: parsed };
}

/** What the first process leaves on disk: JSON, read back by the next. */
const throughDisk = (emu: StreamEmulator): Snapshot => JSON.parse(JSON.stringify(emu.snapshotForDisk()));

describe("emulator snapshot and restore", () => {
  it("restores inputs, outputs, keys, meta, created and idempotency keys as they were", async () => {
    const first = emulator();
    const a = (await call(first, "POST", INPUTS, { meta: { streamId: "s-a", managedBy: "x" } }, { "idempotency-key": "create-a" })).body.result;
    const b = (await call(first, "POST", INPUTS, { meta: { streamId: "s-b" }, enabled: false })).body.result;
    const out = (await call(first, "POST", `${INPUTS}/${a.uid}/outputs`, { url: "rtmp://yt.example/live2", streamKey: "k1" })).body.result;
    await call(first, "PUT", `${INPUTS}/${a.uid}/outputs/${out.uid}`, { enabled: false });
    const beforeA = (await call(first, "GET", `${INPUTS}/${a.uid}`)).body.result;
    const beforeOutputs = (await call(first, "GET", `${INPUTS}/${a.uid}/outputs`)).body.result;
    const calls = first.callLog();

    const second = emulator();
    expect(second.restore(throughDisk(first), calls)).toEqual([]);
    expect((await call(second, "GET", `${INPUTS}/${a.uid}`)).body.result).toEqual(beforeA);
    expect((await call(second, "GET", `${INPUTS}/${a.uid}/outputs`)).body.result).toEqual(beforeOutputs);
    const list = (await call(second, "GET", INPUTS)).body.result;
    expect(list.liveInputs.map((i: Json) => [i.uid, i.meta, i.created, i.enabled])).toEqual([
      [a.uid, { streamId: "s-a", managedBy: "x" }, a.created, true],
      [b.uid, { streamId: "s-b" }, b.created, false],
    ]);
    // The same idempotency key still answers with the same input; the call log carries over.
    expect((await call(second, "POST", INPUTS, {}, { "idempotency-key": "create-a" })).body.result.uid).toBe(a.uid);
    expect(second.callLog().slice(0, calls.length)).toEqual(calls);
    // The stream key still routes an RTMP publish to its input.
    expect(second.connectByStreamKey(a.rtmps.streamKey)).toBe(a.uid);
  });

  it("keeps rotated keys and keysRotatedAt across a restart; the old stream key stays dead", async () => {
    const first = emulator();
    const li = (await call(first, "POST", INPUTS, {})).body.result;
    const rotated = (await call(first, "POST", `${INPUTS}/${li.uid}/rotate_keys`)).body.result;
    expect(rotated.keysRotatedAt).toEqual(expect.any(String));
    const second = emulator();
    second.restore(throughDisk(first), []);
    expect((await call(second, "GET", `${INPUTS}/${li.uid}`)).body.result).toEqual(rotated);
    expect(second.connectByStreamKey(li.rtmps.streamKey)).toBeNull();
    expect(second.connectByStreamKey(rotated.rtmps.streamKey)).toBe(li.uid);
  });

  it("restores inputs saved before rotate_keys existed (no keysRotatedAt)", async () => {
    const first = emulator();
    const li = (await call(first, "POST", INPUTS, {})).body.result;
    const old = throughDisk(first) as Json;
    for (const input of old.inputs) delete input.keysRotatedAt;
    const second = emulator();
    second.restore(old, []);
    const got = (await call(second, "GET", `${INPUTS}/${li.uid}`)).body.result;
    expect(got).not.toHaveProperty("keysRotatedAt");
    expect(got.rtmps).toEqual(li.rtmps);
  });

  it("brings a connected input back disconnected, with the restart in its status history and a webhook", async () => {
    const first = emulator();
    const live = (await call(first, "POST", INPUTS, { meta: { streamId: "live" } })).body.result;
    const idle = (await call(first, "POST", INPUTS, { meta: { streamId: "idle" } })).body.result;
    const out = (await call(first, "POST", `${INPUTS}/${live.uid}/outputs`, { url: "rtmp://yt.example/live2", streamKey: "k" })).body.result;
    expect(first.connect(live.uid)).toBe(true);
    expect(first.snapshot()).toMatchObject({ inputs: [{ connected: true, outputs: [{ relay: { state: "active" } }] }, { connected: false }] });

    const sent: { url: string; body: Json }[] = [];
    const second = emulator(sent);
    const disconnected = second.restore(throughDisk(first), []);
    expect(disconnected).toEqual([live.uid]);
    const status = (await call(second, "GET", `${INPUTS}/${live.uid}`)).body.result.status;
    expect(status.current).toMatchObject({ state: "disconnected", reason: RESTART_DISCONNECT_REASON });
    expect(status.history).toMatchObject([{ state: "connected" }]);
    expect((await call(second, "GET", `${INPUTS}/${idle.uid}`)).body.result.status).toBeNull();
    expect((await call(second, "GET", `${INPUTS}/${live.uid}/outputs`)).body.result).toMatchObject([{ uid: out.uid, relay: { state: "idle" } }]);

    second.announceDisconnected(disconnected, 10_000);
    await second.settled();
    expect(sent.map((s) => [s.url, s.body.data.event_type, s.body.data.input_id])).toEqual([[WEBHOOK, "live_input.disconnected", live.uid]]);
  });

  it("retries the restart announcement until the receiver answers", async () => {
    const first = emulator();
    const live = (await call(first, "POST", INPUTS, {})).body.result;
    first.connect(live.uid);
    const sent: { url: string; body: Json }[] = [];
    let answers = 0;
    const second = emulator(sent, () => (++answers <= 1 ? new Response("starting", { status: 503 }) : new Response("ok")));
    second.announceDisconnected(second.restore(throughDisk(first), []), 10_000);
    await second.settled();
    expect(sent).toHaveLength(2);
    expect(second.webhooks.deliveries()).toMatchObject([{ event: "live_input.disconnected", status: 200, attempts: 2, pending: false }]);
  });

  it("keeps config set over the control API, and takes everything else from the new startup options", async () => {
    const first = new StreamEmulator({ rtmpIngestUrl: "rtmp://old:1935/live/", webhook: { url: WEBHOOK, secret: "s" } });
    const set = await first.fetch(new Request(`${BASE}/__emulator/config`, { method: "POST", body: JSON.stringify({ statusShape: "string", maxLiveInputs: 7 }) }));
    expect(set.status).toBe(200);
    const second = new StreamEmulator({ rtmpIngestUrl: "rtmp://new:1936/live/", webhook: { url: "http://elsewhere/hook", secret: "t" } });
    second.restore(throughDisk(first), []);
    expect(second.config).toMatchObject({ statusShape: "string", maxLiveInputs: 7, rtmpIngestUrl: "rtmp://new:1936/live/", webhookUrl: "http://elsewhere/hook" });
    // A reset with config:true goes back to this run's startup config.
    second.reset({ config: true });
    expect(second.config).toMatchObject({ statusShape: "object", maxLiveInputs: 1000 });
  });

  it("drops outputs whose input is missing and idempotency keys that have expired", async () => {
    const first = emulator();
    const a = (await call(first, "POST", INPUTS, {}, { "idempotency-key": "old" })).body.result;
    const snapshot = throughDisk(first);
    snapshot.outputs.push({ uid: "orphan", inputUid: "no-such-input", url: "rtmp://x/live", streamKey: "k", enabled: true });
    snapshot.idempotency[0]!.expiresAt = Date.now() - 1;
    const second = emulator();
    second.restore(snapshot, []);
    expect((second.snapshot() as Json).inputs.flatMap((i: Json) => i.outputs)).toEqual([]);
    expect((await call(second, "POST", INPUTS, {}, { "idempotency-key": "old" })).body.result.uid).not.toBe(a.uid);
  });
});
