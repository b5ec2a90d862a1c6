#!/usr/bin/env node
// The README's five-minute walkthrough through the typed client (client/): register an app, start a
// stream with the user's grant, watch it over a viewer socket, give the glasses their ingest URL and
// publish ffmpeg's test pattern to it, wait until the stream is live, add a restream output, stop.
//
//   npm ci && npm start              # in one terminal (npm ci also builds client/dist)
//   node examples/walkthrough.mjs     # in another
//
// Restart the coordinator while it holds the stream live (Ctrl-C `npm start`, start it again): the
// viewer reconnects on its own and resumes with the current status, ffmpeg publishes again, and the
// walkthrough carries on. Settings (env): COORDINATOR_URL (http://127.0.0.1:8787), ADMIN_TOKEN
// (local-admin-token), PACKAGE_NAME (com.example.camera), USER_ID (user-42), OUTPUT_URL (the README's
// YouTube URL), HOLD_SECONDS (20: how long it stays live before adding the output), FFMPEG (ffmpeg;
// `off` skips going live).
import { spawn, spawnSync } from "node:child_process";
import WebSocket from "ws"; // Node 20 has no global WebSocket; browsers and Workers need no import
import { AdminClient, AppClient, DeviceClient, isApiError } from "../client/dist/index.js";

const baseUrl = process.env.COORDINATOR_URL ?? "http://127.0.0.1:8787";
const adminToken = process.env.ADMIN_TOKEN ?? "local-admin-token";
const packageName = process.env.PACKAGE_NAME ?? "com.example.camera";
const userId = process.env.USER_ID ?? "user-42";
const outputUrl = process.env.OUTPUT_URL ?? "rtmp://a.rtmp.youtube.com/live2/my-secret-key";
const holdSeconds = Number(process.env.HOLD_SECONDS ?? 20);
const ffmpeg = process.env.FFMPEG ?? "ffmpeg";

const t0 = Date.now();
const log = (line) => console.log(`[${((Date.now() - t0) / 1000).toFixed(1).padStart(5)} s] ${line}`);
const step = (n, what) => log(`step ${n}: ${what}`);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Calls that are safe to repeat (all but registering an app) ride out a coordinator restart: locally
// `npm start` takes 10–30 s to come back, so allow more retries than the default 3.
const retry = { retries: 12, maxDelayMs: 5_000 };
const admin = new AdminClient({ baseUrl, adminToken, retry });

// 1. Register the app. Run twice, the package exists: the admin rotates its key instead (typed error).
step(1, `register the app ${packageName}`);
let credentials;
try {
  credentials = await admin.registerApp(packageName);
} catch (error) {
  if (!isApiError(error, "APP_EXISTS")) throw error;
  log(`  ${error.code}: rotating its key instead`);
  credentials = await admin.rotateKey(packageName);
}
log(`  apiKey ${credentials.apiKey.slice(0, 8)}… (shown once)`);
const app = new AppClient({ baseUrl, apiKey: credentials.apiKey, packageName, WebSocket, retry });

// 2. The platform mints the user's grant; the app starts (or joins) the user's stream with it.
step(2, `start a stream for ${userId} with the user's grant`);
const { token: grant } = await admin.mintUserGrant({ userId, packageName });
const started = await app.startStream({ userId }, { grant });
const { streamId } = started;
log(`  ${started.created ? "created" : "joined"} ${streamId}: ${started.status} (${started.message})`);

// 3. Watch it. The viewer reconnects by itself (exponential backoff, full jitter) and every connection
//    starts with the current status.
step(3, "open a viewer socket");
const viewer = app.viewer(streamId);
let lastPrinted = "";
viewer.on("open", ({ reconnected, attempt }) => {
  log(`  viewer: ${reconnected ? `reconnected (after ${attempt} failed attempts)` : "connected"}`);
  lastPrinted = ""; // each connection starts with the current status: print it
});
viewer.on("reconnecting", ({ attempt, delayMs, reason }) => log(`  viewer: ${reason}; attempt ${attempt} in ${delayMs} ms`));
viewer.on("close", ({ reason, message }) => log(`  viewer: closed for good: ${reason} (${message})`));
viewer.on("status", (s) => {
  const line = `${s.status}: ${s.message}; viewers ${s.viewers}, outputs ${s.outputs.map((o) => `${o.name ?? o.outputId} ${o.status}`).join(", ") || "none"}`;
  if (line !== lastPrinted) log(`  status ${line}`);
  lastPrinted = line;
});
await viewer.ready({ timeoutMs: 15_000 });

