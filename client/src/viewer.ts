// The viewer socket: `/api/streams/:id/ws` as an app, reconnecting on its own. On every (re)connect the
// server sends the current managed_stream_status at once, so a reconnect resumes with the current state.
import { ApiError, NetworkError, TimeoutError, isApiError, type ClientError, type RouteErrors } from "./errors.js";
import { sleep } from "./http.js";
import type { ManagedStreamRequestAnswer, ManagedStreamStatus, ProtocolError, StreamSnapshot, StreamStatusCheckResponse, Ticket } from "./types.js";

/** The part of a WebSocket the viewer uses: the platform's (browsers, Workers, Node 22+) or the `ws` package's. */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  addEventListener(type: "open" | "message" | "close" | "error", listener: (event: any) => void): void;
}
/** `new WebSocket(url)` (tickets) or `new WebSocket(url, { headers })` (the `ws` package, undici). */
export type WebSocketConstructor = new (url: string, ...rest: any[]) => WebSocketLike;

export interface ReconnectOptions {
  /** Backoff ceiling of the first retry; doubled per attempt (default 500 ms). The delay is uniform in [0, ceiling). */
  initialDelayMs?: number;
  /** Cap of the ceiling (default 10,000 ms). A longer Retry-After from the server is honoured. */
  maxDelayMs?: number;
  /** A connection open this long resets the backoff (default 10,000 ms). */
  stableAfterMs?: number;
  /** Consecutive failed attempts before giving up (default Infinity). */
  maxAttempts?: number;
}

export interface ViewerOptions {
  /** WebSocket implementation; default the platform's global `WebSocket` (Node 20 has none: pass `ws`). */
  WebSocket?: WebSocketConstructor;
  /**
   * `headers`: X-API-Key + X-Package-Name on the upgrade (Node `ws`, undici). `ticket`: a single-use
   * `POST /api/streams/:id/tickets` before every (re)connect, sent as `?ticket=` (browsers, Workers: no
   * custom headers). `auto` (default): `headers` when a WebSocket implementation is passed, else `ticket`.
   */
  auth?: "auto" | "headers" | "ticket";
  /** `false`: no reconnects (the first close is final). */
  reconnect?: ReconnectOptions | false;
  /** An attempt not open within this is abandoned and retried (default 10,000 ms). */
  connectTimeoutMs?: number;
  /** `{"type":"ping"}` this often while open (default 25,000 ms; 0 = off); answered without waking the stream. */
  pingIntervalMs?: number;
  /** No frame at all this long after a ping: the connection is dead, reconnect (default 10,000 ms). */
  pongTimeoutMs?: number;
  /** Aborting closes the viewer (reason `closed`). */
  signal?: AbortSignal;
}

/** Why the viewer stopped for good. It never stops for a dropped connection or a restart: it reconnects. */
export type ViewerCloseReason =
  /** The stream stopped (close 1000 "Stream stopped", a `stopped` status, or a reconnect found it ended: 410 / STREAM_ENDED). */
  | "stopped"
  /** This app left the stream (DELETE /api/streams/:id or managed_stream_stop): close 1000 "left the stream". */
  | "left"
  /** A reconnect was refused for good: 401, 403 (NOT_A_PARTICIPANT, FORBIDDEN), 404 (STREAM_NOT_FOUND), 426. */
  | "refused"
  /** `close()` or the signal. */
  | "closed"
  /** `maxAttempts` consecutive attempts failed. */
  | "gave_up";

export interface ViewerClosed {
  reason: ViewerCloseReason;
  message: string;
  /** The WebSocket close code, when a close frame ended it. */
  code?: number;
  /** The refusal or last failure (refused, gave_up, and stopped when found on reconnect). */
  error?: ClientError<RouteErrors["viewerUpgrade"] | RouteErrors["createTicket"] | RouteErrors["getStream"]>;
  /** The last status received. */
  status?: ManagedStreamStatus;
}

