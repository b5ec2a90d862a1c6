// The emulator's Notifications API (emulator/alerting.ts): webhook destinations and policies through the
// official SDK (client.alerting.*), Cloudflare's test message on create/update, and live-input webhooks that
// follow a configured stream_live_notifications policy (and the built-in webhookUrl while there is none).
// Each test drives its own StreamEmulator whose webhook sender records what it would POST.
import Cloudflare from "cloudflare";
import { describe, expect, it } from "vitest";
import { StreamEmulator } from "../../emulator/core.ts";
import type { Snapshot } from "../../emulator/snapshot.ts";
import type { Json } from "./helpers.ts";

const BASE = "http://emu.test";
const ACCOUNT = "local-account";
const ALERTING = `${BASE}/client/v4/accounts/${ACCOUNT}/alerting/v3`;
const HOOK = "https://worker.example/api/webhooks/cloudflare-stream";
const EVENTS = ["live_input.connected", "live_input.disconnected", "live_input.errored"];

interface Sent {
  url: string;
  auth: string | null;
  body: Json;
}

/** An emulator whose outgoing webhooks are recorded; `answer` decides each reply (default 200). */
function setup(options: { webhookUrl?: string; answer?: (url: string) => number } = {}) {
  const sent: Sent[] = [];
  const emu = new StreamEmulator({
    webhook: options.webhookUrl ? { url: options.webhookUrl, secret: "built-in-secret" } : null,
    sendWebhook: async (url, init) => {
      const headers = new Headers(init.headers);
      sent.push({ url, auth: headers.get("cf-webhook-auth"), body: JSON.parse(String(init.body)) });
      return new Response("ok", { status: options.answer?.(url) ?? 200 });
    },
  });
  const client = new Cloudflare({
    apiToken: "local-dev-token",
    baseURL: `${BASE}/client/v4`,
    maxRetries: 0,
    fetch: (input: RequestInfo | URL, init?: RequestInit) => emu.fetch(new Request(input, init)),
  });
  const raw = async (method: string, path: string, body?: unknown, token = "local-dev-token") => {
    const res = await emu.fetch(
      new Request(`${ALERTING}${path}`, {
        method,
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
        body: body === undefined ? undefined : JSON.stringify(body),
      }),
    );
    return { status: res.status, body: (await res.json()) as Json };
  };
  const api = async (method: string, url: string, body?: unknown) => {
    const res = await emu.fetch(
      new Request(`${BASE}${url}`, {
        method,
        headers: { authorization: "Bearer local-dev-token", "content-type": "application/json" },
        body: body === undefined ? undefined : JSON.stringify(body),
      }),
    );
    return (await res.json()) as Json;
  };
  const newInput = async () => (await api("POST", `/client/v4/accounts/${ACCOUNT}/stream/live_inputs`, {})).result.uid as string;
  const notifications = async () => {
    await emu.settled();
    return sent.filter((s) => s.body.data);
  };
  return { emu, client, sent, raw, newInput, notifications };
}

async function destinationAndPolicy(client: Cloudflare, extra: Record<string, unknown> = {}) {
  const dest = await client.alerting.destinations.webhooks.create({ account_id: ACCOUNT, name: "ours", url: HOOK, secret: "dest-secret-0123456789" });
  const policy = await client.alerting.policies.create({
    account_id: ACCOUNT,
    name: "live inputs",
    alert_type: "stream_live_notifications",
    enabled: true,
    mechanisms: { webhooks: [{ id: dest.id! }] },
    filters: { event_type: EVENTS },
    ...extra,
  });
  return { destinationId: dest.id!, policyId: policy.id! };
}

