import { SELF, env, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { shiftClock } from "../src/clock";
import { StreamCoordinator } from "../src/stream/stream-coordinator";
import { control, EMULATOR, type EmulatorFault } from "./cloudflare/emulated";

/** Test helpers: talk to the coordinator through SELF and to the emulator through its control API. */

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Json = any;

export const ADMIN = { authorization: `Bearer ${env.ADMIN_TOKEN}` };
export { EMULATOR };

export interface Reply {
  status: number;
  headers: Headers;
  body: Json;
}

export async function call(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Reply> {
  const init: RequestInit = { method, headers: { ...headers } };
  if (body !== undefined) {
    init.body = typeof body === "string" ? body : JSON.stringify(body);
    (init.headers as Record<string, string>)["content-type"] = "application/json";
  }
  const res = await SELF.fetch(`http://coordinator.test${path}`, init);
  const text = await res.text();
  let parsed: Json = text;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    // leave as text: the assertion will show it
  }
  return { status: res.status, headers: res.headers, body: parsed };
}

export interface TestApp {
  packageName: string;
  apiKey: string;
  headers: Record<string, string>;
}

let appCounter = 0;

export async function registerApp(packageName = `com.test.app${++appCounter}.${crypto.randomUUID().slice(0, 8)}`): Promise<TestApp> {
  const res = await call("POST", "/api/admin/apps", { packageName }, ADMIN);
  if (res.status !== 201) throw new Error(`register failed: ${res.status} ${JSON.stringify(res.body)}`);
  return { packageName, apiKey: res.body.apiKey, headers: { "x-api-key": res.body.apiKey, "x-package-name": packageName } };
}

export function newUserId(): string {
  return `user-${crypto.randomUUID()}`;
}

/** The platform's step: the admin mints a grant letting `app` use `userId`'s stream (user grants are on by default). */
export async function userGrant(userId: string, app: TestApp, ttlSeconds?: number): Promise<string> {
  const res = await call("POST", "/api/admin/user-grants", { userId, packageName: app.packageName, ttlSeconds }, ADMIN);
  if (res.status !== 201) throw new Error(`user grant failed: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body.token;
}

/** The app's headers plus a fresh `X-User-Grant` for this user: what a start or join sends. */
export async function grantedHeaders(app: TestApp, userId: string): Promise<Record<string, string>> {
  return { ...app.headers, "x-user-grant": await userGrant(userId, app) };
}

/** `POST /api/streams` as a granted app: the body as given, with a fresh grant for `body.userId`. */
export async function postStream(app: TestApp, body: { userId: string } & Record<string, unknown>): Promise<Reply> {
  return call("POST", "/api/streams", body, await grantedHeaders(app, body.userId));
}

export async function startStream(app: TestApp, userId = newUserId(), extra: Record<string, unknown> = {}): Promise<Json> {
  const res = await postStream(app, { userId, recording: { mode: "off" }, ...extra });
  if (res.status !== 201 && res.status !== 200) throw new Error(`start failed: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body;
}

/** Two apps on one stream: `a` starts it for a new user, `b` joins it through the same user. */
export async function sharedStream(): Promise<{ a: TestApp; b: TestApp; userId: string; s: Json }> {
  const [a, b] = [await registerApp(), await registerApp()];
  const userId = newUserId();
  const s = await startStream(a, userId);
  await startStream(b, userId);
  return { a, b, userId, s };
}

export async function deviceToken(userId: string): Promise<string> {
  const res = await call("POST", "/api/admin/device-tokens", { userId }, ADMIN);
  if (res.status !== 201) throw new Error(`device token failed: ${res.status}`);
  return res.body.token;
}

// ── Emulator control ─────────────────────────────────────────────────────────────────────────────

/** The emulator's control API (/__emulator/…): test/cloudflare/emulated.ts's, which needs no workerd. */
export const emulator = control;

export async function emulatorInputs(): Promise<Json[]> {
  return (await emulator("GET", "state")).inputs;
}

export async function inputFor(streamId: string): Promise<Json | undefined> {
  return (await emulatorInputs()).find((input: Json) => input.meta?.streamId === streamId);
}

/** A fresh emulator and a fresh API budget (an injected 429 blocks the budget, as Cloudflare would). */
export async function resetEmulator(): Promise<void> {
  await emulator("POST", "reset", { config: true });
  await env.BUDGET.getByName("global").clear();
}

export async function injectFault(fault: EmulatorFault): Promise<void> {
  await control("POST", "faults", fault);
}

export const LIVE_INPUTS_PATH = "/client/v4/accounts/*/stream/live_inputs";

/** Calls the (emulated) Cloudflare API directly, behind the coordinator's back. `path` is below live_inputs. */
export async function cloudflareDirect(method: string, path: string, body?: unknown): Promise<Json> {
  const res = await fetch(`${EMULATOR}/client/v4/accounts/local-account/stream/live_inputs${path}`, {
    method,
    headers: { authorization: "Bearer local-dev-token", "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return ((await res.json()) as { result: Json }).result;
}

// ── WebSockets ───────────────────────────────────────────────────────────────────────────────────

export interface TestSocket {
  ws: WebSocket;
  messages: Json[];
  next(type?: string, timeoutMs?: number): Promise<Json>;
  closed: Promise<{ code: number; reason: string }>;
}

export async function openSocket(streamId: string, init: { headers?: Record<string, string>; query?: string }): Promise<TestSocket> {
  const res = await SELF.fetch(`http://coordinator.test/api/streams/${streamId}/ws${init.query ? `?${init.query}` : ""}`, {
    headers: { upgrade: "websocket", ...init.headers },
  });
  if (res.status !== 101 || !res.webSocket) throw new Error(`upgrade failed: ${res.status} ${await res.text()}`);
  const ws = res.webSocket;
  ws.accept();
  const messages: Json[] = [];
  const waiters: Array<() => void> = [];
  let cursor = 0;
  ws.addEventListener("message", (event) => {
    messages.push(JSON.parse(event.data as string));
    for (const wake of waiters.splice(0)) wake();
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    ws.addEventListener("close", (event) => resolve({ code: event.code, reason: event.reason })),
  );
  return {
    ws,
    messages,
    closed,
    /** Next unread message (optionally of a type), waiting for it if need be. */
    async next(type?: string, timeoutMs = 5_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        while (cursor < messages.length) {
          const message = messages[cursor++];
          if (!type || message.type === type) return message;
        }
        const remaining = deadline - Date.now();
        if (remaining <= 0) throw new Error(`no ${type ?? "message"} within ${timeoutMs} ms; got ${JSON.stringify(messages)}`);
        await new Promise<void>((resolve) => {
          waiters.push(resolve);
          setTimeout(resolve, remaining);
        });
      }
    },
  };
}

/** A viewer socket of `app` (its API-key headers) on the stream. */
export function viewerSocket(streamId: string, app: TestApp): Promise<TestSocket> {
  return openSocket(streamId, { headers: app.headers });
}

export async function waitFor<T>(probe: () => Promise<T | undefined | null | false>, timeoutMs = 5_000, what = "condition"): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

// ── Timers ───────────────────────────────────────────────────────────────────────────────────────

/** Makes a named timer of a stream due now and runs the alarm: timers expire through the real alarm path. */
export async function expireTimer(streamId: string, timer: string): Promise<void> {
  const stub = env.STREAMS.getByName(streamId);
  await runInDurableObject(stub, async (_instance, state) => {
    state.storage.sql.exec("UPDATE schedule SET due_at = 0 WHERE name = ?", timer);
    // A future alarm (so it cannot fire by itself mid-test); runDurableObjectAlarm runs it now.
    await state.storage.setAlarm(Date.now() + 60_000);
  });
  await runDurableObjectAlarm(stub);
}

/** The stream's scheduled timers: name → due time (ms). */
export async function streamTimers(streamId: string): Promise<Record<string, number>> {
  return runInDurableObject(env.STREAMS.getByName(streamId), (_instance, state) =>
    Object.fromEntries(
      state.storage.sql
        .exec<{ name: string; due_at: number }>("SELECT name, due_at FROM schedule")
        .toArray()
        .map((r) => [r.name, r.due_at]),
    ),
  );
}

/**
 * Runs the stream's alarm now, as the runtime would, at the tests' clock (`shiftClock`): only timers due
 * by `clock.now()` fire. Stand just before a boundary, fire, and nothing happens; just after, and it does.
 */
export async function fireAlarm(streamId: string): Promise<void> {
  const stub = env.STREAMS.getByName(streamId);
  await runInDurableObject(stub, async (_instance, state) => {
    // runDurableObjectAlarm runs only a set alarm; a far one cannot fire by itself mid-test.
    if ((await state.storage.getAlarm()) === null) await state.storage.setAlarm(Date.now() + 60_000);
  });
  await runDurableObjectAlarm(stub);
}

/**
 * The app's object unreachable from one stream (a lost answer, an overloaded or redeploying object): the
 * named AppAccount methods reject until `restore()`; everything else reaches the real object.
 */
export async function appObjectUnreachable(streamId: string, methods: string[]): Promise<{ restore(): Promise<void> }> {
  const stub = env.STREAMS.getByName(streamId);
  const failing = {
    getByName(name: string) {
      const real = env.APPS.getByName(name);
      return new Proxy(
        {},
        {
          get: (_target, method: string) =>
            methods.includes(method)
              ? () => Promise.reject(new Error(`AppAccount.${method}: unreachable (injected by the test)`))
              : (...args: unknown[]) => (real as unknown as Record<string, (...a: unknown[]) => unknown>)[method]!(...args),
        },
      );
    },
  };
  await runInDurableObject(stub, (instance) => {
    const s = (instance as unknown as { parts: { s: { env: object } } }).parts.s;
    s.env = Object.create(s.env, { APPS: { value: failing } });
  });
  return {
    async restore() {
      await runInDurableObject(stub, (instance) => {
        const s = (instance as unknown as { parts: { s: { env: object } } }).parts.s;
        s.env = Object.getPrototypeOf(s.env);
      });
    },
  };
}

/**
 * Ingest starts or ends at the emulator and its real live-input webhook is delivered to us (the webhook path end
 * to end, signed with WEBHOOK_SECRET); returns our answer to it.
 */
export async function ingestByWebhook(uid: string, action: "connect" | "disconnect"): Promise<Reply> {
  const secret = env.WEBHOOK_SECRET as string;
  await emulator("POST", "config", { webhookUrl: "http://coordinator.test/api/webhooks/cloudflare-stream", webhookSecret: secret });
  await emulator("DELETE", "webhooks");
  await emulator("POST", `live_inputs/${uid}/${action}`);
  const { deliveries } = await emulator("GET", "webhooks");
  return call("POST", "/api/webhooks/cloudflare-stream", deliveries[0].payload, { "cf-webhook-auth": secret });
}

/**
 * A new instance of the stream object over the same durable storage and sockets: what a restart after a crash,
 * an eviction or a deploy is. `then` runs on the new instance once its wake work (blockConcurrencyWhile) is done.
 */
export async function restartStreamObject<T = void>(streamId: string, then?: (fresh: StreamCoordinator) => Promise<T> | T): Promise<T> {
  return runInDurableObject(env.STREAMS.getByName(streamId), async (_instance, state) => {
    const fresh = new StreamCoordinator(state, env);
    await state.blockConcurrencyWhile(async () => undefined);
    return (then ? await then(fresh) : undefined) as T;
  });
}

/**
 * Moves the coordinator's clock and the emulator's forward together (the emulator runs in its own isolate,
 * with its own clock: POST /__emulator/clock, emulator/README.md).
 */
export async function advanceAllClocks(ms: number): Promise<void> {
  shiftClock(ms);
  await emulator("POST", "clock", { advanceMs: ms });
}
