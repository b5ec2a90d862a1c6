#!/usr/bin/env node
// `npm run deploy`: `wrangler deploy` through wrangler's CLI entry, which runs on Node 20 (wrangler's own
// launcher refuses Node < 22; `npm start` calls the CLI the same way). Builds the static assets first when
// the project has them (scripts/build-assets.mjs), then passes every argument on to wrangler:
//
//   npm run deploy                                   # deploy with CLOUDFLARE_API_TOKEN / CLOUDFLARE_ACCOUNT_ID
//   npm run deploy -- --dry-run --outdir .build/dry  # bundle only, nothing uploaded (CI: test/e2e/deploy.test.mjs)
//
// Secrets are set separately, once (docs/deploy.md): npx wrangler secret put <NAME>.
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const require = createRequire(import.meta.url);

/** wrangler's CLI entry (not its launcher, which refuses Node 20). */
export function wranglerCli() {
  return path.join(path.dirname(require.resolve("wrangler/package.json")), "wrangler-dist", "cli.js");
}

async function main(args) {
  const assets = path.join(root, "scripts", "build-assets.mjs");
  if (existsSync(assets)) (await import(pathToFileURL(assets).href)).buildAssets(root);
  const child = spawn(process.execPath, ["--no-warnings", wranglerCli(), "deploy", ...args], {
    cwd: root,
    stdio: "inherit",
    env: { WRANGLER_SEND_METRICS: "false", ...process.env },
  });
  const forward = (signal) => child.kill(signal);
  process.on("SIGINT", forward);
  process.on("SIGTERM", forward);
  child.on("exit", (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) await main(process.argv.slice(2));
