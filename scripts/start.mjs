#!/usr/bin/env node
// `npm start`: the Stream emulator (Cloudflare's API + RTMP ingest) and the coordinator (`wrangler dev`),
// wired together on 127.0.0.1, with a local admin token. Ctrl-C (SIGINT) or SIGTERM stops both.
import { spawn } from "node:child_process";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { freePort, startFrontDoor } from "./front-door.mjs";
import { buildAssets } from "./build-assets.mjs";
import { buildSync } from "esbuild";
import { mkdirSync, renameSync, writeFileSync } from "node:fs";

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const require = createRequire(import.meta.url);

const PORT = process.env.PORT ?? "8787";
const EMULATOR_PORT = process.env.STREAM_EMULATOR_PORT ?? "8788";
const RTMP_PORT = process.env.RTMP_PORT ?? "1935";
const ADMIN_TOKEN = process.env.ADMIN_TOKEN ?? "local-admin-token";
const API_TOKEN = process.env.CLOUDFLARE_API_TOKEN ?? "local-dev-token";
const ACCOUNT_ID = process.env.CLOUDFLARE_ACCOUNT_ID ?? "local-account";
const WEBHOOK_SECRET = process.env.WEBHOOK_SECRET ?? "local-webhook-secret";
const DEVICE_TOKEN_SECRET = process.env.DEVICE_TOKEN_SECRET ?? "local-device-token-secret";

const coordinatorUrl = `http://127.0.0.1:${PORT}`;
const emulatorUrl = `http://127.0.0.1:${EMULATOR_PORT}`;

const coordinatorVars = {
  CLOUDFLARE_API_BASE_URL: `${emulatorUrl}/client/v4`,
  CLOUDFLARE_API_TOKEN: API_TOKEN,
  CLOUDFLARE_ACCOUNT_ID: ACCOUNT_ID,
  STREAM_PLAYBACK_BASE_URL: `${emulatorUrl}/playback`,
  ADMIN_TOKEN,
  WEBHOOK_SECRET,
  DEVICE_TOKEN_SECRET,
  // The emulator's Realtime SFU and TURN service (emulator/realtime/, werift media in the Node host).
  REALTIME_API_BASE_URL: `${emulatorUrl}/v1`,
  REALTIME_APP_ID: process.env.REALTIME_APP_ID ?? "local-realtime-app",
  REALTIME_APP_SECRET: process.env.REALTIME_APP_SECRET ?? "local-realtime-secret",
  TURN_KEY_ID: process.env.TURN_KEY_ID ?? "local-turn-key",
  TURN_KEY_API_TOKEN: process.env.TURN_KEY_API_TOKEN ?? "local-turn-token",
};
// Any other coordinator setting given in the environment is passed through (see README, Configuration).
for (const name of [
  "STREAM_STARTS_PER_MINUTE",
  "JOIN_WINDOW_SECONDS",
  "VIEWER_GRACE_SECONDS",
  "POLL_SLOW_SECONDS",
  "OUTPUTS_POLL_SECONDS",
  "API_BUDGET_PER_5_MIN",
  "API_BUDGET_POLL_SHARE",
  "LEAK_SWEEP_MINUTES",
  "CLOUDFLARE_TIMEOUT_MS",
  "STREAM_CUSTOMER_CODE",
  "REQUIRE_USER_GRANT",
  "PRESENCE_AUDIT_SECONDS",
  "RECONCILE_SECONDS",
  "ORPHAN_WATCH_MINUTES",
  "TURN_CREDENTIAL_TTL_SECONDS",
  "RECORDING_RETENTION_DAYS",
  "STREAM_VIDEO_WEBHOOK_SECRET",
]) {
  if (process.env[name]) coordinatorVars[name] = process.env[name];
}

const children = [];
let stopping = false;

/**
 * Runs a child with its output prefixed. If it exits on its own, everything stops, unless `restart` says
 * how often it may be started again: wrangler dev (4.124 on Node 20) sometimes exits after its proxy loses
 * the connection to the runtime under load, and the coordinator's state is on disk (--persist-to), so it
 * is started again at once and resumes from its storage, as after a deploy (the front door answers 503
 * JSON meanwhile). More than `restart.max` exits within `restart.windowMs` stop everything.
 */
