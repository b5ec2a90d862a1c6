// Helpers for the end-to-end tests: boot the `npm start` stack on free ports, talk to it over HTTP
// and WebSocket, publish RTMP with ffmpeg, and wait with bounded polls.
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import WebSocket from "ws";
import { checkExchange, checkRefusal, socketCheck } from "./spec-check.mjs";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
export const ADMIN_TOKEN = "local-admin-token";

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
/** A sleep that does not keep the process alive: a bound raced against a child's exit, which does. */
export const bound = (ms) => new Promise((resolve) => setTimeout(resolve, ms).unref());

/** A port that was free a moment ago: bind port 0, read it, release it. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** Polls `fn` until it returns a truthy value (returned), or fails after `timeoutMs` saying what was awaited. */
export async function waitFor(what, fn, { timeoutMs = 10_000, intervalMs = 100 } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last;
  let lastError;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() >= deadline) {
      const detail = lastError ? `; last error: ${lastError.message}` : `; last value: ${JSON.stringify(last)?.slice(0, 2_000)}`;
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${detail}`);
    }
    await sleep(intervalMs);
  }
}

// ── The stack ────────────────────────────────────────────────────────────────────────────────────

/**
 * Spawns `node scripts/start.mjs` on free ports with the given extra env. Its output is kept in memory
 * (`output()`), to be printed only when something fails. `reuse: <an earlier stack>` starts again on its
 * state directory and ports (after `killGroup()`, to test a restart after a crash).
 */
export async function startStack(extraEnv = {}, { reuse } = {}) {
  const stateDir = reuse?.stateDir ?? mkdtempSync(path.join(tmpdir(), "stream-coordinator-e2e-"));
  // SRT's port is UDP; one free for TCP a moment ago is as good a guess, and a stack that starts again
  // (reuse) keeps it, as the live inputs' srt URLs carry it.
  const ports = reuse?.ports ?? (await Promise.all([freePort(), freePort(), freePort(), freePort(), freePort()]));
  const [port, emulatorPort, rtmpPort, inspectorPort, srtPort] = ports;
  const env = {
    ...process.env,
    PORT: String(port),
    STREAM_EMULATOR_PORT: String(emulatorPort),
    RTMP_PORT: String(rtmpPort),
    SRT_PORT: String(srtPort),
    INSPECTOR_PORT: String(inspectorPort),
    // A fresh, throwaway state directory per stack: runs never share or accumulate state.
    COORDINATOR_STATE_DIR: stateDir,
    ...extraEnv,
  };
  const chunks = [];
  // Own process group, so a stuck stack can be killed as a whole (only ever the group we started).
  const child = spawn(process.execPath, ["scripts/start.mjs"], { cwd: root, env, stdio: ["ignore", "pipe", "pipe"], detached: true });
  child.stdout.on("data", (c) => chunks.push(String(c)));
  child.stderr.on("data", (c) => chunks.push(String(c)));
  const exited = new Promise((resolve) => child.on("exit", (code, signal) => resolve({ code, signal })));
  const killGroup = () => {
    try {
      process.kill(-child.pid, "SIGKILL");
    } catch {
      // already gone
    }
  };
  process.once("exit", killGroup);

  const stack = {
    coordinator: `http://127.0.0.1:${port}`,
    emulator: `http://127.0.0.1:${emulatorPort}`,
    rtmpPort,
    stateDir,
    ports,
    child,
    exited,
    output: () => chunks.join(""),
    killGroup,
    /** SIGTERM, then resolves with how long the stack took to exit (or null after `timeoutMs`). */
    async stop(timeoutMs = 10_000) {
      if (child.exitCode !== null || child.signalCode !== null) return 0;
      const t0 = Date.now();
      child.kill("SIGTERM");
      // Unref'd: a pending 10 s timer kept every test file's process alive that long after its last test.
      const result = await Promise.race([exited.then(() => Date.now() - t0), bound(timeoutMs).then(() => null)]);
      if (result === null) killGroup();
      process.removeListener("exit", killGroup);
      rmSync(stateDir, { recursive: true, force: true });
      return result;
    },
  };
  const health = async (base) => {
    if (child.exitCode !== null) throw new Error(`stack exited early (${child.exitCode})`);
    const res = await fetch(`${base}/healthz`);
    return res.ok;
  };
  try {
    await waitFor("emulator /healthz", () => health(stack.emulator), { timeoutMs: 60_000, intervalMs: 250 });
    await waitFor("coordinator /healthz", () => health(stack.coordinator), { timeoutMs: 120_000, intervalMs: 250 });
  } catch (error) {
    await stack.stop(5_000);
    error.message += `\n--- stack output ---\n${stack.output()}`;
    throw error;
  }
  return stack;
}

