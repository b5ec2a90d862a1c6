// Shared helpers for the emulator tests: plain fetch() from test code lands on the emulator (outboundService).
// Every answer api() gets from the live-input API is checked against Cloudflare's published schema
// (./openapi.ts), unless the call says `{ unchecked: true }` (e.g. a fault with a made-up body).

import { expectResponseMatches } from "./openapi.ts";

export const BASE = "http://stream-emulator.test";
export const TOKEN = "local-dev-token";
export const ACCOUNT = "local-account";
export const INPUTS = `${BASE}/client/v4/accounts/${ACCOUNT}/stream/live_inputs`;

// Loose JSON type for assertions on response bodies.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Json = any;

export async function api(
  method: string,
  url: string,
  body?: unknown,
  headers: Record<string, string> = {},
  options: { unchecked?: boolean } = {},
): Promise<{ status: number; headers: Headers; body: Json }> {
  const init: RequestInit = { method, headers: { authorization: `Bearer ${TOKEN}`, ...headers } };
  if (body !== undefined) {
    init.body = typeof body === "string" ? body : JSON.stringify(body);
    (init.headers as Record<string, string>)["content-type"] = "application/json";
  }
  const res = await fetch(url, init);
  const text = await res.text();
  const parsed = text ? JSON.parse(text) : null;
  if (!options.unchecked) expectResponseMatches(method, url, res.status, parsed);
  return { status: res.status, headers: res.headers, body: parsed };
}

export async function control(method: string, path: string, body?: unknown): Promise<{ status: number; body: Json }> {
  const res = await fetch(`${BASE}/__emulator/${path}`, {
    method,
    headers: body === undefined ? {} : { "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: await res.json() };
}

export async function reset(config = true): Promise<void> {
  const r = await control("POST", "reset", { config });
  if (r.status !== 200) throw new Error(`reset failed: ${r.status}`);
}

export async function createInput(body: unknown = {}): Promise<Json> {
  const r = await api("POST", INPUTS, body);
  if (r.status !== 200) throw new Error(`create failed: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body.result;
}

export async function createOutput(inputId: string, body: unknown): Promise<Json> {
  const r = await api("POST", `${INPUTS}/${inputId}/outputs`, body);
  if (r.status !== 200) throw new Error(`output create failed: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body.result;
}

export async function state(): Promise<Json> {
  return (await control("GET", "state")).body;
}

export async function waitFor<T>(fn: () => Promise<T | undefined | null | false>, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error("waitFor timed out");
    await new Promise((r) => setTimeout(r, 25));
  }
}
