import { reset } from "cloudflare:test";
import { afterAll } from "vitest";
import { resetClock } from "../../src/clock";

// Mutation testing only (vitest.mutation.config.ts): the workerd runtime outlives a test file
// (scripts/persistent-workerd.ts).

// 1. The pool wraps the module runner's transport (and createRequire) once for every connection it ever had,
//    at every file: kept across runs, a module request would go through one more round trip to the runner
//    object per earlier run (the 20th mutant took 10× the 1st). Keep the first file's single wrap.
type Runner = { transport: { invoke: unknown }; evaluator: { createRequire?: unknown } };
const runner = (globalThis as { __vitest_mocker__?: { moduleRunner?: Runner } }).__vitest_mocker__?.moduleRunner;
const WRAPPED_ONCE = Symbol.for("stream-coordinator.mutation.wrapped-once");
const store = globalThis as unknown as Record<symbol, { invoke: unknown; createRequire: unknown } | undefined>;
if (runner?.transport && runner.evaluator) {
  const once = store[WRAPPED_ONCE];
  if (once) {
    runner.transport.invoke = once.invoke;
    runner.evaluator.createRequire = once.createRequire;
  } else store[WRAPPED_ONCE] = { invoke: runner.transport.invoke, createRequire: runner.evaluator.createRequire };
}

// 2. Each file leaves the runtime as a fresh one would be: every Durable Object aborted, its storage and alarm
//    deleted (no timer of this file fires during the next), the tests' clock back on the platform's. The
//    file's meta says the reset completed; a runtime whose reset did not (a run cut short, a crash) is
//    disposed instead of being handed on.
// eslint-disable-next-line no-empty-pattern
afterAll(async ({}, suite) => {
  resetClock();
  await reset();
  (suite.meta as Record<string, unknown>)[RUNTIME_RESET] = true;
});

/** The meta key scripts/persistent-workerd.ts reads (that module is Node code, not importable here). */
const RUNTIME_RESET = "streamCoordinatorRuntimeReset";
