// scripts/quiet-faults.mjs: npm test leaves out workerd's reports of faults the tests inject, and
// nothing else. (No stack needed.)
import assert from "node:assert/strict";
import { test } from "node:test";
import { InjectedFaultFilter } from "../../scripts/quiet-faults.mjs";

function filtered(lines) {
  const out = [];
  const filter = new InjectedFaultFilter((line) => out.push(line));
  for (const line of lines) filter.push(line);
  filter.end();
  return out;
}

const STACK = "stack: /x/workerd@33a76d0 /x/workerd@33a836c /x/workerd@58b85c8";

test("an injected dropped connection, its frames and its address stack are left out", () => {
  const out = filtered([
    "before",
    "uncaught exception; source = Uncaught (in promise); stack = DroppedConnectionError: Connection dropped by emulator fault",
    "    at StreamEmulator.handleApiCall (file:///x/emulator-worker.js:1013:15)",
    "uncaught exception; exception = workerd/jsg/value.h:1477: failed: jsg.Error: DroppedConnectionError: Connection dropped by emulator fault",
    STACK,
    "after",
  ]);
  assert.deepEqual(out, ["before", "after", "(2 reports of injected faults left out: scripts/quiet-faults.mjs)"]);
});

test("workerd's opaque internal error goes only when the next line shows it injected, and its second report with it", () => {
  const out = filtered([
    "uncaught exception; source = Uncaught (in promise); stack = Error: internal error; reference = abc123",
    "e = kj/async-io-unix.c++:1293: failed: DNS lookup failed.; params.host = hook.test; params.service = ",
    `${STACK}; sentryErrorContext = jsgInternalError`,
    "uncaught exception; exception = workerd/jsg/value.h:1477: failed: jsg.Error: internal error; reference = abc123",
    STACK,
    "uncaught exception; source = Uncaught (in promise); stack = Error: internal error; reference = zzz999",
    "a real failure follows",
  ]);
  assert.deepEqual(out, [
    "uncaught exception; source = Uncaught (in promise); stack = Error: internal error; reference = zzz999",
    "a real failure follows",
    "(2 reports of injected faults left out: scripts/quiet-faults.mjs)",
  ]);
});

test("an injected fault's report names the internal error workerd reports for it later (wdErrId): both reports of it go", () => {
  const out = filtered([
    "e = kj/async-io-unix.c++:1293: failed: DNS lookup failed.; params.host = hook.test; params.service = ",
    `${STACK}; sentryErrorContext = jsgInternalError; wdErrId = later1`,
    "e = kj/async-io-unix.c++:1293: failed: DNS lookup failed.; params.host = coordinator.test; params.service = ",
    `${STACK}; sentryErrorContext = jsgInternalError; wdErrId = later2`,
    "uncaught exception; source = Uncaught (in promise); stack = Error: internal error; reference = later1",
    "uncaught exception; source = Uncaught (in promise); stack = Error: internal error; reference = later2",
    "uncaught exception; exception = workerd/jsg/value.h:1477: failed: jsg.Error: internal error; reference = later1",
    STACK,
    "uncaught exception; exception = workerd/jsg/value.h:1477: failed: jsg.Error: internal error; reference = other",
    STACK,
  ]);
  assert.deepEqual(out, [
    "uncaught exception; exception = workerd/jsg/value.h:1477: failed: jsg.Error: internal error; reference = other",
    STACK,
    "(5 reports of injected faults left out: scripts/quiet-faults.mjs)",
  ]);
});

test("the internal error named on stderr (wdErrId) goes when it is reported on stdout (the two filters share what they learn)", () => {
  const out = [];
  const shared = new Set();
  const stderr = new InjectedFaultFilter((line) => out.push(line), shared);
  const stdout = new InjectedFaultFilter((line) => out.push(line), shared);
  stderr.push("e = kj/async-io-unix.c++:1293: failed: DNS lookup failed.; params.host = coordinator.test; params.service = ");
  stderr.push(`${STACK}; sentryErrorContext = jsgInternalError; wdErrId = named1`);
  stdout.push("uncaught exception; source = Uncaught (in promise); stack = Error: internal error; reference = named1");
  stdout.push("uncaught exception; exception = workerd/jsg/value.h:1477: failed: jsg.Error: internal error; reference = named1");
  stdout.push(STACK);
  stdout.push("after");
  assert.deepEqual(out, ["after"]);
});

test("a failing test's report, stack frames included, passes untouched", () => {
  const report = [" FAIL  test/stream/x.test.ts > y", "AssertionError: expected 1 to be 2", "    at test/stream/x.test.ts:10:5", STACK];
  assert.deepEqual(filtered(report), report);
});
