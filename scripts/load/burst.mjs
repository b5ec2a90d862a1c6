// Load against a running coordinator: a burst of concurrent REST calls, and slow-body sockets that are
// destroyed mid-request. Shared by `scripts/load/rest-burst.mjs` (the command) and the e2e load test.
// Plain node:http with an Agent that allows every socket at once: no client-side queueing hides the load.
import http from "node:http";

/** JSON over HTTP with a fresh connection budget; never throws on a status, only on a network error. */
export function call(agent, base, method, path, { body, headers = {}, timeoutMs = 60_000 } = {}) {
  return new Promise((resolve) => {
    const started = Date.now();
    const payload = body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body);
    const req = http.request(
      new URL(path, base),
      {
        method,
        agent,
        headers: { ...headers, ...(payload !== undefined ? { "content-type": "application/json", "content-length": Buffer.byteLength(payload) } : {}) },
        timeout: timeoutMs,
      },
      (res) => {
        const chunks = [];
        res.on("data", (c) => chunks.push(c));
        res.on("error", (error) => resolve({ status: 0, error: error.code ?? error.message, ms: Date.now() - started }));
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          let json;
          try {
            json = text ? JSON.parse(text) : undefined;
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode, headers: res.headers, text, json, ms: Date.now() - started });
        });
      },
    );
    req.on("timeout", () => req.destroy(new Error("client timeout")));
    req.on("error", (error) => resolve({ status: 0, error: error.code ?? error.message, ms: Date.now() - started }));
    req.end(payload);
  });
}

export const newAgent = (maxSockets = 4_000) => new http.Agent({ keepAlive: false, maxSockets, maxTotalSockets: maxSockets });

/** Registers an app, mints a user grant (accepted whether or not grants are required) and starts a stream. */
export async function setupFixture(base, adminToken = "local-admin-token") {
  const agent = newAgent(16);
  const admin = { authorization: `Bearer ${adminToken}` };
  const tag = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
  const packageName = `com.load.burst${tag}`;
  const userId = `load-user-${tag}`;
  const registered = await call(agent, base, "POST", "/api/admin/apps", { body: { packageName }, headers: admin });
  if (registered.status !== 201) throw new Error(`register app: ${registered.status} ${registered.text ?? registered.error}`);
  const appHeaders = { "x-api-key": registered.json.apiKey, "x-package-name": packageName };
  const grant = await call(agent, base, "POST", "/api/admin/user-grants", { body: { userId, packageName, ttlSeconds: 3_600 }, headers: admin });
  if (grant.status !== 201) throw new Error(`user grant: ${grant.status} ${grant.text ?? grant.error}`);
  const startHeaders = { ...appHeaders, "x-user-grant": grant.json.token };
  const started = await call(agent, base, "POST", "/api/streams", { body: { userId }, headers: startHeaders });
  if (started.status !== 201 && started.status !== 200) throw new Error(`start stream: ${started.status} ${started.text ?? started.error}`);
  agent.destroy();
  return { packageName, userId, appHeaders, startHeaders, streamId: started.json.streamId };
}

/** The request mix: health, an authenticated snapshot, a start that joins the running stream, bad auth. */
export function burstRequest(fixture, i) {
  switch (i % 4) {
    case 0:
      return ["GET", "/healthz", {}];
    case 1:
      return ["GET", `/api/streams/${fixture.streamId}`, { headers: fixture.appHeaders }];
    case 2:
      return ["POST", "/api/streams", { body: { userId: fixture.userId }, headers: fixture.startHeaders }];
    default:
      return ["GET", `/api/streams/${fixture.streamId}`, { headers: { ...fixture.appHeaders, "x-api-key": "sc_wrong" } }];
  }
}

/**
 * Fires `n` calls at once. Returns the histogram (`status` or `status ERROR_CODE` or the network error),
 * the answers that are not a JSON status (non-JSON bodies, error statuses without `error`+`message`),
 * 503s without Retry-After, and latency percentiles.
 */
export async function restBurst(base, fixture, n = 2_000, { timeoutMs = 60_000 } = {}) {
  const agent = newAgent(n + 16);
  const started = Date.now();
  const results = await Promise.all(
    Array.from({ length: n }, (_, i) => {
      const [method, path, options] = burstRequest(fixture, i);
      return call(agent, base, method, path, { ...options, timeoutMs }).then((r) => ({ ...r, method, path: path.replace(/[^/]{16,}/g, ":id") }));
    }),
  );
  agent.destroy();
  return summarize(results, Date.now() - started);
}

export function summarize(results, elapsedMs) {
  const histogram = {};
  const notJson = [];
  const noRetryAfter = [];
  for (const r of results) {
    const key = r.status === 0 ? `network ${r.error}` : r.status >= 400 ? `${r.status} ${r.json?.error ?? "<no error code>"}` : String(r.status);
    histogram[key] = (histogram[key] ?? 0) + 1;
    const isJsonStatus = r.status !== 0 && r.json !== undefined && (r.status < 400 || (typeof r.json.error === "string" && typeof r.json.message === "string"));
    if (r.status !== 0 && !isJsonStatus) notJson.push({ status: r.status, method: r.method, path: r.path, text: (r.text ?? "").slice(0, 300) });
    if (r.status === 503 && !r.headers?.["retry-after"]) noRetryAfter.push({ method: r.method, path: r.path });
  }
  const ms = results.map((r) => r.ms).sort((a, b) => a - b);
  const pct = (p) => ms[Math.min(ms.length - 1, Math.floor((p / 100) * ms.length))] ?? 0;
  return {
    calls: results.length,
    elapsedMs,
    histogram,
    networkErrors: results.filter((r) => r.status === 0).length,
    notJson,
    noRetryAfter,
    latencyMs: { p50: pct(50), p95: pct(95), p99: pct(99), max: ms.at(-1) ?? 0 },
  };
}

/**
 * Opens `n` sockets that each start a POST /api/streams with a declared body of 64 KiB, trickle a few
 * bytes, then are destroyed after `holdMs` without finishing. Returns how many connected.
 */
export async function slowBodies(base, fixture, n = 350, { holdMs = 3_000 } = {}) {
  const agent = newAgent(n + 16);
  const requests = [];
  let connected = 0;
  for (let i = 0; i < n; i += 1) {
    const req = http.request(new URL("/api/streams", base), {
      method: "POST",
      agent,
      headers: { ...fixture.startHeaders, "content-type": "application/json", "content-length": 65_536 },
    });
    req.on("socket", (socket) => socket.on("connect", () => (connected += 1)));
    req.on("error", () => {});
    req.on("response", (res) => res.resume());
    req.write('{"userId":"');
    requests.push(req);
  }
  const trickle = setInterval(() => {
    for (const req of requests) if (!req.destroyed) req.write("x");
  }, 500);
  await new Promise((r) => setTimeout(r, holdMs));
  clearInterval(trickle);
  for (const req of requests) req.destroy();
  agent.destroy();
  return { sockets: n, connected };
}

/**
 * Health after the load: the first 200 from GET /healthz within `timeoutMs` (or null), taken after
 * `settleMs`, because wrangler dies a moment after the failure that kills it.
 */
export async function healthAfter(base, timeoutMs = 15_000, settleMs = 3_000) {
  await new Promise((resolve) => setTimeout(resolve, settleMs));
  const agent = newAgent(4);
  const deadline = Date.now() + timeoutMs;
  try {
    while (Date.now() < deadline) {
      const r = await call(agent, base, "GET", "/healthz", { timeoutMs: 5_000 });
      if (r.status === 200) return r;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    return null;
  } finally {
    agent.destroy();
  }
}
