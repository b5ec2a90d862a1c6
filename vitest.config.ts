import { cloudflareTest } from "@cloudflare/vitest-pool-workers";
import { buildSync } from "esbuild";
import { defineConfig } from "vitest/config";

buildSync({ entryPoints: ["emulator/worker.ts"], bundle: true, format: "esm", platform: "neutral", outfile: ".build/emulator-worker.js" });

export default defineConfig({
  plugins: [
    cloudflareTest({
      wrangler: { configPath: "./wrangler.jsonc" },
      miniflare: {
        outboundService: "stream-emulator",
        workers: [{ name: "stream-emulator", modules: true, scriptPath: ".build/emulator-worker.js", compatibilityDate: "2026-08-01" }],
      },
    }),
  ],
});
