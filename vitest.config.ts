import { cloudflareTest } from "@cloudflare/vitest-pool-workers";
import { buildSync } from "esbuild";
import { defineConfig } from "vitest/config";
import { writeSdkStreamSchema } from "./scripts/sdk-stream-schema.ts";
import { buildAssets } from "./scripts/build-assets.mjs";

// The Stream emulator runs inside workerd as an auxiliary worker. Every outbound fetch of the
// coordinator (the Cloudflare SDK) and of the tests themselves lands on it, whatever the hostname.
buildSync({
  entryPoints: ["emulator/worker.ts"],
  bundle: true,
  format: "esm",
  platform: "neutral",
  outfile: ".build/emulator-worker.js",
  logLevel: "warning",
});

// JSON Schema of the cloudflare SDK's live-input response types, which test/emulator/sdk-types.ts checks every
// emulator answer against (emulator/README.md#schema-conformance). Regenerated only when the SDK or the
// generator changes (under a second; a cached run takes a few ms).
writeSdkStreamSchema();

// wrangler.jsonc's `assets` directory (the API reference at /docs/, the console at /console/) must exist before workerd reads it.
buildAssets();

export const TEST_BINDINGS = {
  CLOUDFLARE_API_BASE_URL: "http://stream-emulator.test/client/v4",
  CLOUDFLARE_API_TOKEN: "local-dev-token",
  CLOUDFLARE_ACCOUNT_ID: "local-account",
  CLOUDFLARE_TIMEOUT_MS: "1500",
  STREAM_CUSTOMER_CODE: "testcode",
  ADMIN_TOKEN: "test-admin-token",
  DEVICE_TOKEN_SECRET: "test-device-token-secret-0123456789",
  WEBHOOK_SECRET: "test-webhook-secret",
  // The emulator's Realtime SFU (signalling only inside workerd: emulator/realtime/media.ts).
  REALTIME_API_BASE_URL: "http://stream-emulator.test/v1",
  REALTIME_APP_ID: "local-realtime-app",
  REALTIME_APP_SECRET: "local-realtime-secret",
  TURN_KEY_ID: "local-turn-key",
  TURN_KEY_API_TOKEN: "local-turn-token",
  STREAM_VIDEO_WEBHOOK_SECRET: "test-video-webhook-secret",
};

export default defineConfig({
  plugins: [
    cloudflareTest({
      wrangler: { configPath: "./wrangler.jsonc" },
      miniflare: {
        bindings: TEST_BINDINGS,
        outboundService: "stream-emulator",
        workers: [
          {
            name: "stream-emulator",
            modules: true,
            scriptPath: ".build/emulator-worker.js",
            compatibilityDate: "2026-08-01",
          },
        ],
      },
    }),
  ],
  test: {
    include: ["test/**/*.test.ts"],
    deps: { optimizer: { ssr: { enabled: true, include: ["cloudflare/tree-shakable", "cloudflare/error", "cloudflare/resources/stream/stream", "zod", "jose", "itty-router", "nanoid"] } } },
    // test/e2e drives the `npm start` stack from Node (node --test), not from inside workerd.
    exclude: ["test/e2e/**", "node_modules/**"],
    // Each test file runs in a Miniflare instance of its own (the pool starts one per file), with its own
    // emulator and storage, so files can run side by side without seeing each other's state.
    fileParallelism: true,
    // Three at a time on this 2-core machine: a file's time is mostly waiting (its runtime's start-up, the
    // emulator's injected delays), so a third file fills the gaps. Measured back to back (load 4–6):
    // 2 workers 274 s, 3 workers 236 s, the same CPU time (259 s, 262 s), all 504 tests passing in both.
    maxWorkers: 3,
    // Under mutation testing (scripts/mutate.mjs sets MUTATION_TESTING) code is instrumented and the
    // machine is busier: the heaviest race tests need more than 20 s there.
    testTimeout: process.env.MUTATION_TESTING ? 90_000 : 20_000,
    hookTimeout: process.env.MUTATION_TESTING ? 90_000 : 20_000,
  },
});