export interface ViewerEvents {
  /** Every managed_stream_status, the first of each connection included (never de-duplicated). */
  status: ManagedStreamStatus;
  /** A connection opened; `reconnected` from the second on. */
  open: { attempt: number; reconnected: boolean };
  /** A connection was lost or an attempt failed; the next attempt follows in `delayMs`. */
  reconnecting: { attempt: number; delayMs: number; reason: string; code?: number; error?: ClientError<string> };
  /** Every frame from the server, parsed (status, check responses, error frames, pong). */
  message: ServerMessage;
  /** `{"type":"error"}` frames (the socket stays open). */
  error: ProtocolError;
  /** Final: no more reconnects. */
  close: ViewerClosed;
}

export type ServerMessage =
  | ManagedStreamStatus
  | ManagedStreamRequestAnswer
  | StreamStatusCheckResponse
  | ProtocolError
  | { type: "pong" }
  | { type: string; [field: string]: unknown };

/** What the viewer needs from the app client (kept narrow so tests can stub it). */
export interface ViewerHost {
  baseUrl: string;
  authHeaders: Record<string, string>;
  createTicket(streamId: string, options: { retry: false; timeoutMs: number }): Promise<Ticket>;
  /** Absent for a viewer without an API key (connectViewer): no REST probe, leave() over the socket. */
  getStream?(streamId: string, options: { retry: false; timeoutMs: number }): Promise<StreamSnapshot>;
  leaveStream?(streamId: string): Promise<StreamSnapshot>;
}

export interface ConnectViewerOptions extends Omit<ViewerOptions, "auth"> {
  /** The coordinator, e.g. `https://<worker>`. */
  baseUrl: string;
  streamId: string;
  /**
   * A fresh single-use ticket for each (re)connect, e.g. from your own backend, which calls
   * `AppClient.createTicket()` with the API key. Throwing an `ApiError` with STREAM_ENDED (409/410) or a
   * 401/403/404 ends the viewer; any other error is retried with the backoff.
   */
  getTicket: () => Promise<string>;
}

/**
 * A viewer that never holds the API key: a browser gets each ticket from the app's backend. (The API key
 * is the app's secret, and the REST API sends no CORS headers, so a browser page should not call it.)
 */
export function connectViewer({ baseUrl, streamId, getTicket, ...options }: ConnectViewerOptions): Viewer {
  const host: ViewerHost = {
    baseUrl: baseUrl.replace(/\/+$/, ""),
    authHeaders: {},
    createTicket: async () => ({ ticket: await getTicket(), expiresAt: "" }),
  };
  return new Viewer(host, streamId, { ...options, auth: "ticket" });
}

type State = "connecting" | "open" | "waiting" | "closed";
type Listener<T> = (value: T) => void;

const OPEN = 1;
const CLOSED = 3;
/** After a `stopped` status the server closes at once; wait this long for the close frame's code, then end anyway. */
const STOPPED_CLOSE_WAIT_MS = 500;
const UPGRADE = "GET /api/streams/:id/ws";

export class Viewer implements AsyncIterable<ManagedStreamStatus> {
  readonly streamId: string;
  /** The latest managed_stream_status (from the current or an earlier connection), if any. */
  status: ManagedStreamStatus | undefined;
  /** Set once the viewer has stopped for good. */
  closedWith: ViewerClosed | undefined;
  /** Resolves (never rejects) when the viewer stops for good. */
  readonly closed: Promise<ViewerClosed>;

  private state: State = "connecting";
  /** The first status of the current connection (what the server sent on connect). */
  private connectionStatus: ManagedStreamStatus | undefined;
  private socket: WebSocketLike | null = null;
  private attempt = 0;
  private connections = 0;
  private readonly listeners = new Map<keyof ViewerEvents, Set<Listener<any>>>();
  private readonly timers = new Set<ReturnType<typeof setTimeout>>();
  private resolveClosed!: (value: ViewerClosed) => void;
  private readonly WS: WebSocketConstructor;
  private readonly auth: "headers" | "ticket";
  private readonly reconnect: Required<ReconnectOptions> | null;
  private readonly connectTimeoutMs: number;
  private readonly pingIntervalMs: number;
  private readonly pongTimeoutMs: number;
  /** Whether the implementation reports refused upgrades with their status (the `ws` package does). */
  private readonly reportsUpgrade: boolean;

