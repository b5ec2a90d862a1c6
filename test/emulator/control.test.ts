import { beforeEach, describe, expect, it } from "vitest";
import { BASE, INPUTS, api, control, createInput, createOutput, reset, state, waitFor, type Json } from "./helpers.ts";

beforeEach(() => reset());

const OUTPUTS_PATTERN = "/client/v4/accounts/*/stream/live_inputs/*/outputs";

describe("faults", () => {
  it("returns an injected status without performing the operation", async () => {
    const f = await control("POST", "faults", { method: "POST", path: "/client/v4/accounts/*/stream/live_inputs", status: 503 });
    expect(f.status).toBe(200);
    expect(f.body.id).toEqual(expect.any(String));
    const r = await api("POST", INPUTS, {});
    expect(r.status).toBe(503);
    expect(r.body).toMatchObject({ success: false, result: null, errors: [{ code: 10002 }] });
    expect((await api("GET", INPUTS)).body.result.total).toBe(0);
    // count defaults to 1: the next call is normal
    expect((await api("POST", INPUTS, {})).status).toBe(200);
    expect((await control("GET", "faults")).body.faults).toEqual([]);
  });

  it("afterEffect performs the operation and then answers with the fault", async () => {
    await control("POST", "faults", { method: "POST", path: "/client/v4/accounts/*/stream/live_inputs", status: 500, afterEffect: true });
    const r = await api("POST", INPUTS, { meta: { lost: true } });
    expect(r.status).toBe(500);
    const list = (await api("GET", INPUTS)).body.result;
    expect(list.total).toBe(1);
    expect(list.liveInputs[0].meta).toEqual({ lost: true });
  });

  it("applies to `count` matching calls, with custom body and retry-after; method filters", async () => {
    const li = await createInput();
    await control("POST", "faults", { method: "GET", path: OUTPUTS_PATTERN, status: 429, count: 2, retryAfter: 7, body: { custom: true } });
    const post = await createOutput(li.uid, { url: "rtmp://x/y", streamKey: "k" }); // POST not matched
    expect(post.uid).toBeDefined();
    for (let i = 0; i < 2; i++) {
      // A made-up fault body, not Cloudflare's: not checked against the schema.
      const r = await api("GET", `${INPUTS}/${li.uid}/outputs`, undefined, {}, { unchecked: true });
      expect(r.status).toBe(429);
      expect(r.headers.get("retry-after")).toBe("7");
      expect(r.body).toEqual({ custom: true });
    }
    expect((await api("GET", `${INPUTS}/${li.uid}/outputs`)).status).toBe(200);
  });

  it("** matches the rest of a path", async () => {
    const li = await createInput();
    await control("POST", "faults", { path: "/client/v4/**", status: 502, count: 2 });
    expect((await api("GET", `${INPUTS}/${li.uid}`)).status).toBe(502);
    expect((await api("GET", INPUTS)).status).toBe(502);
    expect((await api("GET", INPUTS)).status).toBe(200);
  });

  it("delays a call and then handles it normally", async () => {
    await control("POST", "faults", { path: "/client/v4/accounts/*/stream/live_inputs", delayMs: 200 });
    const t0 = Date.now();
    const r = await api("GET", INPUTS);
    expect(r.status).toBe(200);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(150);
  });

  it("answerDelayMs performs the operation at once and answers late", async () => {
    await control("POST", "faults", { method: "POST", path: "/client/v4/accounts/*/stream/live_inputs", answerDelayMs: 400 });
    const t0 = Date.now();
    const pending = api("POST", INPUTS, { meta: { late: true } });
    const seen = await waitFor(async () => {
      const inputs = (await state()).inputs as Json[];
      return inputs.length === 1 && Date.now();
    });
    expect(seen - t0).toBeLessThan(300);
    const r = await pending;
    expect(r.status).toBe(200);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(350);
    expect(r.body.result.meta).toEqual({ late: true });
  });

  it("drop makes the caller's fetch reject and performs nothing", async () => {
    await control("POST", "faults", { method: "POST", path: "/client/v4/**", drop: true });
    await expect(fetch(INPUTS, { method: "POST", headers: { authorization: "Bearer local-dev-token" }, body: "{}" })).rejects.toThrow(
      /DroppedConnectionError/,
    );
    expect((await api("GET", INPUTS)).body.result.total).toBe(0);
    const calls = (await control("GET", "calls")).body.calls;
    expect(calls[0]).toMatchObject({ method: "POST", status: 0, fault: expect.any(String) });
  });

  it("drop with afterEffect performs the operation before dropping", async () => {
    await control("POST", "faults", { method: "POST", path: "/client/v4/**", drop: true, afterEffect: true });
    await expect(fetch(INPUTS, { method: "POST", headers: { authorization: "Bearer local-dev-token" }, body: "{}" })).rejects.toThrow();
    expect((await api("GET", INPUTS)).body.result.total).toBe(1);
  });

  it("rejects invalid fault specs and can be cleared", async () => {
    expect((await control("POST", "faults", { status: 500 })).status).toBe(400);
    expect((await control("POST", "faults", { path: "/x" })).status).toBe(400);
    await control("POST", "faults", { path: "/x", status: 500, count: 3 });
    expect((await control("GET", "faults")).body.faults).toHaveLength(1);
    await control("DELETE", "faults");
    expect((await control("GET", "faults")).body.faults).toEqual([]);
  });
});