// ── HTTP ─────────────────────────────────────────────────────────────────────────────────────────

/**
 * Whether to send a call again after the local front door said the runtime did not answer it (503
 * SERVICE_UNAVAILABLE "…did not answer (ECONN…)": wrangler dev lost it, or was being started again by
 * `npm start` after it exited; scripts/start.mjs), or that wrangler failed it ("…failed this request
 * (HTTP 5xx from wrangler)": a non-JSON 5xx, which our Worker never gives; wrangler's proxy answers so a
 * request it lost to a closing keep-alive connection, docs/architecture.md). As a client would: a call that
 * never reached the runtime (ECONNREFUSED) always, one that may have only if repeating it is harmless: GET,
 * HEAD, PUT, DELETE, a POST with an Idempotency-Key, or a call the test marks `idempotent`. Never a 503
 * our Worker gave: that is an answer.
 */
function runtimeDidNotAnswer(method, headers, idempotent, status, parsed) {
  if (status !== 503 || parsed?.error !== "SERVICE_UNAVAILABLE" || !/runtime (did not answer|failed this request)/.test(parsed?.message ?? "")) return false;
  if (/ECONNREFUSED/.test(parsed.message)) return true;
  return idempotent || ["GET", "HEAD", "PUT", "DELETE"].includes(method) || Object.keys(headers).some((h) => h.toLowerCase() === "idempotency-key");
}
/** How many calls were sent again this way (printed by the test files that care). */
export const unansweredRetries = { count: 0 };

/** One HTTP call; returns {status, headers, body} with the body parsed as JSON when it is JSON. */
export async function http(method, url, { body, headers = {}, idempotent = false } = {}) {
  const started = Date.now();
  for (let sent = 1; ; sent++) {
    const answer = await httpOnce(method, url, { body, headers });
    const again = runtimeDidNotAnswer(method, headers, idempotent, answer.status, answer.body) && Date.now() < started + 60_000;
    if (!again) {
      // Said once per call, so a run shows that (and where) the local runtime went away.
      if (sent > 1) console.log(`${method} ${new URL(url).pathname}: sent ${sent} times (the local runtime did not answer for ${((Date.now() - started) / 1000).toFixed(1)} s)`);
      return answer;
    }
    unansweredRetries.count += 1;
    await sleep(1_000);
  }
}

async function httpOnce(method, url, { body, headers = {} } = {}) {
  const init = { method, headers: { ...headers }, signal: AbortSignal.timeout(15_000) };
  if (body !== undefined) {
    init.body = typeof body === "string" ? body : JSON.stringify(body);
    init.headers["content-type"] = "application/json";
  }
  const res = await fetch(url, init);
  const text = await res.text();
  let parsed = text;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    // not JSON: keep the text, assertions will show it
  }
  // Every exchange with the coordinator must match the /openapi.json it serves (spec-check.mjs).
  await checkExchange({ method, url, headers: init.headers, body: init.body, status: res.status, responseHeaders: res.headers, responseBody: parsed });
  return { status: res.status, headers: res.headers, body: parsed };
}

export const admin = { authorization: `Bearer ${ADMIN_TOKEN}` };
export const bearer = (token) => ({ authorization: `Bearer ${token}` });

/**
 * The platform's step (user grants are required by default): the admin mints a grant letting the app
 * use this user's stream; the app sends it as `X-User-Grant` when it starts or joins.
 */
export async function userGrant(coordinator, userId, packageName, ttlSeconds) {
  const res = await http("POST", `${coordinator}/api/admin/user-grants`, { body: { userId, packageName, ttlSeconds }, headers: admin });
  if (res.status !== 201) throw new Error(`user grant: HTTP ${res.status} ${JSON.stringify(res.body)}`);
  return res.body.token;
}

let counter = 0;
/** A name unique to this run, so no test sees another's apps, users or streams. */
export function unique(prefix) {
  counter += 1;
  return `${prefix}${Date.now().toString(36)}${counter}${Math.random().toString(36).slice(2, 6)}`;
}

// ── WebSocket ────────────────────────────────────────────────────────────────────────────────────

/**
 * Opens a WebSocket and records every message (parsed JSON, with `receivedAt`). Rejects with the
 * HTTP status and body when the upgrade is refused.
 */