  constructor(
    private readonly host: ViewerHost,
    streamId: string,
    options: ViewerOptions = {},
  ) {
    this.streamId = streamId;
    this.closed = new Promise((resolve) => (this.resolveClosed = resolve));
    const WS = options.WebSocket ?? (globalThis as unknown as { WebSocket?: WebSocketConstructor }).WebSocket;
    if (!WS) throw new TypeError("No WebSocket: pass `WebSocket` in the options (Node 20: `import WebSocket from \"ws\"`)");
    this.WS = WS;
    this.auth = options.auth === "headers" || options.auth === "ticket" ? options.auth : options.WebSocket ? "headers" : "ticket";
    this.reconnect =
      options.reconnect === false
        ? null
        : { initialDelayMs: 500, maxDelayMs: 10_000, stableAfterMs: 10_000, maxAttempts: Infinity, ...options.reconnect };
    this.connectTimeoutMs = options.connectTimeoutMs ?? 10_000;
    this.pingIntervalMs = options.pingIntervalMs ?? 25_000;
    this.pongTimeoutMs = options.pongTimeoutMs ?? 10_000;
    this.reportsUpgrade = typeof (WS.prototype as { on?: unknown })?.on === "function";
    if (options.signal) {
      if (options.signal.aborted) queueMicrotask(() => void this.close());
      else options.signal.addEventListener("abort", () => void this.close(), { once: true });
    }
    queueMicrotask(() => void this.connect());
  }

  private isClosed(): boolean {
    return this.state === "closed";
  }

  /** `open` while connected; `connecting` / `waiting` (backoff) between connections; `closed` for good. */
  get readyState(): State {
    return this.state;
  }

  on<E extends keyof ViewerEvents>(event: E, listener: Listener<ViewerEvents[E]>): () => void {
    let set = this.listeners.get(event);
    if (!set) this.listeners.set(event, (set = new Set()));
    set.add(listener);
    return () => this.off(event, listener);
  }

  off<E extends keyof ViewerEvents>(event: E, listener: Listener<ViewerEvents[E]>): void {
    this.listeners.get(event)?.delete(listener);
  }

  once<E extends keyof ViewerEvents>(event: E, listener: Listener<ViewerEvents[E]>): () => void {
    const off = this.on(event, (value) => {
      off();
      listener(value);
    });
    return off;
  }

  /**
   * Statuses as an async iterable: the latest one first (if `includeLatest` and there is one), then each
   * new one. Ends when the viewer stops (`stopped`, `left`, `closed`); throws its error when it was
   * `refused` or `gave_up`. Breaking out of the loop does not close the viewer.
   */
  statuses({ includeLatest = true }: { includeLatest?: boolean } = {}): AsyncIterableIterator<ManagedStreamStatus> {
    const queue: ManagedStreamStatus[] = includeLatest && this.status ? [this.status] : [];
    let wake: (() => void) | null = null;
    const offStatus = this.on("status", (status) => {
      queue.push(status);
      wake?.();
    });
    const offClose = this.on("close", () => wake?.());
    const cleanup = () => {
      offStatus();
      offClose();
    };
    const iterator: AsyncIterableIterator<ManagedStreamStatus> = {
      next: async () => {
        for (;;) {
          if (queue.length) return { value: queue.shift()!, done: false };
          if (this.closedWith) {
            cleanup();
            const { reason, error } = this.closedWith;
            if ((reason === "refused" || reason === "gave_up") && error) throw error;
            return { value: undefined, done: true };
          }
          await new Promise<void>((resolve) => (wake = resolve));
          wake = null;
        }
      },
      return: async () => {
        cleanup();
        return { value: undefined, done: true };
      },
      [Symbol.asyncIterator]: () => iterator,
    };
    return iterator;
  }

  [Symbol.asyncIterator](): AsyncIterator<ManagedStreamStatus> {
    return this.statuses();
  }

