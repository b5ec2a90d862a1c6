// The local stack's front door (scripts/front-door.mjs) against stand-in upstreams: it bounds the
// requests in flight, answers JSON 503 + Retry-After when it sheds or the runtime fails, keeps dropped
// uploads away from the runtime, never cancels a forwarded request, and passes WebSockets through.
import assert from "node:assert/strict";
import http from "node:http";
import net from "node:net";
import { after, describe, test } from "node:test";
import WebSocket, { WebSocketServer } from "ws";
import { startFrontDoor } from "../../scripts/front-door.mjs";

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const closers = [];
after(async () => {
  for (const close of closers.reverse()) await close();
});

/** A stand-in for wrangler dev: `handler(req, res, state)`; `state` counts requests and concurrency. */
async function upstream(handler) {
  const state = { requests: 0, active: 0, maxActive: 0, aborted: 0, completed: 0 };
  const server = http.createServer((req, res) => {
    state.requests += 1;
    state.active += 1;
    state.maxActive = Math.max(state.maxActive, state.active);
    req.on("aborted", () => (state.aborted += 1));
    res.on("close", () => (state.active -= 1));
    res.on("finish", () => (state.completed += 1));
    handler(req, res, state);
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  closers.push(() => new Promise((r) => server.close(r)));
  return { server, state, port: server.address().port };
}

async function door(upstreamPort, options = {}) {
  const fd = await startFrontDoor({ port: 0, upstreamPort, ...options });
  closers.push(() => {
    fd.server.closeAllConnections();
    return fd.close();
  });
  return { ...fd, url: `http://127.0.0.1:${fd.port}` };
}

const agent = new http.Agent({ keepAlive: false, maxSockets: 1_000 });
function request(url, { method = "GET", headers = {}, body } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers, agent }, (res) => {
      let text = "";
      res.on("data", (c) => (text += c));
      res.on("end", () => {
        let json;
        try {
          json = JSON.parse(text);
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode, headers: res.headers, text, json });
      });
    });
    req.on("error", reject);
    req.end(body);
  });
}

const okJson = (res, body = { ok: true }, status = 200) => {
  res.writeHead(status, { "content-type": "application/json; charset=utf-8" });
  res.end(JSON.stringify(body));
};

