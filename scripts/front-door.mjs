// The local stack's front door: `npm start` listens here and forwards to `wrangler dev` on an internal
// port. It exists because wrangler dev (4.x) cannot take load or a dropped upload without dying (see
// docs/architecture.md, "Load on the local stack"):
//   - any failed hop from wrangler's ProxyWorker to the runtime (a reset socket) is reported to wrangler,
//     which exits 1 with an empty "✘ [ERROR]", after answering a raw 500 with miniflare's stack trace;
//   - the runtime closes, with a reset, every connection whose request it has not read within kj's 15 s
//     header timeout, which under a burst of ~1,000+ requests on a small machine is many of them;
//   - a client that disconnects mid-body makes the ProxyWorker's upstream fetch fail the same way.
// So the front door (1) admits at most `maxInFlight` requests into wrangler at a time and queues the rest
// for up to `queueTimeoutMs`, then answers JSON 503 + Retry-After; (2) reads each request body completely
// before forwarding it, so an upload dropped halfway never reaches wrangler; (3) never cancels a request
// it has forwarded; (4) turns any non-JSON 5xx or network failure from the runtime into JSON 503.
// WebSocket upgrades pass through (they hold a slot only until the upgrade is answered).
import http from "node:http";
import net from "node:net";

const JSON_TYPE = "application/json; charset=utf-8";
const HOP_BY_HOP = new Set(["connection", "keep-alive", "transfer-encoding", "proxy-connection", "te", "trailer", "upgrade"]);

export const FRONT_DOOR_DEFAULTS = {
  maxInFlight: 32,
  maxQueued: 10_000,
  queueTimeoutMs: 20_000,
  bodyTimeoutMs: 10_000,
  maxBodyBytes: 1024 * 1024,
  upstreamTimeoutMs: 120_000,
};

/** A counting gate with a FIFO queue: `enter()` resolves true when admitted, false when it gave up. */
export class Gate {
  constructor(max) {
    this.max = max;
    this.active = 0;
    this.waiting = [];
  }

  get queued() {
    return this.waiting.length;
  }

  /** Waits for a slot up to `timeoutMs`; `cancelled` (a promise) gives up early (the client left). */
  enter(timeoutMs, cancelled) {
    if (this.active < this.max && this.waiting.length === 0) {
      this.active += 1;
      return Promise.resolve(true);
    }
    return new Promise((resolve) => {
      const waiter = {
        admit: () => {
          clearTimeout(timer);
          this.active += 1;
          resolve(true);
        },
      };
      const giveUp = () => {
        const i = this.waiting.indexOf(waiter);
        if (i === -1) return;
        this.waiting.splice(i, 1);
        clearTimeout(timer);
        resolve(false);
      };
      const timer = setTimeout(giveUp, timeoutMs);
      cancelled?.then(giveUp);
      this.waiting.push(waiter);
    });
  }

  /** A `leave` for one admitted request that may be called from several events, but counts once. */
  releaser() {
    let released = false;
    return () => {
      if (!released) {
        released = true;
        this.leave();
      }
    };
  }

  leave() {
    this.active -= 1;
    const next = this.waiting.shift();
    if (next) next.admit();
  }
}

const errorBody = (error, message) => JSON.stringify({ error, message });

function sendJson(res, status, error, message, headers = {}) {
  if (res.headersSent || res.destroyed) {
    res.destroy();
    return;
  }
  const body = errorBody(error, message);
  res.writeHead(status, { "content-type": JSON_TYPE, "content-length": Buffer.byteLength(body), ...headers });
  res.end(res.req?.method === "HEAD" ? undefined : body);
}

/** A whole HTTP/1.1 JSON answer written on a raw socket (upgrade requests and client errors). */
function rawJson(socket, status, error, message, headers = {}) {
  if (socket.destroyed || !socket.writable) return socket.destroy();
  const body = errorBody(error, message);
  const lines = [`HTTP/1.1 ${status} ${http.STATUS_CODES[status] ?? ""}`, `content-type: ${JSON_TYPE}`, `content-length: ${Buffer.byteLength(body)}`, "connection: close"];
  for (const [k, v] of Object.entries(headers)) lines.push(`${k}: ${v}`);
  socket.end(`${lines.join("\r\n")}\r\n\r\n${body}`);
}

const unavailable = (detail) => [503, "SERVICE_UNAVAILABLE", `The local coordinator ${detail}; retry shortly`, { "retry-after": "1" }];

/** Ours always answer JSON; a 5xx without JSON comes from wrangler/miniflare (e.g. a raw stack trace). */
const isRuntimeFailure = (status, headers) => status >= 500 && !String(headers["content-type"] ?? "").includes("application/json");