  /**
   * The first status that satisfies `predicate`: the latest one if the viewer is connected (while it is
   * reconnecting the latest may be stale, so only statuses of the next connection count), else the next.
   * Rejects on timeout, or when the viewer stops first (with its error, or an Error naming the reason).
   */
  async waitFor(
    predicate: (status: ManagedStreamStatus) => boolean,
    { timeoutMs = Infinity, signal }: { timeoutMs?: number; signal?: AbortSignal } = {},
  ): Promise<ManagedStreamStatus> {
    const controller = new AbortController();
    const onAbort = () => controller.abort(signal?.reason);
    signal?.addEventListener("abort", onAbort, { once: true });
    const timer = Number.isFinite(timeoutMs) ? setTimeout(() => controller.abort(new Error("timeout")), timeoutMs) : undefined;
    const statuses = this.statuses({ includeLatest: this.state === "open" });
    try {
      const found = new Promise<ManagedStreamStatus>((resolve, reject) => {
        controller.signal.addEventListener("abort", () =>
          reject(new Error(`timed out after ${timeoutMs} ms waiting for a status; last: ${this.status?.status ?? "none"}`)),
        );
        void (async () => {
          try {
            for await (const status of { [Symbol.asyncIterator]: () => statuses }) if (predicate(status)) return resolve(status);
            reject(new Error(`viewer closed (${this.closedWith?.reason}: ${this.closedWith?.message}) before the awaited status`));
          } catch (error) {
            reject(error);
          }
        })();
      });
      return await found;
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
      await statuses.return?.();
    }
  }

  /**
   * The current connection's first status: at once if this connection has delivered it, else when the
   * next (re)connection does. Rejects on timeout, or if the viewer stops first.
   */
  ready({ timeoutMs = Infinity }: { timeoutMs?: number } = {}): Promise<ManagedStreamStatus> {
    if (this.state === "open" && this.connectionStatus) return Promise.resolve(this.connectionStatus);
    return new Promise((resolve, reject) => {
      const timer = Number.isFinite(timeoutMs) ? setTimeout(() => (cleanup(), reject(new Error(`not connected within ${timeoutMs} ms`))), timeoutMs) : undefined;
      const offStatus = this.on("status", (status) => {
        if (this.connectionStatus !== status) return;
        cleanup();
        resolve(status);
      });
      const offClose = this.on("close", (closed) => (cleanup(), reject(new Error(`viewer closed (${closed.reason}: ${closed.message})`))));
      const cleanup = () => {
        clearTimeout(timer);
        offStatus();
        offClose();
      };
    });
  }

  /** Sends a message (JSON) on the current connection; false when not connected. */
  send(message: { type: string; [field: string]: unknown }): boolean {
    if (this.state !== "open" || !this.socket || this.socket.readyState !== OPEN) return false;
    this.socket.send(JSON.stringify(message));
    return true;
  }

