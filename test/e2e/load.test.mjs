// Load on the `npm start` stack: 2,000 concurrent REST calls, then 350 uploads dropped halfway. The stack
// must stay up and every answer must be a JSON status (docs/architecture.md, "Load on the local stack").
// Also HEAD /healthz on the wire. Uses the load script's own code (scripts/load/burst.mjs).
import assert from "node:assert/strict";
import http from "node:http";
import { after, before, describe, test } from "node:test";
import { healthAfter, restBurst, setupFixture, slowBodies } from "../../scripts/load/burst.mjs";
import { startStack } from "./stack.mjs";

// Every answer of the burst is one of these; non-2xx carry {error, message}; 503s carry Retry-After.
const ALLOWED = new Set([200, 201, 401, 429, 503]);

let stack;
let failed = false;
const guarded = (fn) => async () => {
  try {
    await fn();
  } catch (error) {
    failed = true;
    throw error;
  }
};

describe("the local stack under load", { timeout: 150_000 }, () => {
  before(async () => {
    // A shorter wait in the front door's queue than the default keeps this test near a minute.
    stack = await startStack({ LOCAL_QUEUE_TIMEOUT_MS: "10000" });
  });
  after(async () => {
    if (failed && stack) console.error(`--- stack output ---\n${stack.output().split("\n").slice(-60).join("\n")}`);
    await stack?.stop();
  });

  test(
    "HEAD /healthz answers like GET: 200, same headers, no body",
    guarded(async () => {
      const head = await new Promise((resolve, reject) => {
        const req = http.request(`${stack.coordinator}/healthz`, { method: "HEAD" }, (res) => {
          let bytes = 0;
          res.on("data", (c) => (bytes += c.length));
          res.on("end", () => resolve({ status: res.statusCode, headers: res.headers, bytes }));
        });
        req.on("error", reject);
        req.end();
      });
      const get = await fetch(`${stack.coordinator}/healthz`);
      const body = await get.text();
      assert.equal(head.status, 200);
      assert.equal(head.bytes, 0);
      assert.equal(head.headers["content-type"], get.headers.get("content-type"));
      assert.equal(head.headers["content-length"], String(Buffer.byteLength(body)));
    }),
  );

  test(
    "2,000 concurrent REST calls: the stack stays up and every answer is a JSON status",
    guarded(async () => {
      const fixture = await setupFixture(stack.coordinator);
      const burst = await restBurst(stack.coordinator, fixture, 2_000);
      const context = JSON.stringify({ histogram: burst.histogram, latencyMs: burst.latencyMs, notJson: burst.notJson.slice(0, 3) });
      assert.equal(burst.networkErrors, 0, `network errors: ${context}`);
      assert.deepEqual(burst.notJson, [], `answers that are not a JSON status: ${context}`);
      assert.deepEqual(burst.noRetryAfter, [], `503s without Retry-After: ${context}`);
      for (const key of Object.keys(burst.histogram)) assert.ok(ALLOWED.has(Number(key.split(" ")[0])), `unexpected status ${key}: ${context}`);
      assert.ok((burst.histogram["200"] ?? 0) > 0, `some calls succeed: ${context}`);
      assert.ok(await healthAfter(stack.coordinator), "healthy after the burst");
      assert.equal(stack.child.exitCode, null, "npm start still running");

      const slow = await slowBodies(stack.coordinator, fixture, 350);
      assert.equal(slow.connected, 350);
      assert.ok(await healthAfter(stack.coordinator), "healthy after 350 dropped uploads");
      assert.equal(stack.child.exitCode, null, "npm start still running");
      // And it still does real work.
      const res = await fetch(`${stack.coordinator}/api/streams/${fixture.streamId}`, { headers: fixture.appHeaders });
      assert.equal(res.status, 200);
      assert.equal((await res.json()).streamId, fixture.streamId);
    }),
  );
});
