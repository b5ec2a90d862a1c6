// GET /api/admin/stats (src/http/admin-stats.ts): each count moves when its event happens, and only then.
// Counts are cumulative in the ApiBudget object, so every test compares a read after the event with one
// before it. Some writes are off the request's path (waitUntil, or a write an object lets run), so a
// count is polled for a few seconds: a count that never moves still fails the test.
import { env, SELF } from "cloudflare:test";
import Cloudflare from "cloudflare";
import { beforeEach, describe, expect, it } from "vitest";
import * as setup from "../../scripts/setup-cloudflare";
import { streamApiFor } from "../../src/budget/budgeted-api";
import { loadConfig } from "../../src/config";
import type { Env } from "../../src/env";
import { handleStreamWebhook } from "../../src/http/stream-webhook";
import worker from "../../src/index";
import { sweepLeakedInputs } from "../../src/sweep/leak-sweep";
import {
  ADMIN,
  EMULATOR,
  LIVE_INPUTS_PATH,
  call,
  cloudflareDirect,
  emulator,
  injectFault,
  inputFor,
  newUserId,
  postStream,
  registerApp,
  resetEmulator,
  startStream,
  waitFor,
  type Json,
} from "../helpers";

beforeEach(resetEmulator);

const HOOK = "/api/webhooks/cloudflare-stream";
const SECRET = env.WEBHOOK_SECRET as string;
const TEST_MESSAGE = { text: "Hello World! This is a test message sent from https://cloudflare.com. If you can see this, your webhook is configured properly." };

async function stats(): Promise<Json> {
  const res = await call("GET", "/api/admin/stats", undefined, ADMIN);
  expect(res.status).toBe(200);
  return res.body;
}

const at = (body: Json, path: string): number => path.split(".").reduce((o, k) => o?.[k], body) as number;

/** Waits until each `path` (e.g. "budget.refusals.user") has moved by exactly its delta since `before`. */
async function expectMoved(before: Json, deltas: Record<string, number>): Promise<Json> {
  let last: Json = null;
  try {
    return await waitFor(async () => {
      last = await stats();
      return Object.entries(deltas).every(([path, d]) => at(last, path) - at(before, path) === d) ? last : null;
    }, 3_000);
  } catch {
    const moved = Object.fromEntries(Object.keys(deltas).map((path) => [path, at(last, path) - at(before, path)]));
    throw new Error(`expected the counts to move by ${JSON.stringify(deltas)}, they moved by ${JSON.stringify(moved)}`);
  }
}

/** Fills the budget's 5-minute window to its limit (leases counted as used), as a burst of calls would. */
async function exhaustBudget(): Promise<void> {
  const config = loadConfig(env);
  const settings = { limit: config.apiBudgetPer5Min, pollShare: config.apiBudgetPollShare };
  for (let i = 0; i < 100; i++) {
    const lease = await env.BUDGET.getByName("global").lease("user", settings, 64, 10_000);
    if (!lease.granted) return;
  }
  throw new Error("the budget never filled");
}

describe("GET /api/admin/stats", () => {
  it("needs the admin token, and answers every group", async () => {
    expect((await call("GET", "/api/admin/stats")).status).toBe(401);
    expect((await call("GET", "/api/admin/stats", undefined, { authorization: "Bearer nope" })).status).toBe(401);
    const body = await stats();
    expect(body).toEqual({
      generatedAt: expect.any(String),
      countingSince: expect.toSatisfy((v: unknown) => v === null || typeof v === "string"),
      budget: {
        limitPer5Min: 1000,
        pollLimitPer5Min: 800,
        usedLast5Min: expect.any(Number),
        blockedUntil: null,
        refusals: { user: expect.any(Number), cleanup: expect.any(Number), poll: expect.any(Number) },
        unavailable: expect.any(Number),
        lastRefusalAt: expect.toSatisfy((v: unknown) => v === null || typeof v === "string"),
      },
      cloudflare: {
        rateLimited: expect.any(Number),
        lastRateLimitedAt: expect.toSatisfy((v: unknown) => v === null || typeof v === "string"),
        failures: { server: expect.any(Number), client: expect.any(Number), unreachable: expect.any(Number) },
        lastFailureAt: expect.toSatisfy((v: unknown) => v === null || typeof v === "string"),
      },
      leakSweep: {
        runs: expect.any(Number),
        failedRuns: expect.any(Number),
        lastRunAt: expect.toSatisfy((v: unknown) => v === null || typeof v === "string"),
        lastRun: expect.toSatisfy((v: unknown) => v === null || typeof v === "object"),
        inputsDeleted: expect.any(Number),
        outputsDeleted: expect.any(Number),
        deleteFailures: expect.any(Number),
      },
      webhooks: {
        accepted: expect.any(Number),
        tests: expect.any(Number),
        rejected: { unauthorized: expect.any(Number), invalidPayload: expect.any(Number), unknownInput: expect.any(Number), disabled: expect.any(Number) },
        failed: expect.any(Number),
        lastAcceptedAt: expect.toSatisfy((v: unknown) => v === null || typeof v === "string"),
        lastRejectedAt: expect.toSatisfy((v: unknown) => v === null || typeof v === "string"),
      },
    });
  });

  it("the budget's usage in the current window counts each call", async () => {
    const app = await registerApp();
    const before = await stats();
    await startStream(app);
    const after = await stats();
    expect(after.budget.usedLast5Min - before.budget.usedLast5Min).toBeGreaterThanOrEqual(1);
  });
});