describe("Notifications API: webhook destinations", () => {
  it("create, list, get, update and delete through the SDK, in the SDK's shapes, never returning the secret", async () => {
    const { client, sent } = setup();
    const created = await client.alerting.destinations.webhooks.create({ account_id: ACCOUNT, name: "hook", url: HOOK, secret: "s3cret-s3cret-s3cret" });
    expect(created).toEqual({ id: expect.stringMatching(/^[0-9a-f]{32}$/) });
    // Cloudflare's test message went to the URL, with the secret, before the destination was saved.
    expect(sent).toEqual([{ url: HOOK, auth: "s3cret-s3cret-s3cret", body: { text: expect.stringContaining("This is a test message") } }]);

    const listed = [];
    for await (const d of client.alerting.destinations.webhooks.list({ account_id: ACCOUNT })) listed.push(d);
    expect(listed).toEqual([{ id: created.id, name: "hook", type: "generic", url: HOOK, created_at: expect.any(String) }]);
    const got = await client.alerting.destinations.webhooks.get(created.id!, { account_id: ACCOUNT });
    expect(got).toEqual(listed[0]);
    expect(JSON.stringify(got)).not.toContain("s3cret");

    const updated = await client.alerting.destinations.webhooks.update(created.id!, { account_id: ACCOUNT, name: "hook 2", url: `${HOOK}?v=2`, secret: "new-secret-new-secret" });
    expect(updated).toEqual({ id: created.id });
    expect(sent.at(-1)).toMatchObject({ url: `${HOOK}?v=2`, auth: "new-secret-new-secret" });
    expect(await client.alerting.destinations.webhooks.get(created.id!, { account_id: ACCOUNT })).toMatchObject({ name: "hook 2", url: `${HOOK}?v=2` });

    await client.alerting.destinations.webhooks.delete(created.id!, { account_id: ACCOUNT });
    await expect(client.alerting.destinations.webhooks.get(created.id!, { account_id: ACCOUNT })).rejects.toMatchObject({ status: 404 });
  });

  it("refuses a destination whose URL does not answer the test message with a 2xx, and saves nothing", async () => {
    const { client, raw, emu } = setup({ answer: (url) => (url.includes("broken") ? 401 : 200) });
    const refused = await raw("POST", "/destinations/webhooks", { name: "x", url: "https://broken.example/hook", secret: "wrong-secret-1234" });
    expect(refused).toEqual({
      status: 400,
      body: { success: false, errors: [{ code: 10020, message: expect.stringContaining("answered the test message with HTTP 401") }], messages: [], result: null },
    });
    expect((await raw("GET", "/destinations/webhooks")).body.result).toEqual([]);
    // An update that fails its test leaves the destination as it was.
    const ok = await client.alerting.destinations.webhooks.create({ account_id: ACCOUNT, name: "x", url: HOOK });
    expect((await raw("PUT", `/destinations/webhooks/${ok.id}`, { name: "x", url: "https://broken.example/hook" })).status).toBe(400);
    expect((await raw("GET", `/destinations/webhooks/${ok.id}`)).body.result.url).toBe(HOOK);
    // The test message is in the webhook log; config can turn the test off.
    expect(emu.webhooks.deliveries().map((d) => [d.event, d.inputId, d.status])).toEqual([
      ["destination.test", null, 401],
      ["destination.test", null, 200],
      ["destination.test", null, 401],
    ]);
    emu.config.verifyWebhookDestinations = false;
    expect((await raw("POST", "/destinations/webhooks", { name: "y", url: "https://broken.example/hook" })).status).toBe(200);
  });

  it("validates bodies and answers unknown ids, foreign accounts and bad tokens with Cloudflare's envelope", async () => {
    const { raw, emu } = setup();
    for (const body of [{}, { name: "x" }, { name: "", url: HOOK }, { name: "x", url: "ftp://x" }, { name: "x", url: "not a url" }, { name: "x", url: HOOK, secret: 5 }]) {
      const r = await raw("POST", "/destinations/webhooks", body);
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.body).toMatchObject({ success: false, errors: [{ code: 10005 }], result: null });
    }
    expect((await raw("GET", "/destinations/webhooks/0123456789abcdef0123456789abcdef")).status).toBe(404);
    expect((await raw("DELETE", "/policies/0123456789abcdef0123456789abcdef")).status).toBe(404);
    expect((await raw("PATCH", "/policies")).status).toBe(405);
    expect((await raw("GET", "/policies", undefined, "wrong-token")).body).toMatchObject({ success: false, errors: [{ code: 10000 }] });
    const foreign = await emu.fetch(new Request(`${BASE}/client/v4/accounts/someone-else/alerting/v3/policies`, { headers: { authorization: "Bearer local-dev-token" } }));
    expect(foreign.status).toBe(403);
  });
});

