import { defineConfig } from "vitest/config";
import { writeSdkStreamSchema } from "./scripts/sdk-stream-schema.ts";

/**
 * The emulator's own tests in Node, with the emulator in the tests' isolate (test/emulator/node-setup.ts)
 * instead of workerd's auxiliary worker. Used by mutation testing (scripts/mutate.mjs): Stryker switches
 * mutants only in the isolate that runs the tests. `npm test` runs the same files under workerd.
 */
writeSdkStreamSchema();

export default defineConfig({
  test: {
    include: ["test/emulator/**/*.test.ts"],
    setupFiles: ["test/emulator/node-setup.ts"],
    testTimeout: 20_000,
  },
});