describe("ingest status", () => {
  it("is null, then connected, then disconnected (object shape)", async () => {
    const li = await createInput();
    expect((await control("POST", `live_inputs/${li.uid}/connect`)).status).toBe(200);
    const on = (await api("GET", `${INPUTS}/${li.uid}`)).body.result.status;
    expect(on.current).toMatchObject({ state: "connected", reason: null });
    expect(Date.parse(on.current.statusEnteredAt)).not.toBeNaN();
    expect(Date.parse(on.current.statusLastSeen)).not.toBeNaN();
    expect(on.history).toEqual([]);
    expect((await control("POST", `live_inputs/${li.uid}/disconnect`)).status).toBe(200);
    const off = (await api("GET", `${INPUTS}/${li.uid}`)).body.result.status;
    expect(off.current).toMatchObject({ state: "disconnected", reason: "client_disconnect" });
    expect(off.history).toEqual([expect.objectContaining({ state: "connected" })]);
    const s = await state();
    expect(s.inputs[0].connected).toBe(false);
  });

  it("renders flat strings with statusShape=string", async () => {
    await control("POST", "config", { statusShape: "string" });
    const li = await createInput();
    expect((await api("GET", `${INPUTS}/${li.uid}`)).body.result.status).toBeNull();
    await control("POST", `live_inputs/${li.uid}/connect`);
    expect((await api("GET", `${INPUTS}/${li.uid}`)).body.result.status).toBe("connected");
    await control("POST", `live_inputs/${li.uid}/disconnect`);
    expect((await api("GET", `${INPUTS}/${li.uid}`)).body.result.status).toBe("client_disconnect");
    await control("POST", `live_inputs/${li.uid}/connect`);
    await control("POST", `live_inputs/${li.uid}/disconnect`, { reason: "ttl_exceeded" });
    expect((await api("GET", `${INPUTS}/${li.uid}`)).body.result.status).toBe("ttl_exceeded");
  });

  it("404s unknown inputs; refuses disabled ones; disabling ends a broadcast", async () => {
    expect((await control("POST", `live_inputs/${"0".repeat(32)}/connect`)).status).toBe(404);
    expect((await control("POST", `live_inputs/${"0".repeat(32)}/disconnect`)).status).toBe(404);
    expect((await control("POST", `live_inputs/${"0".repeat(32)}/error`, {})).status).toBe(404);
    const off = await createInput({ enabled: false });
    expect((await control("POST", `live_inputs/${off.uid}/connect`)).status).toBe(409);
    const li = await createInput();
    await control("POST", `live_inputs/${li.uid}/connect`);
    await api("PUT", `${INPUTS}/${li.uid}`, { enabled: false });
    expect((await state()).inputs.find((i: Json) => i.uid === li.uid).connected).toBe(false);
  });
});

