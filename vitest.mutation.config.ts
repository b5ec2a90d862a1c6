import { defineConfig, mergeConfig } from "vitest/config";
import { persistentWorkerd } from "./scripts/persistent-workerd.ts";
import base from "./vitest.config.ts";

/**
 * vitest.config.ts for mutation testing (scripts/mutate.mjs): the same workers pool and tests, with one
 * workerd runtime kept from one Stryker run (one mutant) to the next (scripts/persistent-workerd.ts). Each
 * test file still starts from fresh modules (vitest's `isolate`) and leaves no object, storage or timer
 * behind (test/mutation/fresh-runtime.ts).
 */
export default mergeConfig(
  base,
  defineConfig({ plugins: [persistentWorkerd()], test: { setupFiles: ["test/mutation/fresh-runtime.ts"] } }),
);