function run(name, command, args, env, restart = null) {
  const exits = [];
  const start = () => {
    const child = spawn(command, typeof args === "function" ? args() : args, { cwd: root, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
    const prefix = (line) => (line.trim() ? `[${name}] ${line}\n` : "");
    child.stdout.on("data", (chunk) => process.stdout.write(String(chunk).split("\n").map(prefix).join("")));
    child.stderr.on("data", (chunk) => process.stderr.write(String(chunk).split("\n").map(prefix).join("")));
    child.on("exit", (code, signal) => {
      children.splice(children.indexOf(child), 1);
      if (stopping) return;
      const now = Date.now();
      exits.push(now);
      while (exits.length && exits[0] < now - (restart?.windowMs ?? 0)) exits.shift();
      if (restart && exits.length <= restart.max) {
        console.error(`[${name}] exited (${signal ?? code}); starting it again (${exits.length} of at most ${restart.max} in ${restart.windowMs / 60_000} min), state kept`);
        Promise.resolve(restart.before?.()).then(start, (error) => {
          console.error(`[${name}] cannot start it again: ${error?.message ?? error}; stopping everything`);
          shutdown(1);
        });
        return;
      }
      console.error(`[${name}] exited (${signal ?? code}); stopping everything`);
      shutdown(1);
    });
    children.push(child);
  };
  start();
}

/** User grants are required unless REQUIRE_USER_GRANT is exactly `false` (src/config.ts): say how to mint one. */
function userGrantsBanner() {
  if (process.env.REQUIRE_USER_GRANT === "false") {
    return "  user grants   OFF (REQUIRE_USER_GRANT=false): every registered app may use every user's stream";
  }
  return `  user grants   required: the platform mints one per user and app; the app sends it as X-User-Grant
                curl -s -X POST ${coordinatorUrl}/api/admin/user-grants -H "Authorization: Bearer ${ADMIN_TOKEN}" \\
                  -H 'content-type: application/json' -d '{"userId":"user-42","packageName":"com.example.camera"}'`;
}

async function waitForHttp(url, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      const res = await fetch(url);
      if (res.ok) return;
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${url} did not come up within ${timeoutMs / 1000} s`);
}

function shutdown(code = 0) {
  if (stopping) return;
  stopping = true;
  for (const child of children) if (child.exitCode === null) child.kill("SIGTERM");
  const force = setTimeout(() => {
    for (const child of children) if (child.exitCode === null) child.kill("SIGKILL");
    process.exit(code);
  }, 5_000);
  force.unref();
  Promise.all(children.map((c) => (c.exitCode !== null ? null : new Promise((r) => c.on("exit", r))))).then(() => process.exit(code));
}

process.on("SIGINT", () => shutdown(0));
process.on("SIGTERM", () => shutdown(0));

// The emulator keeps its state beside the coordinator's, so a restart resumes consistently on both sides.
const EMULATOR_STATE_DIR =
  process.env.EMULATOR_STATE_DIR ?? path.join(process.env.COORDINATOR_STATE_DIR ?? path.join(root, ".wrangler", "state"), "emulator");
// wrangler dev listens on an internal port behind our front door (scripts/front-door.mjs), which bounds
// the requests in flight and reads bodies whole: wrangler dies under a burst or a dropped upload
// (docs/architecture.md, "Load on the local stack").
let wranglerPort = String(await freePort());
let frontDoor;
try {
  frontDoor = await startFrontDoor({
    port: Number(PORT),
    upstreamPort: Number(wranglerPort),
    maxInFlight: Number(process.env.LOCAL_MAX_IN_FLIGHT) || undefined,
    queueTimeoutMs: Number(process.env.LOCAL_QUEUE_TIMEOUT_MS) || undefined,
  });
} catch (error) {
  console.error(`[coordinator] cannot listen on 127.0.0.1:${PORT}: ${error.code ?? error.message}`);
  process.exit(1);
}

// The emulator runs as one esbuild bundle of its TypeScript (packages stay external), not through tsx:
// tsx relaunches node with its loader and compiles every file on each start, about half the emulator's
// start-up on this 2-core machine (the e2e suite starts a dozen stacks). Bundling takes ~0.1 s.
const EMULATOR_BUNDLE = path.join(root, ".build", "emulator-server.mjs");
{
  const { outputFiles } = buildSync({
    absWorkingDir: root,
    entryPoints: ["emulator/server.ts"],
    bundle: true,
    packages: "external",
    platform: "node",
    format: "esm",
    target: "node20",
    sourcemap: "inline",
    outfile: EMULATOR_BUNDLE,
    write: false,
    logLevel: "warning",
  });
  // Through a temporary file and a rename: stacks starting at once never read half a file.
  const tmp = `${EMULATOR_BUNDLE}.tmp-${process.pid}`;
  mkdirSync(path.dirname(EMULATOR_BUNDLE), { recursive: true });
  writeFileSync(tmp, outputFiles[0].contents);
  renameSync(tmp, EMULATOR_BUNDLE);
}
run("emulator", process.execPath, ["--enable-source-maps", EMULATOR_BUNDLE], {
  EMULATOR_STATE_DIR,
  STREAM_EMULATOR_PORT: EMULATOR_PORT,
  RTMP_PORT,
  CLOUDFLARE_API_TOKEN: API_TOKEN,
  CLOUDFLARE_ACCOUNT_ID: ACCOUNT_ID,
  // WEBHOOK_SECRET="" turns webhooks off on both sides (polling alone keeps the status true).
  STREAM_WEBHOOK_URL: WEBHOOK_SECRET ? (process.env.STREAM_WEBHOOK_URL ?? `${coordinatorUrl}/api/webhooks/cloudflare-stream`) : "",
  STREAM_WEBHOOK_SECRET: WEBHOOK_SECRET,
  REALTIME_APP_ID: coordinatorVars.REALTIME_APP_ID,
  REALTIME_APP_SECRET: coordinatorVars.REALTIME_APP_SECRET,
  TURN_KEY_ID: coordinatorVars.TURN_KEY_ID,
  TURN_KEY_API_TOKEN: coordinatorVars.TURN_KEY_API_TOKEN,
});

// The static files wrangler serves (the API reference at /docs/, the console at /console/), copied from
// node_modules or bundled with esbuild.
buildAssets();

// Wrangler's launcher refuses Node 20, but its CLI runs fine on it (tested): call the CLI directly.
const wranglerCli = path.join(path.dirname(require.resolve("wrangler/package.json")), "wrangler-dist", "cli.js");
let coordinatorStarts = 0;
run(
  "coordinator",
  process.execPath,
  () => [
    "--no-warnings",
    wranglerCli,
    "dev",
    "--ip",
    "127.0.0.1",
    "--port",
    wranglerPort,
    // Started again, it takes any free inspector port: a runtime left from a killed wrangler may hold the first.
    "--inspector-port",
    coordinatorStarts++ === 0 ? (process.env.INSPECTOR_PORT ?? "0") : "0",
    "--show-interactive-dev-session=false",
    "--log-level",
    process.env.WRANGLER_LOG ?? "warn",
    // Exposes /__scheduled, so the leak-sweep cron (which wrangler dev never fires on its own) can be run by hand.
    "--test-scheduled",
    // Local Durable Object state; tests point it at a throwaway directory.
    ...(process.env.COORDINATOR_STATE_DIR ? ["--persist-to", process.env.COORDINATOR_STATE_DIR] : []),
    ...Object.entries(coordinatorVars).flatMap(([k, v]) => ["--var", `${k}:${v}`]),
  ],
  // No fetch of the `Request.cf` sample from workers.cloudflare.com: it needs the internet (a DNS failure and
  // a stack trace on every start here) and Miniflare's placeholder serves a local stack as well.
  { WRANGLER_SEND_METRICS: "false", CLOUDFLARE_API_TOKEN: "", CLOUDFLARE_CF_FETCH_ENABLED: process.env.CLOUDFLARE_CF_FETCH_ENABLED ?? "false" },
  {
    max: 3,
    windowMs: 10 * 60_000,
    // A new internal port: a runtime left behind by a wrangler that was killed (not one that exited) still
    // holds the old one, and answers there from memory that is no longer the coordinator's.
    before: async () => {
      wranglerPort = String(await freePort());
      frontDoor.retarget(Number(wranglerPort));
    },
  },
);

try {
  await Promise.all([waitForHttp(`${emulatorUrl}/healthz`, 60_000), waitForHttp(`${coordinatorUrl}/healthz`, 120_000)]);
  console.log(`
Stream Coordinator is running (local, no Cloudflare account needed)
  coordinator   ${coordinatorUrl}
  console       ${coordinatorUrl}/console/   (sign in with an app's package name and API key, or the admin token)
  API reference ${coordinatorUrl}/docs/   (OpenAPI: /openapi.json, socket messages: /asyncapi.json)
  emulator API  ${emulatorUrl}/client/v4   (control: ${emulatorUrl}/__emulator/state)
  RTMP ingest   rtmp://127.0.0.1:${RTMP_PORT}/live/<streamKey>
  SRT ingest    the live input's srt.url (srt://127.0.0.1:${process.env.SRT_PORT || 8890} unless taken) ?streamid=…&passphrase=…
  admin token   ${ADMIN_TOKEN}
${userGrantsBanner()}
Press Ctrl-C to stop.
`);
} catch (error) {
  console.error(String(error));
  shutdown(1);
}
