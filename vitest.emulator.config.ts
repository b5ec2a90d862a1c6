import { defineConfig } from "vitest/config";
import { writeSdkStreamSchema } from "./scripts/sdk-stream-schema.ts";
import { UNIT_TESTS } from "./vitest.unit.config.ts";

/**
 * The emulator's own tests in Node, with the emulator in the tests' isolate (test/emulator/node-setup.ts)
 * instead of workerd's auxiliary worker. Used by mutation testing (scripts/mutate.mjs): Stryker switches
 * mutants only in the isolate that runs the tests. `npm test` runs the same files under workerd.
 *
 * Also the tests of our Cloudflare clients (src/cloudflare/*-api.ts) against the emulator (EMULATED_TESTS: no
 * `cloudflare:test`, fetch alone), and the pure unit tests, so a module tested by both kinds runs here in Node.
 */
export const EMULATED_TESTS = [
  "test/cloudflare/stream-api.test.ts",
  "test/cloudflare/video-api.test.ts",
  "test/cloudflare/realtime-api.test.ts",
];

writeSdkStreamSchema();

export default defineConfig({
  test: {
    include: ["test/emulator/**/*.test.ts", ...EMULATED_TESTS, ...UNIT_TESTS],
    setupFiles: ["test/emulator/node-setup.ts"],
    testTimeout: 20_000,
  },
});