// 4. The glasses get their credentials with a device token.
step(4, "mint a device token; the glasses fetch their ingest URL");
const { token: deviceToken } = await admin.mintDeviceToken({ userId });
const device = new DeviceClient({ baseUrl, deviceToken, retry });
const ingest = async () => {
  const info = await device.getStream();
  if (!info.start) throw new Error(`stream ${info.streamId} is ${info.status}: no ingest URL`);
  return info.start.rtmpUrl;
};
log(`  rtmpUrl ${(await ingest()).replace(/[^/]+$/, "<streamKey>")}`);

// 5. Publish the test pattern, as the glasses would: again whenever the connection drops (a restart of
//    `npm start` takes the RTMP server down with it).
let publishing = false;
let publisher = null;
const hasFfmpeg = ffmpeg !== "off" && spawnSync(ffmpeg, ["-version"], { stdio: "ignore" }).status === 0;
async function publish() {
  publishing = true;
  while (publishing) {
    const url = await ingest().catch((error) => (log(`  device: ${error.message}`), null));
    if (url && publishing) {
      const args = ["-nostdin", "-loglevel", "error", "-re", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=15", "-f", "lavfi", "-i", "sine"];
      args.push("-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", "30", "-c:a", "aac", "-f", "flv", url);
      publisher = spawn(ffmpeg, args, { stdio: ["ignore", "ignore", "pipe"] });
      let stderr = "";
      publisher.stderr.on("data", (c) => (stderr = (stderr + c).slice(-300)));
      const code = await new Promise((resolve) => publisher.on("exit", (c, signal) => resolve(signal ?? c)));
      publisher = null;
      if (publishing) log(`  ffmpeg exited (${code}${stderr.trim() ? `: ${stderr.trim().split("\n").at(-1)}` : ""}); publishing again`);
    }
    if (publishing) await sleep(1_000);
  }
}
const stopPublishing = () => {
  publishing = false;
  publisher?.kill("SIGTERM");
};

async function main() {
  if (hasFfmpeg) {
    step(5, "publish ffmpeg's test pattern to the ingest URL");
    void publish();
    // 6. The emulator tells the coordinator within about a second; the viewer sees it.
    step(6, "wait until the stream is live");
    const live = await viewer.waitFor((s) => s.status === "active", { timeoutMs: 60_000 });
    log(`  live: ${live.message}${live.hlsUrl ? `, HLS ${live.hlsUrl}` : ""}`);
  } else {
    log(`step 5-6: skipped: ${ffmpeg === "off" ? "FFMPEG=off" : `${ffmpeg} not found`} (install ffmpeg to go live)`);
  }

  if (holdSeconds > 0) {
    log(`holding for ${holdSeconds} s: restart the coordinator now to watch the viewer reconnect`);
    await sleep(holdSeconds * 1000);
  }

  // 7. Add a restream output: with an Idempotency-Key by default, so a retry after a lost answer or a
  //    503 (e.g. a restart) returns the same output instead of adding a second.
  step(7, "add a restream output");
  // After a restart: wait until the viewer is back (its first status is the current one), and live again.
  let current = await viewer.ready({ timeoutMs: 120_000 });
  if (hasFfmpeg) current = await viewer.waitFor((s) => s.status === "active", { timeoutMs: 120_000 });
  log(`  viewer's current status: ${current.status}`);
  const added = await app.addOutput(streamId, { url: outputUrl, name: "YouTube" });
  log(`  added ${added.outputId}`);
  const { outputs, total, maxPerStream } = await app.listOutputs(streamId);
  for (const o of outputs) log(`  output ${o.outputId} ${o.name}: ${o.status}${o.error ? ` (${o.error})` : ""}`);
  log(`  ${total} of ${maxPerStream} outputs`);

  // 8. Stop: the operator stops it at once (the app leaving would stop it after the grace period).
  step(8, "stop the stream");
  stopPublishing();
  const stopped = await admin.stopStream(streamId);
  log(`  ${stopped.status}: ${stopped.message}`);
  const closed = await Promise.race([viewer.closed, sleep(15_000).then(() => viewer.close("no close from the server within 15 s"))]);
  log(`done: viewer ${closed.reason}, last status ${closed.status?.status ?? "none"}`);
}

try {
  await main();
} catch (error) {
  console.error(`walkthrough failed: ${error.stack ?? error}`);
  process.exitCode = 1;
} finally {
  stopPublishing();
  await viewer.close();
}