describe("budget refusals, by priority", () => {
  it("a user call, a poll and a cleanup held back by a full budget each count once under their priority", async () => {
    const app = await registerApp();
    const api = streamApiFor(env, loadConfig(env));
    await exhaustBudget();
    const before = await stats();

    const refused = await postStream(app, { userId: newUserId() });
    expect(refused).toMatchObject({ status: 502, body: { error: "CLOUDFLARE_ERROR", message: expect.stringContaining("budget") } });
    await expect(api.getIngestState("0123456789abcdef0123456789abcdef", "poll")).rejects.toThrow(/budget/);
    await expect(api.listOurLiveInputs()).rejects.toThrow(/budget/);
    await expect(api.listOurLiveInputs()).rejects.toThrow(/budget/);

    const after = await expectMoved(before, { "budget.refusals.user": 1, "budget.refusals.poll": 1, "budget.refusals.cleanup": 2 });
    expect(after.budget.lastRefusalAt).not.toBeNull();
    expect(after.budget.usedLast5Min).toBe(1000);
    await env.BUDGET.getByName("global").clear();
  });
});

describe("Cloudflare failures", () => {
  it("a 429 blocks the budget and counts as rate-limited", async () => {
    const app = await registerApp();
    const before = await stats();
    await injectFault({ method: "POST", path: LIVE_INPUTS_PATH, status: 429, retryAfter: 30 });
    expect((await postStream(app, { userId: newUserId() })).status).toBe(502);
    const after = await expectMoved(before, { "cloudflare.rateLimited": 1, "cloudflare.failures.server": 0, "cloudflare.failures.client": 0 });
    expect(after.budget.blockedUntil).not.toBeNull();
    expect(after.cloudflare.lastRateLimitedAt).not.toBeNull();
  });

  it("a 5xx, a 4xx and a call with no answer each count under their kind; a 404 is an answer, not a failure", async () => {
    const app = await registerApp();
    const before = await stats();
    await injectFault({ method: "POST", path: LIVE_INPUTS_PATH, status: 503, count: 1 });
    await postStream(app, { userId: newUserId() });
    await expectMoved(before, { "cloudflare.failures.server": 1, "cloudflare.failures.client": 0, "cloudflare.failures.unreachable": 0 });

    await injectFault({ method: "POST", path: LIVE_INPUTS_PATH, status: 400, count: 1 });
    await postStream(app, { userId: newUserId() });
    await injectFault({ method: "POST", path: LIVE_INPUTS_PATH, drop: true, count: 1 });
    await postStream(app, { userId: newUserId() });
    // Reading an input that is gone: 404.
    await expect(streamApiFor(env, loadConfig(env)).getIngestState("0123456789abcdef0123456789abcdef")).rejects.toMatchObject({ upstreamStatus: 404 });
    const after = await expectMoved(before, { "cloudflare.failures.server": 1, "cloudflare.failures.client": 1, "cloudflare.failures.unreachable": 1 });
    expect(after.cloudflare.lastFailureAt).not.toBeNull();
  });
});