describe("Notifications API: policies", () => {
  it("create, list, get, update (fields given change, others stay) and delete through the SDK", async () => {
    const { client } = setup();
    const { destinationId, policyId } = await destinationAndPolicy(client, { description: "ours" });
    const policies = [];
    for await (const p of client.alerting.policies.list({ account_id: ACCOUNT })) policies.push(p);
    expect(policies).toEqual([
      {
        id: policyId,
        name: "live inputs",
        description: "ours",
        alert_type: "stream_live_notifications",
        enabled: true,
        mechanisms: { webhooks: [{ id: destinationId }] },
        filters: { event_type: EVENTS },
        created: expect.any(String),
        modified: expect.any(String),
      },
    ]);
    await client.alerting.policies.update(policyId, { account_id: ACCOUNT, enabled: false });
    expect(await client.alerting.policies.get(policyId, { account_id: ACCOUNT })).toMatchObject({ enabled: false, name: "live inputs", filters: { event_type: EVENTS } });
    await client.alerting.policies.delete(policyId, { account_id: ACCOUNT });
    await expect(client.alerting.policies.get(policyId, { account_id: ACCOUNT })).rejects.toMatchObject({ status: 404 });
  });

  it("refuses a policy naming a destination that does not exist, or a live-input filter that is not one", async () => {
    const { raw } = setup();
    const base = { name: "p", alert_type: "stream_live_notifications", enabled: true };
    expect((await raw("POST", "/policies", { ...base, mechanisms: { webhooks: [{ id: "0123456789abcdef0123456789abcdef" }] } })).status).toBe(400);
    expect((await raw("POST", "/policies", { ...base, mechanisms: {}, filters: { event_type: ["live_input.exploded"] } })).body.errors[0].message).toContain("live_input.exploded");
    expect((await raw("POST", "/policies", { ...base, mechanisms: {}, filters: { input_id: ["nope"] } })).status).toBe(400);
    expect((await raw("POST", "/policies", { ...base, mechanisms: {}, filters: { event_type: "live_input.connected" } })).status).toBe(400);
    expect((await raw("POST", "/policies", { name: "p", enabled: true, mechanisms: {} })).status).toBe(400);
    expect((await raw("POST", "/policies", { ...base })).status).toBe(400);
  });

  it("deleting a destination removes it from the policies that named it", async () => {
    const { client } = setup();
    const { destinationId, policyId } = await destinationAndPolicy(client);
    await client.alerting.destinations.webhooks.delete(destinationId, { account_id: ACCOUNT });
    expect((await client.alerting.policies.get(policyId, { account_id: ACCOUNT })).mechanisms).toEqual({ webhooks: [] });
  });
});

describe("live-input webhooks follow the policies", () => {
  it("with a policy: each event goes to its destination with that destination's secret and the policy's name, not to webhookUrl", async () => {
    const { client, emu, newInput, notifications } = setup({ webhookUrl: "http://built-in.test/hook" });
    const { destinationId, policyId } = await destinationAndPolicy(client);
    const uid = await newInput();
    emu.connect(uid);
    emu.erroredInput(uid, { code: "ERR_GOP_OUT_OF_RANGE", message: "GOP too long" });
    emu.disconnect(uid);
    const sent = await notifications();
    expect(sent.map((s) => [s.url, s.auth, s.body.data.event_type])).toEqual([
      [HOOK, "dest-secret-0123456789", "live_input.connected"],
      [HOOK, "dest-secret-0123456789", "live_input.errored"],
      [HOOK, "dest-secret-0123456789", "live_input.disconnected"],
    ]);
    expect(sent[0]!.body).toMatchObject({
      name: "live inputs",
      policy_id: policyId,
      policy_name: "live inputs",
      alert_type: "stream_live_notifications",
      account_id: ACCOUNT,
      data: { notification_name: "Stream Live Input", input_id: uid, event_type: "live_input.connected" },
    });
    // A delivery moves the destination's last_success.
    expect((await client.alerting.destinations.webhooks.get(destinationId, { account_id: ACCOUNT })).last_success).toEqual(expect.any(String));
  });

  it("the policy's filters apply: only listed events, only listed inputs; a disabled policy sends nothing", async () => {
    const { client, emu, newInput, notifications, sent } = setup({ webhookUrl: "http://built-in.test/hook" });
    const a = await newInput();
    const b = await newInput();
    const { policyId } = await destinationAndPolicy(client, { filters: { event_type: ["live_input.connected"], input_id: [a] } });
    emu.connect(a);
    emu.connect(b);
    emu.disconnect(a);
    expect((await notifications()).map((s) => [s.body.data.input_id, s.body.data.event_type])).toEqual([[a, "live_input.connected"]]);
    await client.alerting.policies.update(policyId, { account_id: ACCOUNT, enabled: false });
    sent.length = 0;
    emu.connect(a);
    // A disabled live-input policy still means the account is configured: the built-in webhookUrl stays silent.
    expect(await notifications()).toEqual([]);
  });

  it("without a live-input policy the built-in webhookUrl is used, as before; a policy of another alert type changes nothing", async () => {
    const { client, emu, newInput, notifications } = setup({ webhookUrl: "http://built-in.test/hook" });
    const dest = await client.alerting.destinations.webhooks.create({ account_id: ACCOUNT, name: "ours", url: HOOK });
    await client.alerting.policies.create({ account_id: ACCOUNT, name: "ssl", alert_type: "universal_ssl_event_type", enabled: true, mechanisms: { webhooks: [{ id: dest.id! }] } });
    const uid = await newInput();
    emu.connect(uid);
    const sent = await notifications();
    expect(sent.map((s) => [s.url, s.auth])).toEqual([["http://built-in.test/hook", "built-in-secret"]]);
    expect(sent[0]!.body.name).toBe("Stream Live Input");
    expect(sent[0]!.body.policy_id).toBeUndefined();
  });

  it("a destination without a secret gets no cf-webhook-auth header", async () => {
    const { client, emu, newInput, notifications } = setup();
    const dest = await client.alerting.destinations.webhooks.create({ account_id: ACCOUNT, name: "open", url: HOOK });
    await client.alerting.policies.create({ account_id: ACCOUNT, name: "p", alert_type: "stream_live_notifications", enabled: true, mechanisms: { webhooks: [{ id: dest.id! }] } });
    const uid = await newInput();
    emu.connect(uid);
    expect((await notifications()).map((s) => s.auth)).toEqual([null]);
  });
});