describe("relays", () => {
  it("follow input connection and output enabled (simulated)", async () => {
    const li = await createInput();
    const a = await createOutput(li.uid, { url: "rtmp://a/app", streamKey: "a" });
    const b = await createOutput(li.uid, { url: "rtmp://b/app", streamKey: "b", enabled: false });
    const relays = async () => Object.fromEntries((await state()).inputs[0].outputs.map((o: Json) => [o.uid, o.relay.state]));
    expect(await relays()).toEqual({ [a.uid]: "idle", [b.uid]: "idle" });
    await control("POST", `live_inputs/${li.uid}/connect`);
    expect(await relays()).toEqual({ [a.uid]: "active", [b.uid]: "idle" });
    await api("PUT", `${INPUTS}/${li.uid}/outputs/${b.uid}`, { enabled: true });
    expect(await relays()).toEqual({ [a.uid]: "active", [b.uid]: "active" });
    await api("PUT", `${INPUTS}/${li.uid}/outputs/${a.uid}`, { enabled: false });
    expect(await relays()).toEqual({ [a.uid]: "idle", [b.uid]: "active" });
    // a new output on a live input starts at once
    const c = await createOutput(li.uid, { url: "rtmp://c/app", streamKey: "c" });
    expect(c.relay.state).toBe("active");
    await control("POST", `live_inputs/${li.uid}/disconnect`);
    expect(Object.values(await relays())).toEqual(["idle", "idle", "idle"]);
  });

  it("injected errors stick until the next connect or enable", async () => {
    const li = await createInput();
    const o = await createOutput(li.uid, { url: "rtmp://a/app", streamKey: "a" });
    await control("POST", `live_inputs/${li.uid}/connect`);
    expect((await control("POST", `outputs/${o.uid}/relay`, { state: "error", lastError: "Connection refused" })).status).toBe(200);
    const relay = async () => (await api("GET", `${INPUTS}/${li.uid}/outputs`)).body.result[0].relay;
    expect(await relay()).toEqual({ state: "error", lastError: "Connection refused" });
    // a repeated connect while live changes nothing
    await control("POST", `live_inputs/${li.uid}/connect`);
    expect((await relay()).state).toBe("error");
    await api("PUT", `${INPUTS}/${li.uid}/outputs/${o.uid}`, { enabled: true });
    expect(await relay()).toEqual({ state: "active", lastError: null });
    await control("POST", `outputs/${o.uid}/relay`, { state: "error", lastError: "boom" });
    await control("POST", `live_inputs/${li.uid}/disconnect`);
    expect(await relay()).toEqual({ state: "idle", lastError: "boom" });
    await control("POST", `live_inputs/${li.uid}/connect`);
    expect(await relay()).toEqual({ state: "active", lastError: null });
    expect((await control("POST", `outputs/${"0".repeat(32)}/relay`, { state: "error" })).status).toBe(404);
    expect((await control("POST", `outputs/${o.uid}/relay`, { state: "weird" })).status).toBe(400);
  });
});

describe("calls log", () => {
  it("records API calls only, filters by since, and clears", async () => {
    await api("GET", INPUTS);
    await fetch(INPUTS); // 403
    await control("GET", "state");
    const calls = (await control("GET", "calls")).body.calls;
    expect(calls).toHaveLength(2);
    expect(calls[0]).toEqual({
      method: "GET",
      path: "/client/v4/accounts/local-account/stream/live_inputs",
      status: 200,
      time: expect.any(String),
      durationMs: expect.any(Number),
    });
    expect(calls[1].status).toBe(403);
    const future = new Date(Date.now() + 60_000).toISOString();
    expect((await control("GET", `calls?since=${encodeURIComponent(future)}`)).body.calls).toEqual([]);
    expect((await control("GET", `calls?since=0`)).body.calls).toHaveLength(2);
    await control("DELETE", "calls");
    expect((await control("GET", "calls")).body.calls).toEqual([]);
  });
});

