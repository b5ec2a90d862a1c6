// `wrangler deploy --dry-run` through `npm run deploy`'s script (scripts/deploy.mjs: wrangler's CLI entry,
// which runs on Node 20, after the static assets are built): the Worker bundles for a real deploy, with every
// Durable Object binding and the cron trigger, and the bundle's size is reported. Needs no stack, no account
// and no network. Run: `node --test test/e2e/`.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, test } from "node:test";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const outdir = mkdtempSync(path.join(tmpdir(), "stream-coordinator-dry-run-"));
after(() => rmSync(outdir, { recursive: true, force: true }));

/** Cloudflare's limits on a Worker's compressed size (Workers "Limits"): 3 MiB on Free, 10 MiB on Paid. */
const FREE_PLAN_GZIP_LIMIT = 3 * 1024 * 1024;

const kib = (bytes) => `${(bytes / 1024).toFixed(1)} KiB`;

test("wrangler deploy --dry-run bundles the Worker (and reports the bundle size)", { timeout: 120_000 }, async (t) => {
  // No credentials: a dry run must never need them, nor reach Cloudflare.
  const env = { ...process.env, CLOUDFLARE_API_TOKEN: "", CLOUDFLARE_ACCOUNT_ID: "", WRANGLER_SEND_METRICS: "false" };
  const child = spawn(process.execPath, ["scripts/deploy.mjs", "--dry-run", "--outdir", outdir], { cwd: root, env, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  child.stdout.on("data", (c) => (output += c));
  child.stderr.on("data", (c) => (output += c));
  const code = await new Promise((resolve) => child.on("exit", resolve));
  assert.equal(code, 0, `wrangler deploy --dry-run failed:\n${output}`);
  assert.match(output, /--dry-run: exiting now/);
  for (const binding of ["STREAMS (StreamCoordinator)", "APPS (AppAccount)", "USERS (UserStreams)", "BUDGET (ApiBudget)", "INPUT_INDEX (LiveInputIndex)"]) {
    assert.ok(output.includes(`env.${binding}`), `binding ${binding} missing:\n${output}`);
  }

  const bundle = readFileSync(path.join(outdir, "index.js"));
  const gzip = gzipSync(bundle, { level: 9 }).length;
  const reported = /Total Upload: ([\d.]+ KiB) \/ gzip: ([\d.]+ KiB)/.exec(output);
  const line = `bundle size: index.js ${kib(bundle.length)} raw, ${kib(gzip)} gzip` + (reported ? ` (wrangler's total upload: ${reported[1]} / gzip ${reported[2]})` : "");
  t.diagnostic(line);
  // The Worker must stay well inside the smallest plan's limit.
  assert.ok(gzip < FREE_PLAN_GZIP_LIMIT, `${kib(gzip)} gzip is over the Free plan's 3 MiB`);
  // The bundle is the Worker: our objects are exported from it.
  for (const name of ["StreamCoordinator", "AppAccount", "UserStreams", "ApiBudget", "LiveInputIndex"]) assert.ok(bundle.includes(name), `${name} not in the bundle`);
});
