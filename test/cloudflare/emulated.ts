// Helpers for the tests of the Cloudflare clients (src/cloudflare/*-api.ts) against the Stream emulator. They use no
// `cloudflare:test`, so the same files run under workerd (`npm test`: fetch reaches the emulator as the outbound
// service) and in Node with the emulator in the tests' isolate (vitest.emulator.config.ts, for mutation testing).
import { loadConfig, type Config } from "../../src/config";
import type { Env } from "../../src/env";
import type { BudgetClient } from "../../src/cloudflare/stream-api";
import type { BudgetSettings, Grant, Priority } from "../../src/budget/sliding-window";

export const EMULATOR = "http://stream-emulator.test";
export const API = `${EMULATOR}/client/v4/accounts/local-account/stream`;
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Json = any;

/** The bindings vitest.config.ts gives the Worker (TEST_BINDINGS), as a Config; `overrides` replace variables. */
export function testConfig(overrides: Record<string, string> = {}): Config {
  return loadConfig({
    CLOUDFLARE_API_BASE_URL: `${EMULATOR}/client/v4`,
    CLOUDFLARE_API_TOKEN: "local-dev-token",
    CLOUDFLARE_ACCOUNT_ID: "local-account",
    CLOUDFLARE_TIMEOUT_MS: "1500",
    STREAM_CUSTOMER_CODE: "testcode",
    REALTIME_API_BASE_URL: `${EMULATOR}/v1`,
    REALTIME_APP_ID: "local-realtime-app",
    REALTIME_APP_SECRET: "local-realtime-secret",
    TURN_KEY_ID: "local-turn-key",
    TURN_KEY_API_TOKEN: "local-turn-token",
    ...overrides,
  } as unknown as Env);
}

export async function control(method: string, path: string, body?: unknown): Promise<Json> {
  const res = await fetch(`${EMULATOR}/__emulator/${path}`, {
    method,
    headers: body === undefined ? {} : { "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!res.ok) throw new Error(`emulator ${method} ${path}: ${res.status} ${await res.text()}`);
  return res.json();
}

export const resetEmulator = () => control("POST", "reset", { config: true });

/** A fault the emulator injects into its next matching calls (emulator/faults.ts). */
export interface EmulatorFault {
  method?: string;
  path: string;
  status?: number;
  delayMs?: number;
  /** Performs the call, then holds its answer this long (a read taken now, answered later). */
  answerDelayMs?: number;
  drop?: boolean;
  count?: number;
  retryAfter?: number;
  afterEffect?: boolean;
  body?: unknown;
}

export function injectFault(fault: EmulatorFault): Promise<Json> {
  return control("POST", "faults", fault);
}

/** A WebRTC offer with a video (mid 0) and an audio (mid 1) m-section, for the SFU's signalling. */
export const SDP_OFFER = [
  "v=0",
  "o=- 1 2 IN IP4 127.0.0.1",
  "s=-",
  "t=0 0",
  "a=group:BUNDLE 0 1",
  "m=video 9 UDP/TLS/RTP/SAVPF 96",
  "c=IN IP4 0.0.0.0",
  "a=mid:0",
  "a=sendonly",
  "a=rtpmap:96 VP8/90000",
  "m=audio 9 UDP/TLS/RTP/SAVPF 111",
  "c=IN IP4 0.0.0.0",
  "a=mid:1",
  "a=sendonly",
  "a=rtpmap:111 opus/48000/2",
  "",
].join("\r\n");

/** The API calls the emulator answered, as "METHOD path status" (path below the account). */
export async function calls(): Promise<string[]> {
  return (await control("GET", "calls")).calls.map((c: Json) => `${c.method} ${String(c.path).replace(/^\/client\/v4\/accounts\/[^/]+/, "")} ${c.status}`);
}

/** Raw Stream API call behind the client's back (the truth a test compares with). */
export async function cloudflare(method: string, path: string, body?: unknown): Promise<{ status: number; body: Json }> {
  const res = await fetch(`${API}${path}`, {
    method,
    headers: { authorization: "Bearer local-dev-token", ...(body === undefined ? {} : { "content-type": "application/json" }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: await res.json().catch(() => null) };
}

/** A budget that grants (or refuses, or is unreachable) and records what the client told it. */
export class RecordingBudget implements BudgetClient {
  readonly acquired: Array<{ priority: Priority; settings: BudgetSettings }> = [];
  readonly rateLimited: number[] = [];
  readonly counted: Array<[string, boolean]> = [];
  answer: Grant | "unreachable" = { granted: true };

  async acquire(priority: Priority, settings: BudgetSettings): Promise<Grant> {
    this.acquired.push({ priority, settings });
    if (this.answer === "unreachable") throw new Error("budget object unreachable");
    return this.answer;
  }
  async reportRateLimited(retryAfterSeconds: number): Promise<void> {
    this.rateLimited.push(retryAfterSeconds);
  }
  count(name: string, rare: boolean): void {
    this.counted.push([name, rare]);
  }
}
