// `npm start` keeps the coordinator up when wrangler dev exits on its own: scripts/start.mjs starts it
// again on a new internal port (retargeting the front door), on the same persisted state, and a client
// that retries the front door's 503 "runtime did not answer" (as stack.mjs's http() and our typed client
// do) carries on. wrangler dev 4.124 on Node 20 sometimes exits under load after its proxy loses the
// runtime's connection; here it is told to exit (SIGTERM), as it does then: with its runtime.
import assert from "node:assert/strict";
import { execSync } from "node:child_process";
import { after, before, describe, test } from "node:test";
import { admin, http, startStack, unique, unansweredRetries, userGrant } from "./stack.mjs";

let stack;
before(async () => {
  stack = await startStack();
});
after(async () => {
  await stack?.stop();
});

/** The pids of the stack's wrangler dev processes (in the stack's own process group). */
function wranglerPids() {
  const lines = execSync("ps -eo pid,pgid,args").toString().split("\n");
  return lines
    .map((line) => line.trim().split(/\s+/))
    .filter(([, pgid, ...args]) => Number(pgid) === stack.child.pid && args.join(" ").includes("wrangler-dist/cli.js dev"))
    .map(([pid]) => Number(pid));
}

describe("the local runtime started again", () => {
  test("a wrangler dev that dies is started again on the same state, and the stream it held is still there", { timeout: 120_000 }, async () => {
    const packageName = unique("com.e2e.restart.").toLowerCase();
    const registered = await http("POST", `${stack.coordinator}/api/admin/apps`, { body: { packageName }, headers: admin });
    assert.equal(registered.status, 201, JSON.stringify(registered.body));
    const app = { "x-api-key": registered.body.apiKey, "x-package-name": packageName };
    const userId = unique("user-restart-");
    const grant = await userGrant(stack.coordinator, userId, packageName);
    const started = await http("POST", `${stack.coordinator}/api/streams`, { body: { userId }, headers: { ...app, "x-user-grant": grant } });
    assert.equal(started.status, 201, JSON.stringify(started.body));

    const pids = wranglerPids();
    assert.equal(pids.length, 1, "one wrangler dev in the stack");
    for (const pid of pids) process.kill(pid, "SIGTERM");
    // Wait until the replacement answers (the first calls may reach the old runtime or nothing).
    const retriesBefore = unansweredRetries.count;
    const deadline = Date.now() + 90_000;
    while (!stack.output().includes("starting it again")) {
      assert.ok(Date.now() < deadline, `wrangler dev was not started again:\n${stack.output().slice(-3_000)}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    const read = await http("GET", `${stack.coordinator}/api/streams/${started.body.streamId}`, { headers: app });
    assert.equal(read.status, 200, JSON.stringify(read.body));
    assert.equal(read.body.streamId, started.body.streamId);
    assert.notEqual(wranglerPids()[0], pids[0], "a new wrangler dev");
    assert.ok(unansweredRetries.count >= retriesBefore);
    assert.match(stack.output(), /\[coordinator\] exited \([^)]+\); starting it again \(1 of at most 3/);
  });
});