describe("webhooks", () => {
  it("records deliveries (failed ones included) without breaking the caller", async () => {
    const cfg = await control("POST", "config", { webhookUrl: "http://hook.test/x", webhookSecret: "s3cret" });
    expect(cfg.body).toMatchObject({ webhookUrl: "http://hook.test/x", webhookSecret: "s3cret" });
    expect((await state()).webhook).toEqual({ url: "http://hook.test/x" });
    const li = await createInput();
    expect((await control("POST", `live_inputs/${li.uid}/connect`)).status).toBe(200);
    expect((await control("POST", `live_inputs/${li.uid}/error`, { code: "ERR_GOP_OUT_OF_RANGE", message: "GOP too long" })).status).toBe(200);
    expect((await control("POST", `live_inputs/${li.uid}/disconnect`)).status).toBe(200);
    const deliveries = await waitFor(async () => {
      const d = (await control("GET", "webhooks")).body.deliveries as Json[];
      return d.length === 3 && d.every((x) => !x.pending) ? d : null;
    }, 15_000);
    expect(deliveries.map((d) => d.event)).toEqual(["live_input.connected", "live_input.errored", "live_input.disconnected"]);
    for (const d of deliveries) {
      expect(d).toMatchObject({ url: "http://hook.test/x", inputId: li.uid });
      // Either it reached something (status) or failed (error): both are recorded.
      expect(d.status !== null || d.error !== null).toBe(true);
    }
    // The payload is kept so tests can replay it into the coordinator.
    expect(deliveries[1].payload).toMatchObject({
      name: "Stream Live Input",
      text: expect.any(String),
      ts: expect.any(Number),
      data: {
        notification_name: "Stream Live Input",
        input_id: li.uid,
        event_type: "live_input.errored",
        updated_at: expect.any(String),
        live_input_errored: { error: { code: "ERR_GOP_OUT_OF_RANGE", message: "GOP too long" }, video_codec: expect.any(String), audio_codec: expect.any(String) },
      },
    });
    expect(deliveries[0].payload.data.live_input_errored).toBeUndefined();
    // `text` as in Cloudflare's documented example payload (Stream "Receive Live Webhooks").
    for (const d of deliveries) {
      const { data } = d.payload;
      expect(d.payload.text).toBe(`Notification type: Stream Live Input\nInput ID: ${li.uid}\nEvent type: ${data.event_type}\nUpdated at: ${data.updated_at}`);
      expect(d.payload.ts).toBe(Math.floor(Date.parse(data.updated_at) / 1000));
    }
    // The emulator kept working.
    expect((await api("GET", `${INPUTS}/${li.uid}`)).status).toBe(200);
  }, 20_000);

  it("sends nothing when no webhook is configured", async () => {
    const li = await createInput();
    await control("POST", `live_inputs/${li.uid}/connect`);
    expect((await control("GET", "webhooks")).body.deliveries).toEqual([]);
  });
});

describe("config and reset", () => {
  it("validates config, and reset keeps config unless asked", async () => {
    expect((await control("POST", "config", { statusShape: "flat" })).status).toBe(400);
    expect((await control("POST", "config", { rateLimitRequests: 0 })).status).toBe(400);
    const c = await control("POST", "config", { rateLimitRequests: 50, rateLimitWindowSeconds: 10 });
    expect(c.body).toMatchObject({ rateLimitRequests: 50, rateLimitWindowSeconds: 10, rateLimitBlockSeconds: 10 });
    await createInput();
    await control("POST", "faults", { path: "/x", status: 500 });
    await control("POST", "reset", {});
    const s = await state();
    expect(s.inputs).toEqual([]);
    expect(s.rateLimit).toMatchObject({ requests: 50, used: 0, blockedUntil: null });
    expect((await control("GET", "faults")).body.faults).toEqual([]);
    expect((await control("GET", "calls")).body.calls).toEqual([]);
    await control("POST", "reset", { config: true });
    expect((await control("GET", "config")).body).toMatchObject({ rateLimitRequests: 1200, rateLimitWindowSeconds: 300, statusShape: "object" });
  });

  it("serves /healthz", async () => {
    const r = await fetch(`${BASE}/healthz`);
    expect(await r.json()).toEqual({ ok: true });
  });
});

describe("the clock (one injected source for every reading of time)", () => {
  const now = async () => Date.parse((await control("GET", "clock")).body.now);

  it("timestamps and the call log move with it", async () => {
    const input = await createInput({ meta: { name: "clocked" } });
    await control("POST", "clock", { advanceMs: 3_600_000 });
    const updated = (await api("PUT", `${INPUTS}/${input.uid}`, { meta: { name: "later" } })).body.result;
    expect(Date.parse(updated.modified) - Date.parse(input.created)).toBeGreaterThanOrEqual(3_600_000);
    expect(Date.parse(updated.modified) - Date.now()).toBeGreaterThanOrEqual(3_600_000 - 1_000);
    expect(Math.abs(Date.parse((await control("GET", "calls")).body.calls.at(-1).time) - (await now()))).toBeLessThan(5_000);
  });

  it("rate-limit windows and blocks run on it: still blocked a second before the block ends, free after it", async () => {
    await control("POST", "config", { rateLimitRequests: 2, rateLimitWindowSeconds: 60 });
    expect((await api("GET", INPUTS)).status).toBe(200);
    expect((await api("GET", INPUTS)).status).toBe(200);
    const limited = await api("GET", INPUTS, undefined, {}, { unchecked: true });
    expect(limited.status).toBe(429);
    expect(limited.headers.get("retry-after")).toBe("60");
    await control("POST", "clock", { advanceMs: 58_000 });
    expect((await api("GET", INPUTS, undefined, {}, { unchecked: true })).status).toBe(429);
    await control("POST", "clock", { advanceMs: 2_100 });
    expect((await api("GET", INPUTS)).status).toBe(200);
  });
});
