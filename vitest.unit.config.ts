import { defineConfig } from "vitest/config";

/**
 * The unit tests of pure modules (no `cloudflare:test`, no Durable Object) in Node. Used by mutation testing
 * (scripts/mutate.mjs) for modules whose every test is here: a run costs milliseconds instead of workerd's
 * module import, and each run re-imports the module, so mutants of module-level constants are switched
 * too. `npm test` runs the same files under workerd.
 */
export const UNIT_TESTS = [
  "test/sync/poll-policy.test.ts",
  "test/budget/sliding-window.test.ts",
  "test/stream/status.test.ts",
  "test/stream/inbound.test.ts",
  "test/cloudflare/call-error.test.ts",
  "test/cloudflare/playback.test.ts",
  "test/outputs/rtmp-url.test.ts",
  "test/outputs/output-status.test.ts",
  "test/outputs/output-view.test.ts",
  "test/outputs/restream-destinations.test.ts",
  "test/stream/analytics-model.test.ts",
];

export default defineConfig({
  test: { include: UNIT_TESTS, testTimeout: 20_000 },
});