describe("control API and persistence", () => {
  it("/__emulator/state shows destinations (with their secrets) and policies, and which decides where webhooks go; reset clears them", async () => {
    const { client, emu } = setup({ webhookUrl: "http://built-in.test/hook" });
    const state = async () => (await (await emu.fetch(new Request(`${BASE}/__emulator/state`))).json()) as Json;
    expect((await state()).alerting).toEqual({ destinations: [], policies: [], liveInputWebhooks: "webhookUrl" });
    const { destinationId, policyId } = await destinationAndPolicy(client);
    const { alerting } = await state();
    expect(alerting.liveInputWebhooks).toBe("policies");
    expect(alerting.destinations).toEqual([expect.objectContaining({ id: destinationId, url: HOOK, secret: "dest-secret-0123456789" })]);
    expect(alerting.policies).toEqual([expect.objectContaining({ id: policyId, alert_type: "stream_live_notifications" })]);
    await emu.fetch(new Request(`${BASE}/__emulator/reset`, { method: "POST" }));
    expect((await state()).alerting).toEqual({ destinations: [], policies: [], liveInputWebhooks: "webhookUrl" });
  });

  it("verifyWebhookDestinations is set over POST /__emulator/config and validated", async () => {
    const { emu } = setup();
    const post = (body: unknown) => emu.fetch(new Request(`${BASE}/__emulator/config`, { method: "POST", body: JSON.stringify(body) }));
    expect(((await (await post({ verifyWebhookDestinations: false })).json()) as Json).verifyWebhookDestinations).toBe(false);
    expect((await post({ verifyWebhookDestinations: "no" })).status).toBe(400);
  });

  it("destinations and policies survive a restart, and keep routing webhooks", async () => {
    const first = setup();
    const { destinationId, policyId } = await destinationAndPolicy(first.client);
    const uid = await first.newInput();
    const snapshot: Snapshot = JSON.parse(JSON.stringify(first.emu.snapshotForDisk()));

    const second = setup();
    second.emu.restore(snapshot, []);
    expect((await second.client.alerting.policies.get(policyId, { account_id: ACCOUNT })).mechanisms).toEqual({ webhooks: [{ id: destinationId }] });
    expect(await second.client.alerting.destinations.webhooks.get(destinationId, { account_id: ACCOUNT })).toMatchObject({ url: HOOK });
    second.emu.connect(uid);
    expect((await second.notifications()).map((s) => [s.url, s.auth])).toEqual([[HOOK, "dest-secret-0123456789"]]);

    // A state file from before the Notifications API restores with none.
    const old = { ...snapshot } as Partial<Snapshot>;
    delete old.alerting;
    const third = setup();
    third.emu.restore(old as Snapshot, []);
    expect((await third.raw("GET", "/policies")).body.result).toEqual([]);
  });
});
