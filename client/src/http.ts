// The REST transport: one JSON call with a per-attempt timeout, the caller's AbortSignal, typed errors,
// and retries (full-jitter backoff, at least Retry-After) for calls that are safe to repeat.
import { AbortedError, ApiError, NetworkError, TimeoutError, parseRetryAfter, type ClientError, type RouteErrors, type Route } from "./errors.js";

export type FetchLike = (input: string, init: RequestInit) => Promise<Response>;

export interface RetryOptions {
  /** Further attempts after the first (default 3). */
  retries?: number;
  /** First backoff ceiling; each retry doubles it (default 250 ms). */
  initialDelayMs?: number;
  /** Backoff ceiling (default 4,000 ms). A longer Retry-After is still honoured. */
  maxDelayMs?: number;
}

export interface ClientOptions {
  /** The coordinator, e.g. `http://127.0.0.1:8787` or `https://<worker>`. */
  baseUrl: string | URL;
  /** Defaults to the platform's `fetch`. */
  fetch?: FetchLike;
  /** Per attempt, default 30,000 ms (an output add may wait for Cloudflare twice). */
  timeoutMs?: number;
  /** Retries of calls that are safe to repeat (see README); `false` turns them off. */
  retry?: RetryOptions | false;
  /** Extra headers on every call. */
  headers?: Record<string, string>;
}

/** Per-call options. */
export interface CallOptions {
  signal?: AbortSignal;
  timeoutMs?: number;
  retry?: RetryOptions | false;
}

interface Call extends CallOptions {
  route: Route;
  method: "GET" | "POST" | "PATCH" | "DELETE";
  path: string;
  body?: unknown;
  headers?: Record<string, string>;
  /** Safe to send again after a lost answer or a 503 (reads, start-or-join, idempotent adds, …). */
  repeatable: boolean;
}

export interface Answer<T> {
  status: number;
  headers: Headers;
  body: T;
}

const DEFAULT_RETRY: Required<RetryOptions> = { retries: 3, initialDelayMs: 250, maxDelayMs: 4_000 };
/** A Retry-After longer than this is not waited for: the error is thrown for the caller to decide. */
const MAX_RETRY_AFTER_MS = 60_000;

export class Transport {
  readonly baseUrl: string;
  private readonly fetchImpl: FetchLike;

  constructor(
    private readonly options: ClientOptions,
    private readonly auth: Record<string, string>,
  ) {
    this.baseUrl = String(options.baseUrl).replace(/\/+$/, "");
    const platformFetch = (globalThis as { fetch?: FetchLike }).fetch;
    const impl = options.fetch ?? platformFetch;
    if (!impl) throw new TypeError("No fetch: pass `fetch` in the client options");
    // Unbound platform fetch throws "Illegal invocation" in browsers and Workers.
    this.fetchImpl = options.fetch ?? ((input, init) => platformFetch!(input, init));
  }

  async call<T, R extends Route = Route>(call: Call & { route: R }): Promise<Answer<T>> {
    const retry = call.retry === false || this.options.retry === false ? null : { ...DEFAULT_RETRY, ...this.options.retry, ...call.retry };
    const attempts = call.repeatable && retry ? retry.retries + 1 : 1;
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.once<T>(call);
      } catch (error) {
        const failure = error as ClientError<RouteErrors[R]>;
        const transient = failure.kind === "network" || failure.kind === "timeout" || (failure.kind === "api" && failure.status === 503);
        if (!retry || !transient || attempt + 1 >= attempts) throw failure;
        const ceiling = Math.min(retry.maxDelayMs, retry.initialDelayMs * 2 ** attempt);
        const floor = failure.kind === "api" && failure.retryAfter !== undefined ? failure.retryAfter * 1000 : 0;
        if (floor > MAX_RETRY_AFTER_MS) throw failure;
        await sleep(Math.max(floor, Math.random() * ceiling), call.signal, `${call.method} ${call.path}`);
      }
    }
  }

  private async once<T>(call: Call): Promise<Answer<T>> {
    const request = `${call.method} ${call.path}`;
    const timeoutMs = call.timeoutMs ?? this.options.timeoutMs ?? 30_000;
    if (call.signal?.aborted) throw new AbortedError(request, call.signal.reason);
    const controller = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort();
    }, timeoutMs);
    const onAbort = () => controller.abort();
    call.signal?.addEventListener("abort", onAbort, { once: true });
    const headers: Record<string, string> = { accept: "application/json", ...this.options.headers, ...this.auth, ...call.headers };
    const init: RequestInit = { method: call.method, headers, signal: controller.signal };
    if (call.body !== undefined) {
      headers["content-type"] = "application/json";
      init.body = JSON.stringify(call.body);
    }
    try {
      const res = await this.fetchImpl(this.baseUrl + call.path, init);
      const text = await res.text();
      let body: unknown = null;
      let parsed = true;
      try {
        body = text ? JSON.parse(text) : null;
      } catch {
        parsed = false;
        body = text;
      }
      if (res.ok && parsed) return { status: res.status, headers: res.headers, body: body as T };
      const fields = (parsed && body && typeof body === "object" ? body : {}) as { error?: unknown; message?: unknown; retryAfter?: unknown };
      const code = typeof fields.error === "string" ? fields.error : res.ok ? "INVALID_RESPONSE" : `HTTP_${res.status}`;
      const message = typeof fields.message === "string" ? fields.message : text.slice(0, 200) || res.statusText;
      const retryAfter = parseRetryAfter(res.headers.get("retry-after")) ?? (typeof fields.retryAfter === "number" ? fields.retryAfter : undefined);
      throw new ApiError(request, res.status, code, message, retryAfter, body);
    } catch (error) {
      if (error instanceof ApiError) throw error;
      if (timedOut) throw new TimeoutError(request, timeoutMs);
      if (call.signal?.aborted) throw new AbortedError(request, call.signal.reason);
      throw new NetworkError(request, error);
    } finally {
      clearTimeout(timer);
      call.signal?.removeEventListener("abort", onAbort);
    }
  }
}

/** Waits `ms`, or rejects with AbortedError when `signal` aborts first. */
export function sleep(ms: number, signal?: AbortSignal, request = "wait"): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new AbortedError(request, signal.reason));
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(new AbortedError(request, signal?.reason));
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/** `crypto.randomUUID()`, or a v4 UUID from getRandomValues where randomUUID is missing (insecure origins). */
export function randomKey(): string {
  const c = (globalThis as { crypto?: Crypto }).crypto;
  if (c?.randomUUID) {
    try {
      return c.randomUUID();
    } catch {
      // not a secure context
    }
  }
  const bytes = new Uint8Array(16);
  if (c?.getRandomValues) c.getRandomValues(bytes);
  else for (let i = 0; i < 16; i++) bytes[i] = Math.floor(Math.random() * 256);
  bytes[6] = (bytes[6]! & 0x0f) | 0x40;
  bytes[8] = (bytes[8]! & 0x3f) | 0x80;
  const hex = [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