describe("the leak sweep", () => {
  it("counts its runs, the inputs and outputs it deleted as leaks, and the last run's figures", async () => {
    const leaked = (await cloudflareDirect("POST", "", { meta: { managedBy: "stream-coordinator", streamId: "nonexistentstream0000" } })).uid;
    await cloudflareDirect("POST", `/${leaked}/outputs`, { url: "rtmp://example.com/live", streamKey: "k" });
    await cloudflareDirect("POST", `/${leaked}/outputs`, { url: "rtmp://example.com/live", streamKey: "k2" });
    const young = (await cloudflareDirect("POST", "", { meta: { managedBy: "stream-coordinator" } })).uid;
    const before = await stats();

    await sweepLeakedInputs(env, Date.now() + 60_000); // nothing old enough yet
    const first = await expectMoved(before, { "leakSweep.runs": 1, "leakSweep.inputsDeleted": 0, "leakSweep.outputsDeleted": 0 });
    expect(first.leakSweep.lastRun).toEqual({ checked: 2, deleted: 0, failed: 0 });

    await cloudflareDirect("DELETE", `/${young}`);
    const report = await sweepLeakedInputs(env, Date.now() + 11 * 60_000);
    expect(report).toMatchObject({ deleted: [leaked], outputsDeleted: 2 });
    const after = await expectMoved(before, { "leakSweep.runs": 2, "leakSweep.inputsDeleted": 1, "leakSweep.outputsDeleted": 2, "leakSweep.deleteFailures": 0, "leakSweep.failedRuns": 0 });
    expect(after.leakSweep.lastRun).toEqual({ checked: 1, deleted: 1, failed: 0 });
    expect(after.leakSweep.lastRunAt).not.toBeNull();
  });

  it("a delete that fails and a run whose list fails are counted", async () => {
    const leaked = (await cloudflareDirect("POST", "", { meta: { managedBy: "stream-coordinator" } })).uid;
    const before = await stats();
    await injectFault({ method: "DELETE", path: `${LIVE_INPUTS_PATH}/*`, status: 403, count: 1 });
    const report = await sweepLeakedInputs(env, Date.now() + 11 * 60_000);
    expect(report.failed).toEqual([leaked]);
    await expectMoved(before, { "leakSweep.runs": 1, "leakSweep.deleteFailures": 1, "leakSweep.inputsDeleted": 0, "leakSweep.failedRuns": 0 });

    await injectFault({ method: "GET", path: LIVE_INPUTS_PATH, status: 500, count: 1 });
    await expect(sweepLeakedInputs(env, Date.now() + 11 * 60_000)).rejects.toThrow();
    const after = await expectMoved(before, { "leakSweep.runs": 2, "leakSweep.failedRuns": 1 });
    expect(after.leakSweep.lastRun).toEqual({ checked: 0, deleted: 0, failed: 0 });
  });
});

describe("webhooks", () => {
  it("an applied event counts as accepted; Cloudflare's destination test is answered 200 and counted as a test (twice here)", async () => {
    const app = await registerApp();
    const s = await startStream(app);
    const uid = (await inputFor(s.streamId)).uid;
    const before = await stats();

    const test = await call("POST", HOOK, TEST_MESSAGE, { "cf-webhook-auth": SECRET });
    expect(test).toMatchObject({ status: 200, body: { ok: true, test: true } });
    // A context without waitUntil is no reason for a 500.
    const bare = await worker.fetch(
      new Request(`http://coordinator.test${HOOK}`, { method: "POST", headers: { "cf-webhook-auth": SECRET }, body: JSON.stringify(TEST_MESSAGE) }),
      env,
      {} as ExecutionContext,
    );
    expect(bare.status).toBe(200);
    const event = { name: "p", text: "t", data: { input_id: uid, event_type: "live_input.connected", updated_at: new Date().toISOString() }, ts: Math.floor(Date.now() / 1000) };
    expect((await call("POST", HOOK, event, { "cf-webhook-auth": SECRET })).status).toBe(200);

    const after = await expectMoved(before, { "webhooks.accepted": 1, "webhooks.tests": 2, "webhooks.rejected.unauthorized": 0, "webhooks.failed": 0 });
    expect(after.webhooks.lastAcceptedAt).not.toBeNull();
  });

  it("every kind of rejection counts under its reason", async () => {
    const before = await stats();
    const unknown = { data: { input_id: "0123456789abcdef0123456789abcdef", event_type: "live_input.connected" } };
    expect((await call("POST", HOOK, TEST_MESSAGE)).status).toBe(401); // a test without the secret is refused too
    expect((await call("POST", HOOK, unknown, { "cf-webhook-auth": "wrong" })).status).toBe(401);
    expect((await call("POST", HOOK, { data: { input_id: "nope" } }, { "cf-webhook-auth": SECRET })).status).toBe(400);
    expect((await call("POST", HOOK, "{not json", { "cf-webhook-auth": SECRET })).status).toBe(400);
    expect((await call("POST", HOOK, unknown, { "cf-webhook-auth": SECRET })).status).toBe(404);

    // A deployment without WEBHOOK_SECRET refuses webhooks (503).
    const waits: Promise<unknown>[] = [];
    const ctx = { waitUntil: (p: Promise<unknown>) => waits.push(p), passThroughOnException: () => undefined } as unknown as ExecutionContext;
    const request = new Request(`http://coordinator.test${HOOK}`, { method: "POST", body: JSON.stringify(unknown) });
    await expect(handleStreamWebhook(request, { ...env, WEBHOOK_SECRET: undefined } as unknown as Env, ctx)).rejects.toMatchObject({ status: 503, code: "WEBHOOKS_DISABLED" });
    await Promise.all(waits);

    const after = await expectMoved(before, {
      "webhooks.rejected.unauthorized": 2,
      "webhooks.rejected.invalidPayload": 2,
      "webhooks.rejected.unknownInput": 1,
      "webhooks.rejected.disabled": 1,
      "webhooks.accepted": 0,
      "webhooks.tests": 0,
    });
    expect(after.webhooks.lastRejectedAt).not.toBeNull();
  });
});