export function openSocket(url, headers = {}, timeoutMs = 10_000) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers, handshakeTimeout: timeoutMs });
    // Every frame either way must match the /asyncapi.json the stack serves (spec-check.mjs); a violation
    // fails next() and close().
    const spec = socketCheck(url, headers);
    const messages = [];
    let closeInfo = null;
    const closed = new Promise((r) => ws.on("close", (code, reason) => r((closeInfo = { code, reason: String(reason), at: Date.now() }))));
    const waiters = new Set();
    ws.on("message", (data) => {
      let message;
      try {
        message = JSON.parse(String(data));
      } catch {
        message = { type: "<non-json>", raw: String(data) };
      }
      spec.received(message);
      message.receivedAt = Date.now();
      messages.push(message);
      for (const w of waiters) w();
    });
    ws.on("error", (error) => reject(error));
    ws.on("unexpected-response", (_req, res) => {
      let text = "";
      res.on("data", (c) => (text += c));
      res.on("end", () => checkRefusal(url, headers, res, text).then(() => reject(new Error(`WebSocket upgrade refused: HTTP ${res.statusCode} ${text}`)), reject));
    });
    ws.on("open", () =>
      resolve({
        ws,
        messages,
        closed,
        get closeInfo() {
          return closeInfo;
        },
        send: (value) => {
          spec.sent(value);
          ws.send(typeof value === "string" ? value : JSON.stringify(value));
        },
        /** The first message at index >= `from` matching `predicate`, waiting up to `timeoutMs`. */
        next(what, predicate, { timeoutMs: limit = 10_000, from = 0 } = {}) {
          const find = () => (spec.assertClean(), messages.slice(from).find(predicate));
          const found = find();
          if (found) return Promise.resolve(found);
          return new Promise((res, rej) => {
            const check = () => {
              let m;
              try {
                m = find();
              } catch (violation) {
                cleanup();
                return rej(violation);
              }
              if (!m) return;
              cleanup();
              res(m);
            };
            const timer = setTimeout(() => {
              cleanup();
              const seen = messages.slice(from).map(({ receivedAt: _r, ...m }) => m);
              rej(new Error(`timed out after ${limit} ms waiting for ${what}; received: ${JSON.stringify(seen).slice(0, 3_000)}`));
            }, limit);
            const cleanup = () => {
              clearTimeout(timer);
              waiters.delete(check);
            };
            waiters.add(check);
          });
        },
        /** The most recent message of a type, or undefined. */
        last(type) {
          return messages.filter((m) => m.type === type).at(-1);
        },
        /**
         * Closes and waits briefly for the handshake. After a server-initiated close workerd ends the TCP
         * connection only ~10 s later, so a socket still open after 1 s is terminated.
         */
        async close() {
          if (ws.readyState === WebSocket.CLOSED) return spec.assertClean();
          if (ws.readyState === WebSocket.OPEN) ws.close(1000, "bye");
          const done = await Promise.race([closed.then(() => true), sleep(1_000).then(() => false)]);
          if (!done) ws.terminate();
          await closed;
          spec.assertClean();
        },
      }),
    );
  });
}

// ── ffmpeg ───────────────────────────────────────────────────────────────────────────────────────

export const ffmpegAvailable = () => spawnSync("ffmpeg", ["-version"], { stdio: "ignore" }).status === 0;

/** Publishes an RTMP test pattern (the README's command). `stop()` ends it and waits for the exit. */
export function publishTestPattern(rtmpUrl, seconds = 20) {
  const args = ["-nostdin", "-loglevel", "error", "-re", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=15", "-f", "lavfi", "-i", "sine=frequency=440"];
  args.push("-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", "30", "-c:a", "aac", "-t", String(seconds), "-f", "flv", rtmpUrl);
  const child = spawn("ffmpeg", args, { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (c) => (stderr += c));
  const startedAt = Date.now();
  const exited = new Promise((resolve) => child.on("exit", (code, signal) => resolve({ code, signal, at: Date.now() })));
  return {
    child,
    startedAt,
    exited,
    stderr: () => stderr,
    running: () => child.exitCode === null && child.signalCode === null,
    /** SIGTERM (ffmpeg closes its RTMP session), SIGKILL after 5 s; resolves with the exit time. */
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      const result = await Promise.race([exited, bound(5_000).then(() => null)]);
      if (result) return result;
      child.kill("SIGKILL");
      return exited;
    },
  };
}
