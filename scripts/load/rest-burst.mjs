#!/usr/bin/env node
// Load on the local stack: N concurrent REST calls, then S slow-body sockets destroyed mid-request,
// repeated R times; prints the status histogram of each burst and whether the stack stayed up.
//
//   node scripts/load/rest-burst.mjs                      # boots `npm start` on free ports (throwaway state)
//   node scripts/load/rest-burst.mjs --url http://127.0.0.1:8787 [--admin-token local-admin-token]
//   options: --calls 2000 --slow 350 --runs 2 --json --stack-log FILE (the booted stack's whole output)
//
// Exit status 1 if the stack died or any answer was not a JSON status (see docs/architecture.md,
// "Load on the local stack").
import { writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { healthAfter, restBurst, setupFixture, slowBodies } from "./burst.mjs";

const { values: args } = parseArgs({
  options: {
    url: { type: "string" },
    "admin-token": { type: "string", default: process.env.ADMIN_TOKEN ?? "local-admin-token" },
    calls: { type: "string", default: "2000" },
    slow: { type: "string", default: "350" },
    runs: { type: "string", default: "2" },
    json: { type: "boolean", default: false },
    "stack-log": { type: "string" },
  },
});
const calls = Number(args.calls);
const slow = Number(args.slow);
const runs = Number(args.runs);

let stack = null;
let base = args.url;
if (!base) {
  // The e2e helper boots exactly what `npm start` runs, on free ports with a throwaway state directory.
  const { startStack } = await import("../../test/e2e/stack.mjs");
  process.stderr.write("booting npm start on free ports…\n");
  stack = await startStack();
  base = stack.coordinator;
}
const stackExit = () => (stack && (stack.child.exitCode !== null || stack.child.signalCode !== null) ? { code: stack.child.exitCode, signal: stack.child.signalCode } : null);

const report = { base, calls, slow, runs: [] };
let healthy = true;
try {
  const fixture = await setupFixture(base, args["admin-token"]);
  for (let run = 1; run <= runs && healthy; run += 1) {
    const burst = await restBurst(base, fixture, calls);
    const afterBurst = await healthAfter(base);
    const slowResult = slow > 0 ? await slowBodies(base, fixture, slow) : null;
    const afterSlow = slow > 0 ? await healthAfter(base) : afterBurst;
    const died = stackExit();
    healthy = Boolean(afterBurst && afterSlow) && !died;
    const entry = { run, burst, upAfterBurst: Boolean(afterBurst), slowBodies: slowResult, upAfterSlowBodies: Boolean(afterSlow), stackExit: died };
    report.runs.push(entry);
    if (!args.json) {
      console.log(`run ${run}: ${calls} calls in ${burst.elapsedMs} ms; p50 ${burst.latencyMs.p50} ms, p99 ${burst.latencyMs.p99} ms`);
      for (const [k, v] of Object.entries(burst.histogram).sort((a, b) => b[1] - a[1])) console.log(`  ${String(v).padStart(5)} × ${k}`);
      if (burst.notJson.length) console.log(`  NOT a JSON status: ${burst.notJson.length}, e.g. ${JSON.stringify(burst.notJson[0])}`);
      if (burst.noRetryAfter.length) console.log(`  503 without Retry-After: ${burst.noRetryAfter.length}`);
      console.log(`  up after burst: ${entry.upAfterBurst}`);
      if (slowResult) console.log(`  slow bodies: ${slowResult.connected}/${slowResult.sockets} sockets connected then destroyed; up after: ${entry.upAfterSlowBodies}`);
      if (died) console.log(`  STACK EXITED: ${JSON.stringify(died)}`);
    }
  }
} catch (error) {
  healthy = false;
  report.error = String(error);
  console.error(String(error));
} finally {
  if (stack) {
    const died = stackExit();
    if (died || !healthy) {
      // What wrangler said on its way out: the last lines of the stack's output.
      report.stackOutputTail = stack.output().split("\n").slice(-40).join("\n");
      if (!args.json) console.log(`--- stack output (tail) ---\n${report.stackOutputTail}`);
    }
    if (args["stack-log"]) writeFileSync(args["stack-log"], stack.output());
    await stack.stop();
  }
}
const clean = healthy && report.runs.every((r) => r.burst.notJson.length === 0 && r.burst.noRetryAfter.length === 0);
if (args.json) console.log(JSON.stringify(report, null, 2));
else console.log(clean ? "stack stayed up; every answer was a JSON status" : "FAILED: the stack died or answered something other than a JSON status");
process.exit(clean ? 0 : 1);