function forwardHeaders(headers, bodyLength) {
  const out = {};
  for (const [k, v] of Object.entries(headers)) if (!HOP_BY_HOP.has(k) && k !== "content-length") out[k] = v;
  if (bodyLength !== null) out["content-length"] = String(bodyLength);
  out.connection = "close";
  return out;
}

/** Resolves with the whole body, or rejects with [status, code, message] (too large, too slow) or "gone". */
function readWholeBody(req, { maxBodyBytes, bodyTimeoutMs }) {
  const declared = Number(req.headers["content-length"] ?? "0");
  if (declared > maxBodyBytes) return Promise.reject([413, "PAYLOAD_TOO_LARGE", `Request body exceeds ${maxBodyBytes} bytes`]);
  if (!req.headers["transfer-encoding"] && !(declared > 0)) return Promise.resolve(null);
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    const timer = setTimeout(() => reject([408, "REQUEST_TIMEOUT", `The request body did not arrive within ${bodyTimeoutMs / 1000} s`]), bodyTimeoutMs);
    req.on("data", (chunk) => {
      size += chunk.length;
      if (size > maxBodyBytes) {
        clearTimeout(timer);
        reject([413, "PAYLOAD_TOO_LARGE", `Request body exceeds ${maxBodyBytes} bytes`]);
        return;
      }
      chunks.push(chunk);
    });
    req.on("end", () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks, size));
    });
    req.on("close", () => {
      clearTimeout(timer);
      if (!req.complete) reject("gone");
    });
    req.on("error", () => {
      clearTimeout(timer);
      reject("gone");
    });
  });
}

/**
 * Starts the front door on `host:port`, forwarding to `upstreamHost:upstreamPort`. Returns
 * `{ server, port, stats(), close(), retarget(port) }`; `retarget` sends later requests to another
 * upstream port (a runtime started again on a new port, scripts/start.mjs).
 */