  /** `stream_status_check` → `stream_status_check_response` (connects first if needed). */
  async checkStream({ timeoutMs = 10_000 }: { timeoutMs?: number } = {}): Promise<StreamStatusCheckResponse> {
    const deadline = Date.now() + timeoutMs;
    while (this.state !== "open") {
      if (this.state === "closed") throw new Error(`viewer closed: ${this.closedWith?.reason}`);
      if (Date.now() > deadline) throw new Error(`not connected within ${timeoutMs} ms`);
      await sleep(50);
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => (off(), reject(new Error(`no stream_status_check_response within ${timeoutMs} ms`))), Math.max(1, deadline - Date.now()));
      const off = this.on("message", (message) => {
        if (message.type !== "stream_status_check_response") return;
        clearTimeout(timer);
        off();
        resolve(message as StreamStatusCheckResponse);
      });
      if (!this.send({ type: "stream_status_check" })) {
        clearTimeout(timer);
        off();
        reject(new Error("not connected"));
      }
    });
  }

  /**
   * This app leaves the stream (REST DELETE; over the socket, `managed_stream_stop`, for a connectViewer
   * viewer); the server sends a last `stopped` and closes: reason `left`.
   */
  async leave(): Promise<ViewerClosed> {
    if (this.host.leaveStream) await this.host.leaveStream(this.streamId);
    else if (!this.send({ type: "managed_stream_stop" })) return this.close("left the stream (not connected: closed only)");
    return Promise.race([this.closed, sleep(5_000).then(() => this.close("left the stream"))]);
  }

  /** Closes for good (reason `closed`); resolves once the socket is closed (at most ~1 s). */
  async close(message = "closed by the client"): Promise<ViewerClosed> {
    if (this.closedWith) return this.closedWith;
    const socket = this.socket;
    const done = socket && socket.readyState !== CLOSED ? new Promise<void>((resolve) => socket.addEventListener("close", () => resolve())) : null;
    this.finish({ reason: "closed", message });
    if (done) await Promise.race([done, sleep(1_100)]);
    return this.closedWith!;
  }

  // ── Connection lifecycle ────────────────────────────────────────────────────────────────────────

  private async connect(): Promise<void> {
    if (this.isClosed()) return;
    this.state = "connecting";
    const base = `${this.host.baseUrl.replace(/^http/i, "ws")}/api/streams/${encodeURIComponent(this.streamId)}/ws`;
    let url = base;
    if (this.auth === "ticket") {
      try {
        const { ticket } = await this.host.createTicket(this.streamId, { retry: false, timeoutMs: this.connectTimeoutMs });
        url = `${base}?ticket=${encodeURIComponent(ticket)}`;
      } catch (error) {
        if (this.isClosed()) return;
        return this.failed(error as ClientError, "ticket request failed");
      }
      if (this.isClosed()) return;
    }
    let socket: WebSocketLike;
    try {
      socket = this.auth === "ticket" ? new this.WS(url) : new this.WS(url, { headers: this.host.authHeaders });
    } catch (error) {
      // A constructor that throws (bad URL, unsupported options) will throw again: do not loop.
      return this.finish({ reason: "gave_up", message: `new WebSocket(${url.split("?")[0]}) threw: ${(error as Error).message}` });
    }
    this.socket = socket;
    this.connectionStatus = undefined;
    let opened = false;
    let timedOut = false;
    let refusal: ApiError<string> | null = null;
    let refusalRead: Promise<void> | null = null;
    let lastFrameAt = Date.now();
    let stopSeen: ManagedStreamStatus | null = null;

    // The `ws` package reports a refused upgrade with its HTTP answer: read our {error, message} body.
    const emitter = socket as unknown as { on?: (event: string, fn: (...args: any[]) => void) => void; terminate?: () => void };
    if (typeof emitter.on === "function") {
      emitter.on("unexpected-response", (_req: unknown, res: NodeResponse) => {
        refusalRead = readRefusal(res).then((error) => {
          refusal = error;
          terminate(socket);
        });
      });
    }

    const connectTimer = this.timer(() => {
      if (opened) return;
      timedOut = true;
      terminate(socket);
    }, this.connectTimeoutMs);
    let pingTimer: ReturnType<typeof setTimeout> | null = null;
    let stableTimer: ReturnType<typeof setTimeout> | null = null;
    const schedulePing = () => {
      if (!this.pingIntervalMs) return;
      pingTimer = this.timer(() => {
        const sentAt = Date.now();
        try {
          socket.send('{"type":"ping"}');
        } catch {
          return;
        }
        pingTimer = this.timer(() => {
          if (lastFrameAt < sentAt) terminate(socket); // dead connection: no pong, no frame
          else schedulePing();
        }, this.pongTimeoutMs);
      }, this.pingIntervalMs);
    };

    socket.addEventListener("open", () => {
      if (this.isClosed()) return terminate(socket);
      opened = true;
      this.clear(connectTimer);
      this.state = "open";
      this.connections += 1;
      const attempt = this.attempt;
      if (this.reconnect) stableTimer = this.timer(() => (this.attempt = 0), this.reconnect.stableAfterMs);
      schedulePing();
      this.emit("open", { attempt, reconnected: this.connections > 1 });
    });
    socket.addEventListener("message", (event: { data: unknown }) => {
      if (this.socket !== socket || this.isClosed()) return;
      lastFrameAt = Date.now();
      const text = typeof event.data === "string" ? event.data : decode(event.data);
      let message: ServerMessage;
      try {
        message = JSON.parse(text);
      } catch {
        return;
      }
      if (!message || typeof message !== "object") return;
      this.emit("message", message);
      if (message.type === "managed_stream_status") {
        const status = message as ManagedStreamStatus;
        this.status = status;
        if (!this.connectionStatus) this.connectionStatus = status;
        if (status.status === "stopped" && !stopSeen) {
          // The last message of a stream (or of a leave). Its close frame follows, but some stacks (the
          // `ws` package against workerd) report the close only when the TCP connection ends, ~10 s later.
          stopSeen = status;
          this.timer(() => {
            if (this.socket === socket) this.finish(stoppedBy(status));
          }, STOPPED_CLOSE_WAIT_MS);
        }
        this.emit("status", status);
      } else if (message.type === "error") {
        this.emit("error", message as ProtocolError);
      }
    });
    socket.addEventListener("error", () => {
      // Details come with the close (browsers give none); the close handler decides.
    });
    socket.addEventListener("close", async (event: { code?: number; reason?: unknown }) => {
      this.clear(connectTimer);
      if (pingTimer) this.clear(pingTimer);
      if (stableTimer) this.clear(stableTimer);
      if (this.socket === socket) this.socket = null;
      if (this.isClosed()) return;
      const code = event?.code;
      const reason = typeof event?.reason === "string" ? event.reason : event?.reason ? String(event.reason) : "";
      if (opened) {
        // Known ends of a stream for this viewer; anything else (1001, 1006, 1011, 1012, …) reconnects, and
        // the next upgrade's answer is authoritative.
        if (code === 1000 && /left the stream/i.test(reason)) return this.finish({ reason: "left", message: reason, code });
        if (code === 1000 && /stopped/i.test(reason)) return this.finish({ reason: "stopped", message: stopSeen?.message ?? reason, code });
        if (stopSeen) return this.finish({ ...stoppedBy(stopSeen), ...(code !== undefined ? { code } : {}) });
        return this.retry({ reason: `connection closed (${code ?? "?"}${reason ? ` ${reason}` : ""})`, code });
      }
      if (refusalRead) await refusalRead;
      if (this.isClosed()) return;
      if (refusal) return this.failed(refusal, "upgrade refused");
      if (!this.reportsUpgrade && this.auth === "headers") return this.probe(code);
      if (timedOut) return this.retry({ reason: `not open within ${this.connectTimeoutMs} ms`, error: new TimeoutError(UPGRADE, this.connectTimeoutMs) });
      return this.retry({ reason: `connect failed (${code ?? "?"})`, code, error: new NetworkError(UPGRADE, new Error(`closed before open (${code ?? "?"})`)) });
    });
  }

  /** An attempt failed with a known error: final for refusals, otherwise retried. */
  private failed(error: ClientError<string>, context: string): void {
    if (isApiError(error, "STREAM_ENDED") || (error.kind === "api" && error.status === 410)) {
      return this.finish({ reason: "stopped", message: error.message, error });
    }
    if (error.kind === "api" && !error.retryable && error.status !== 408) {
      return this.finish({ reason: "refused", message: `${context}: ${error.status} ${error.code}: ${error.message}`, error });
    }
    if (error.kind === "aborted") return this.finish({ reason: "closed", message: error.message });
    this.retry({ reason: `${context}: ${error.message}`, error, retryAfter: error.kind === "api" ? error.retryAfter : undefined });
  }

  /**
   * A headers-mode upgrade failed and this WebSocket does not say why (undici): ask REST. A 404/401
   * means the upgrade was refused for good; a stopped snapshot means the stream ended; else retry.
   */
  private async probe(code: number | undefined): Promise<void> {
    if (!this.host.getStream) return this.retry({ reason: `connect failed (${code ?? "?"})`, code });
    try {
      const snapshot = await this.host.getStream(this.streamId, { retry: false, timeoutMs: this.connectTimeoutMs });
      if (this.isClosed()) return;
      if (snapshot.status === "stopped") return this.finish({ reason: "stopped", message: snapshot.message });
      this.retry({ reason: `connect failed (${code ?? "?"})`, code });
    } catch (error) {
      if (this.isClosed()) return;
      this.failed(error as ClientError, "connect failed; REST says");
    }
  }

  private retry({ reason, code, error, retryAfter }: { reason: string; code?: number; error?: ClientError<string>; retryAfter?: number }): void {
    if (this.isClosed()) return;
    if (!this.reconnect) return this.finish({ reason: "gave_up", message: `${reason} (reconnect is off)`, code, error });
    this.attempt += 1;
    if (this.attempt > this.reconnect.maxAttempts) {
      return this.finish({ reason: "gave_up", message: `${reason}; gave up after ${this.reconnect.maxAttempts} attempts`, code, error });
    }
    // Full jitter: uniform in [0, min(cap, initial × 2^(attempt-1))), at least the server's Retry-After.
    const ceiling = Math.min(this.reconnect.maxDelayMs, this.reconnect.initialDelayMs * 2 ** (this.attempt - 1));
    const delayMs = Math.round(Math.max(Math.random() * ceiling, (retryAfter ?? 0) * 1000));
    this.state = "waiting";
    this.emit("reconnecting", { attempt: this.attempt, delayMs, reason, ...(code !== undefined ? { code } : {}), ...(error ? { error } : {}) });
    this.timer(() => void this.connect(), delayMs);
  }

  private finish(closed: ViewerClosed): void {
    if (this.closedWith) return;
    this.state = "closed";
    this.closedWith = { ...closed, ...(this.status ? { status: this.status } : {}) };
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    if (this.socket) shutdown(this.socket);
    this.socket = null;
    this.resolveClosed(this.closedWith);
    this.emit("close", this.closedWith);
  }

  private emit<E extends keyof ViewerEvents>(event: E, value: ViewerEvents[E]): void {
    for (const listener of [...(this.listeners.get(event) ?? [])]) {
      try {
        listener(value);
      } catch (error) {
        // A listener's bug is the listener's: report it like an EventTarget does, keep the viewer going.
        setTimeout(() => {
          throw error;
        });
      }
    }
  }

  private timer(fn: () => void, ms: number): ReturnType<typeof setTimeout> {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      fn();
    }, ms);
    this.timers.add(timer);
    return timer;
  }

  private clear(timer: ReturnType<typeof setTimeout>): void {
    clearTimeout(timer);
    this.timers.delete(timer);
  }
}