describe("a deployment configured by npm run setup:cloudflare", () => {
  it("its preflight passes against the Worker, and a notification routed by the policy it creates is accepted (and counted)", async () => {
    const app = await registerApp();
    const s = await startStream(app);
    const uid = (await inputFor(s.streamId)).uid;
    const webhookUrl = setup.webhookUrlFor("http://coordinator.test");
    // The Worker answers Cloudflare's test message with the secret (and refuses it without).
    await setup.preflight(webhookUrl, SECRET, (input, init) => SELF.fetch(input as string, init));
    await expect(setup.preflight(webhookUrl, "another-secret-0123456789", (input, init) => SELF.fetch(input as string, init))).rejects.toThrow(/rejects this WEBHOOK_SECRET/);

    // In workerd the emulator cannot reach the Worker, so it skips its own test of the destination.
    await emulator("POST", "config", { verifyWebhookDestinations: false });
    const client = new Cloudflare({ apiToken: "local-dev-token", baseURL: `${EMULATOR}/client/v4`, maxRetries: 0 });
    const report = await setup.setupLiveInputNotifications({ client, accountId: "local-account", workerUrl: "http://coordinator.test", secret: SECRET });
    expect(report.changes.map((c) => c.action)).toEqual(["created", "created"]);

    const before = await stats();
    await emulator("DELETE", "webhooks");
    await emulator("POST", `live_inputs/${uid}/connect`);
    const [delivery] = (await emulator("GET", "webhooks")).deliveries;
    expect(delivery).toMatchObject({ url: webhookUrl, event: "live_input.connected" });
    expect(delivery.payload).toMatchObject({ policy_name: "stream-coordinator live inputs", alert_type: "stream_live_notifications" });
    const applied = await call("POST", HOOK, delivery.payload, { "cf-webhook-auth": SECRET });
    expect(applied).toMatchObject({ status: 200, body: { ok: true, streamId: s.streamId } });
    await expectMoved(before, { "webhooks.accepted": 1 });
  });
});

describe("the counts survive the isolate", () => {
  it("are read from the ApiBudget object, not from memory", async () => {
    const before = await stats();
    await env.BUDGET.getByName("global").recordStats({ add: { "webhooks.accepted": 2, "not a name!": 5 }, set: { "sweep.last.deleted": 7 } });
    const after = await stats();
    expect(after.webhooks.accepted - before.webhooks.accepted).toBe(2);
    expect(after.countingSince).not.toBeNull();
    // A bad name or a negative increment is ignored, never a 500.
    await env.BUDGET.getByName("global").recordStats({ add: { "webhooks.accepted": -3 } });
    expect((await stats()).webhooks.accepted).toBe(after.webhooks.accepted);
    expect(SELF).toBeDefined();
  });
});