describe("front door", () => {
  test("admits at most maxInFlight requests at once and answers all of them", async () => {
    const up = await upstream((req, res) => setTimeout(() => okJson(res), 20));
    const fd = await door(up.port, { maxInFlight: 8 });
    const answers = await Promise.all(Array.from({ length: 200 }, () => request(`${fd.url}/healthz`)));
    assert.deepEqual([...new Set(answers.map((a) => a.status))], [200]);
    assert.equal(up.state.requests, 200);
    assert.ok(up.state.maxActive <= 8, `max in flight upstream: ${up.state.maxActive}`);
  });

  test("sheds what waited past the queue timeout with JSON 503 + Retry-After", async () => {
    const up = await upstream((req, res) => setTimeout(() => okJson(res), 600));
    const fd = await door(up.port, { maxInFlight: 1, queueTimeoutMs: 150 });
    const answers = await Promise.all(Array.from({ length: 5 }, () => request(`${fd.url}/x`)));
    const shed = answers.filter((a) => a.status === 503);
    assert.equal(answers.filter((a) => a.status === 200).length, 1);
    assert.equal(shed.length, 4);
    for (const a of shed) {
      assert.equal(a.headers["retry-after"], "1");
      assert.equal(a.json.error, "SERVICE_UNAVAILABLE");
      assert.equal(typeof a.json.message, "string");
    }
    assert.equal(up.state.requests, 1);
  });

  test("turns the runtime's raw 5xx and dropped connections into JSON 503; passes JSON answers through", async () => {
    const up = await upstream((req, res) => {
      if (req.url === "/raw500") {
        res.writeHead(500, { "content-type": "text/plain" });
        res.end("Error: Network connection lost.\n    at async Object.fetch (entry.worker.js:4733:22)");
      } else if (req.url === "/reset") req.socket.destroy();
      else if (req.url === "/ours500") okJson(res, { error: "INTERNAL_ERROR", message: "Internal server error" }, 500);
      else okJson(res, { error: "STREAM_NOT_FOUND", message: "Managed stream not found" }, 404);
    });
    const fd = await door(up.port);
    for (const path of ["/raw500", "/reset"]) {
      const a = await request(`${fd.url}${path}`);
      assert.equal(a.status, 503, path);
      assert.equal(a.headers["retry-after"], "1");
      assert.equal(a.json.error, "SERVICE_UNAVAILABLE");
      assert.doesNotMatch(a.text, /entry\.worker|at async/);
    }
    const ours = await request(`${fd.url}/ours500`);
    assert.deepEqual([ours.status, ours.json.error], [500, "INTERNAL_ERROR"]);
    const notFound = await request(`${fd.url}/x`);
    assert.deepEqual([notFound.status, notFound.json.error], [404, "STREAM_NOT_FOUND"]);
    // With nothing listening upstream at all:
    const closed = await door(await freeClosedPort());
    const refused = await request(`${closed.url}/healthz`);
    assert.deepEqual([refused.status, refused.json.error], [503, "SERVICE_UNAVAILABLE"]);
  });

  test("forwards whole bodies only: a dropped upload never reaches the runtime; slow or huge bodies are refused", async () => {
    const up = await upstream((req, res) => {
      let size = 0;
      req.on("data", (c) => (size += c.length));
      req.on("end", () => okJson(res, { size, length: req.headers["content-length"] ?? null }));
    });
    const fd = await door(up.port, { bodyTimeoutMs: 300, maxBodyBytes: 1_000 });
    // 20 uploads that stop halfway and disconnect.
    await Promise.all(
      Array.from({ length: 20 }, async () => {
        const socket = net.connect(fd.port, "127.0.0.1");
        await new Promise((r) => socket.on("connect", r));
        socket.write("POST /api/streams HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 500\r\n\r\n{\"userId\":");
        await sleep(50);
        socket.destroy();
      }),
    );
    await sleep(100);
    assert.equal(up.state.requests, 0);
    const slow = await new Promise((resolve) => {
      const socket = net.connect(fd.port, "127.0.0.1", () => socket.write("POST /x HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\n{"));
      let text = "";
      socket.on("data", (c) => (text += c));
      socket.on("close", () => resolve(text));
    });
    assert.match(slow, /^HTTP\/1\.1 408/);
    assert.match(slow, /"error":"REQUEST_TIMEOUT"/);
    const huge = await request(`${fd.url}/x`, { method: "POST", body: "x".repeat(2_000), headers: { "content-type": "application/json" } });
    assert.deepEqual([huge.status, huge.json.error], [413, "PAYLOAD_TOO_LARGE"]);
    const whole = await request(`${fd.url}/x`, { method: "POST", body: "y".repeat(600) });
    assert.deepEqual(whole.json, { size: 600, length: "600" });
    assert.equal(up.state.requests, 1);
  });

  test("a client that leaves does not cancel the request it started, and frees its place in line", async () => {
    const up = await upstream((req, res) => setTimeout(() => okJson(res), 300));
    const fd = await door(up.port, { maxInFlight: 1, queueTimeoutMs: 5_000 });
    const leaving = http.request(`${fd.url}/slow`, { agent });
    leaving.on("error", () => {});
    leaving.end();
    await sleep(100);
    leaving.destroy();
    // A second client queued behind it also leaves; a third one is still answered.
    const queued = http.request(`${fd.url}/queued`, { agent });
    queued.on("error", () => {});
    queued.end();
    await sleep(50);
    queued.destroy();
    const third = await request(`${fd.url}/third`);
    assert.equal(third.status, 200);
    assert.equal(up.state.aborted, 0);
    assert.equal(up.state.completed, 2, "the first request ran to completion; the queued one never went upstream");
  });

  test("passes WebSocket upgrades through, and relays a refused upgrade", async () => {
    const up = await upstream((req, res) => okJson(res));
    const wss = new WebSocketServer({ noServer: true });
    up.server.on("upgrade", (req, socket, head) => {
      if (req.headers["x-api-key"] !== "good") {
        const body = JSON.stringify({ error: "UNAUTHORIZED", message: "Invalid API key or package name" });
        socket.end(`HTTP/1.1 401 Unauthorized\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n${body}`);
        return;
      }
      wss.handleUpgrade(req, socket, head, (ws) => ws.on("message", (m) => ws.send(`echo:${m}`)));
    });
    closers.push(() => new Promise((r) => wss.close(r)));
    const fd = await door(up.port, { maxInFlight: 2 });
    const sockets = await Promise.all(
      Array.from({ length: 5 }, () => new Promise((resolve, reject) => {
        const ws = new WebSocket(`${fd.url.replace("http", "ws")}/api/streams/s/ws`, { headers: { "x-api-key": "good" } });
        ws.on("open", () => resolve(ws));
        ws.on("error", reject);
      })),
    );
    // Five open sockets with maxInFlight 2: an open socket holds no place in line.
    const echoes = await Promise.all(sockets.map((ws, i) => new Promise((r) => {
      ws.once("message", (m) => r(String(m)));
      ws.send(`hi${i}`);
    })));
    assert.deepEqual(echoes, ["echo:hi0", "echo:hi1", "echo:hi2", "echo:hi3", "echo:hi4"]);
    for (const ws of sockets) ws.close();
    const refused = await new Promise((resolve, reject) => {
      const ws = new WebSocket(`${fd.url.replace("http", "ws")}/api/streams/s/ws`, { headers: { "x-api-key": "bad" } });
      ws.on("unexpected-response", (_req, res) => {
        let text = "";
        res.on("data", (c) => (text += c));
        res.on("end", () => resolve({ status: res.statusCode, json: JSON.parse(text) }));
      });
      ws.on("open", () => reject(new Error("upgrade should be refused")));
      ws.on("error", () => {});
    });
    assert.deepEqual(refused, { status: 401, json: { error: "UNAUTHORIZED", message: "Invalid API key or package name" } });
  });

  test("strips the compression offer from upgrades, so no local layer compresses (production refuses it too)", async () => {
    const up = await upstream((req, res) => okJson(res));
    // An upstream that would accept permessage-deflate, as miniflare's entry worker does.
    const wss = new WebSocketServer({ noServer: true, perMessageDeflate: true });
    let offered;
    up.server.on("upgrade", (req, socket, head) => {
      offered = req.headers["sec-websocket-extensions"] ?? null;
      wss.handleUpgrade(req, socket, head, () => {});
    });
    closers.push(() => new Promise((r) => wss.close(r)));
    const fd = await door(up.port);
    const ws = new WebSocket(`${fd.url.replace("http", "ws")}/api/streams/s/ws`); // offers permessage-deflate
    await new Promise((resolve, reject) => (ws.on("open", resolve), ws.on("error", reject)));
    assert.equal(offered, null);
    assert.equal(ws.extensions, "");
    ws.close();
  });

  test("answers a malformed request with JSON 400", async () => {
    const up = await upstream((req, res) => okJson(res));
    const fd = await door(up.port);
    const text = await new Promise((resolve) => {
      const socket = net.connect(fd.port, "127.0.0.1", () => socket.write("NOT HTTP AT ALL\r\n\r\n"));
      let out = "";
      socket.on("data", (c) => (out += c));
      socket.on("close", () => resolve(out));
    });
    assert.match(text, /^HTTP\/1\.1 400/);
    assert.match(text, /"error":"BAD_REQUEST"/);
  });
});

/** A port nothing listens on. */
async function freeClosedPort() {
  const server = net.createServer();
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address();
  await new Promise((r) => server.close(r));
  return port;
}