export async function startFrontDoor({ host = "127.0.0.1", port, upstreamHost = "127.0.0.1", upstreamPort, ...options }) {
  const target = { port: upstreamPort };
  const o = { ...FRONT_DOOR_DEFAULTS, ...Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)) };
  const gate = new Gate(o.maxInFlight);
  const stats = { forwarded: 0, shed: 0, runtimeFailures: 0 };
  const upstream = (req, headers) =>
    http.request({ host: upstreamHost, port: target.port, method: req.method, path: req.url, headers, agent: false, timeout: o.upstreamTimeoutMs });

  /** Admission: refuse at once past maxQueued, else wait in line; false means answered or gone. */
  async function admit(gone, refuse) {
    if (gate.queued >= o.maxQueued) {
      stats.shed += 1;
      refuse(...unavailable("has too many requests waiting"));
      return false;
    }
    let left = false;
    const admitted = await gate.enter(o.queueTimeoutMs, gone.then(() => (left = true)));
    if (!admitted && !left) {
      stats.shed += 1;
      refuse(...unavailable(`is at capacity (${o.maxInFlight} requests in flight for ${o.queueTimeoutMs / 1000} s)`));
    }
    return admitted;
  }

  const server = http.createServer(async (req, res) => {
    let body;
    try {
      body = await readWholeBody(req, o);
    } catch (reason) {
      if (Array.isArray(reason)) {
        res.setHeader("connection", "close");
        sendJson(res, ...reason);
      } else req.socket.destroy();
      return;
    }
    const gone = new Promise((resolve) => res.once("close", resolve));
    if (!(await admit(gone, (...a) => sendJson(res, ...a)))) return;
    stats.forwarded += 1;
    const release = gate.releaser();
    // Once forwarded, a request runs to its end even if our client leaves: cancelling it mid-flight is
    // one of the ways wrangler's proxy fails. Only a runtime that never answers is cut off.
    const up = upstream(req, forwardHeaders(req.headers, body ? body.length : null));
    up.on("timeout", () => up.destroy(new Error("upstream timeout")));
    up.on("error", (error) => {
      release();
      stats.runtimeFailures += 1;
      sendJson(res, ...unavailable(`runtime did not answer (${error.code ?? error.message})`));
    });
    up.on("response", (upRes) => {
      upRes.on("close", release);
      upRes.on("error", () => res.destroy());
      // A client that left still gets its answer read to the end (and dropped), so the slot frees.
      res.on("close", () => upRes.complete || upRes.resume());
      if (isRuntimeFailure(upRes.statusCode, upRes.headers)) {
        stats.runtimeFailures += 1;
        upRes.resume();
        sendJson(res, ...unavailable(`runtime failed this request (HTTP ${upRes.statusCode} from wrangler)`));
        return;
      }
      const headers = {};
      for (const [k, v] of Object.entries(upRes.headers)) if (!HOP_BY_HOP.has(k)) headers[k] = v;
      res.writeHead(upRes.statusCode, upRes.statusMessage, headers);
      upRes.pipe(res);
    });
    up.end(body ?? undefined);
  });

  server.on("upgrade", async (req, socket, head) => {
    socket.on("error", () => socket.destroy());
    const gone = new Promise((resolve) => socket.once("close", resolve));
    if (!(await admit(gone, (...a) => rawJson(socket, ...a)))) return;
    stats.forwarded += 1;
    const release = gate.releaser();
    const headers = {};
    // Not the compression offer: the Worker refuses permessage-deflate (`no_web_socket_compression` in
    // wrangler.jsonc), but under wrangler dev miniflare's entry worker and wrangler's proxy worker answer
    // the upgrade under their own compatibility flags and would accept it. Without an offer, no layer
    // compresses, as in production.
    for (const [k, v] of Object.entries(req.headers)) if (k !== "content-length" && k !== "sec-websocket-extensions") headers[k] = v;
    const up = upstream(req, headers);
    up.on("timeout", () => up.destroy(new Error("upstream timeout")));
    up.on("error", (error) => {
      release();
      stats.runtimeFailures += 1;
      rawJson(socket, ...unavailable(`runtime did not answer (${error.code ?? error.message})`));
    });
    up.on("upgrade", (upRes, upSocket, upHead) => {
      release();
      up.setTimeout(0);
      upSocket.setTimeout(0);
      const lines = [`HTTP/1.1 ${upRes.statusCode} ${upRes.statusMessage}`];
      for (let i = 0; i < upRes.rawHeaders.length; i += 2) lines.push(`${upRes.rawHeaders[i]}: ${upRes.rawHeaders[i + 1]}`);
      if (socket.destroyed) return upSocket.destroy();
      socket.write(`${lines.join("\r\n")}\r\n\r\n`);
      if (upHead.length) socket.write(upHead);
      if (head.length) upSocket.write(head);
      upSocket.on("error", () => socket.destroy());
      socket.on("error", () => upSocket.destroy());
      upSocket.on("close", () => socket.destroy());
      socket.on("close", () => upSocket.destroy());
      socket.pipe(upSocket).pipe(socket);
    });
    up.on("response", (upRes) => {
      // The upgrade was refused (401, 404, 426, ...): relay that answer, as JSON if it was not.
      upRes.on("close", release);
      if (isRuntimeFailure(upRes.statusCode, upRes.headers)) {
        stats.runtimeFailures += 1;
        upRes.resume();
        rawJson(socket, ...unavailable(`runtime failed this request (HTTP ${upRes.statusCode} from wrangler)`));
        return;
      }
      const chunks = [];
      upRes.on("data", (c) => chunks.push(c));
      upRes.on("end", () => {
        const payload = Buffer.concat(chunks);
        const lines = [`HTTP/1.1 ${upRes.statusCode} ${upRes.statusMessage}`];
        for (const [k, v] of Object.entries(upRes.headers)) if (!HOP_BY_HOP.has(k) && k !== "content-length") lines.push(`${k}: ${v}`);
        lines.push(`content-length: ${payload.length}`, "connection: close");
        if (!socket.destroyed) socket.end(Buffer.concat([Buffer.from(`${lines.join("\r\n")}\r\n\r\n`), payload]));
      });
    });
    up.end();
  });

  // Malformed requests get a JSON 400 (Node's default is a bare text line).
  server.on("clientError", (error, socket) => {
    if (error.code === "ECONNRESET" || !socket.writable) return socket.destroy();
    const [status, code] = error.code === "HPE_HEADER_OVERFLOW" ? [431, "HEADERS_TOO_LARGE"] : error.code === "ERR_HTTP_REQUEST_TIMEOUT" ? [408, "REQUEST_TIMEOUT"] : [400, "BAD_REQUEST"];
    rawJson(socket, status, code, "Malformed HTTP request");
  });

  await new Promise((resolve, reject) => {
    server.once("error", reject);
    // A burst of thousands of connects must not overflow the accept queue (Node's default backlog is 511).
    server.listen({ port, host, backlog: 4_096 }, () => {
      server.off("error", reject);
      resolve();
    });
  });
  return {
    server,
    port: server.address().port,
    stats: () => ({ ...stats, inFlight: gate.active, queued: gate.queued }),
    close: () => new Promise((resolve) => server.close(() => resolve())),
    retarget: (upstream) => void (target.port = upstream),
  };
}

/** A loopback port that was free a moment ago (for wrangler dev behind the front door). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.unref();
    probe.on("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });
}