interface NodeResponse {
  statusCode?: number;
  headers: Record<string, string | string[] | undefined>;
  on(event: "data", fn: (chunk: unknown) => void): void;
  on(event: "end" | "error" | "close", fn: () => void): void;
}

/** Our `{error, message}` body of a refused upgrade, from the `ws` package's `unexpected-response`. */
function readRefusal(res: NodeResponse): Promise<ApiError<string>> {
  return new Promise((resolve) => {
    let text = "";
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      let body: { error?: unknown; message?: unknown } | string = text;
      try {
        body = JSON.parse(text);
      } catch {
        // not ours (a proxy's page): keep the text
      }
      const fields = typeof body === "object" && body ? body : {};
      const status = res.statusCode ?? 0;
      const retryHeader = res.headers["retry-after"];
      const retryAfter = Number(Array.isArray(retryHeader) ? retryHeader[0] : retryHeader);
      resolve(
        new ApiError(
          UPGRADE,
          status,
          typeof fields.error === "string" ? fields.error : `HTTP_${status}`,
          typeof fields.message === "string" ? fields.message : text.slice(0, 200),
          Number.isFinite(retryAfter) && retryHeader !== undefined ? retryAfter : undefined,
          body,
        ),
      );
    };
    res.on("data", (chunk) => (text += typeof chunk === "string" ? chunk : decode(chunk)));
    res.on("end", finish);
    res.on("error", finish);
    res.on("close", finish);
    setTimeout(finish, 2_000);
  });
}

/** The end a `stopped` status announces: this app left, or the stream stopped. */
function stoppedBy(status: ManagedStreamStatus): ViewerClosed {
  return { reason: /you left the stream/i.test(status.message) ? "left" : "stopped", message: status.message };
}

/** Ends a socket we are done with: a clean close if open (terminated after 1 s), at once otherwise. */
function shutdown(socket: WebSocketLike): void {
  if (socket.readyState === CLOSED) return;
  if (socket.readyState !== OPEN) return terminate(socket); // connecting, or closing (the server's close frame is in)
  try {
    socket.close(1000, "bye");
  } catch {
    return terminate(socket);
  }
  const timer = setTimeout(() => terminate(socket), 1_000) as { unref?: () => void };
  timer.unref?.();
  socket.addEventListener("close", () => clearTimeout(timer as ReturnType<typeof setTimeout>));
}

function terminate(socket: WebSocketLike): void {
  const ws = socket as WebSocketLike & { terminate?: () => void };
  try {
    if (typeof ws.terminate === "function") ws.terminate();
    else socket.close();
  } catch {
    // already closed
  }
}

function decode(data: unknown): string {
  if (typeof data === "string") return data;
  if (data instanceof ArrayBuffer) return new TextDecoder().decode(data);
  if (ArrayBuffer.isView(data)) return new TextDecoder().decode(data);
  return String(data);
}

