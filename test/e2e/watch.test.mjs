// End-to-end: the user's watch link (/w/:key) on the `npm start` stack, with ffmpeg publishing to the
// emulator's RTMP ingest. The link resolves to each new stream within 2 s of its ingest connecting; the
// watch page in Chromium (playwright-core, as test/e2e/console.test.mjs drives it) keeps playing across a
// reconnect of the glasses; the delivery host's /views counts that real HLS client; the stream's
// analytics saw it all. Run: `node --test test/e2e/watch.test.mjs`. Needs ffmpeg (skipped without it) and
// /usr/bin/chromium for the browser part.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { CHROMIUM_SKIP, launchChromium } from "./chromium.mjs";
import { admin, bearer, ffmpegAvailable, http, publishTestPattern, startStack, unique, userGrant, waitFor } from "./stack.mjs";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const HAVE_FFMPEG = ffmpegAvailable();
/** Issue 14: the watch link resolves to a new stream within this of its ingest connecting. */
const RESOLVES_WITHIN_MS = 2_000;

test("the watch page's sources typecheck (web/watch/src/tsconfig.json)", () => {
  const result = spawnSync(path.join(root, "node_modules", ".bin", "tsc"), ["-p", "web/watch/src"], { cwd: root, encoding: "utf8" });
  assert.equal(result.status, 0, `${result.stdout}${result.stderr}`);
});

describe("the watch link on the real stack", { skip: !HAVE_FFMPEG && "ffmpeg is not installed" }, () => {
  let stack;
  let failed = false;
  const coord = (p) => `${stack.coordinator}${p}`;
  const guarded = (fn) => async (t) => {
    try {
      await fn(t);
    } catch (error) {
      failed = true;
      throw error;
    }
  };

  before(async () => {
    // Nobody holds a viewer socket here: a long grace keeps each stream running while the test needs it.
    stack = await startStack({ VIEWER_GRACE_SECONDS: "600" });
  });
  after(async () => {
    if (failed && stack) console.log(`--- stack output ---\n${stack.output().slice(-20_000)}`);
    await stack?.stop();
  });

  async function registerApp() {
    const packageName = unique("com.e2e.watch.");
    const res = await http("POST", coord("/api/admin/apps"), { body: { packageName }, headers: admin });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    return { packageName, headers: { "x-api-key": res.body.apiKey, "x-package-name": packageName } };
  }

  async function startStream(app, userId) {
    const grant = await userGrant(stack.coordinator, userId, app.packageName);
    const res = await http("POST", coord("/api/streams"), { body: { userId, recording: { mode: "off" } }, headers: { ...app.headers, "x-user-grant": grant } });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    return res.body;
  }

  async function rtmpUrlOf(userId) {
    const token = (await http("POST", coord("/api/admin/device-tokens"), { body: { userId, ttlSeconds: 600 }, headers: admin })).body.token;
    const device = await http("GET", coord("/api/device/stream"), { headers: bearer(token) });
    assert.equal(device.status, 200, JSON.stringify(device.body));
    return device.body.start.rtmpUrl;
  }

  /** When the emulator saw this stream's ingest connect (its own record), after `since`. */
  async function connectedAt(streamId, since = 0) {
    return waitFor(
      "the emulator to see the ingest connect",
      async () => {
        const state = await (await fetch(`${stack.emulator}/__emulator/state`)).json();
        const input = state.inputs.find((i) => i.meta?.streamId === streamId);
        const current = input?.connected ? input.status?.current : null;
        const at = current?.state === "connected" ? Date.parse(current.statusEnteredAt) : null;
        return at !== null && at >= since ? at : null;
      },
      { timeoutMs: 20_000, intervalMs: 20 },
    );
  }

  /** Reads /w/:key until it is live on `streamId`; returns when that was first seen (this machine's clock). */
  async function liveOn(watchUrl, streamId) {
    return waitFor(
      `the watch link to be live on ${streamId}`,
      async () => {
        const res = await http("GET", watchUrl);
        assert.equal(res.headers.get("cache-control"), "no-store");
        return res.body.state === "live" && res.body.streamId === streamId ? { at: Date.now(), view: res.body } : null;
      },
      { timeoutMs: 20_000, intervalMs: 25 },
    );
  }

  test(
    "resolves to each new stream within 2 s of its ingest connecting",
    { timeout: 120_000 },
    guarded(async (t) => {
      const app = await registerApp();
      const userId = unique("user-watch-");
      const link = (await http("GET", coord(`/api/users/${userId}/watch-link`), { headers: admin })).body;
      for (let round = 1; round <= 2; round++) {
        const stream = await startStream(app, userId);
        const publisher = publishTestPattern(await rtmpUrlOf(userId), 60);
        t.after(() => publisher.stop());
        const connected = await connectedAt(stream.streamId);
        const { at, view } = await liveOn(link.watchUrl, stream.streamId);
        const latency = at - connected;
        console.log(`# watch: stream ${round} live on the watch link ${latency} ms after its ingest connected`);
        assert.ok(latency <= RESOLVES_WITHIN_MS, `watch link live ${latency} ms after the ingest connected (limit ${RESOLVES_WITHIN_MS} ms)`);
        assert.equal(view.hlsUrl, stream.hlsUrl);
        const m3u8 = await fetch(`${link.watchUrl}/video.m3u8`, { redirect: "manual" });
        assert.equal(m3u8.status, 302);
        assert.equal(m3u8.headers.get("location"), stream.hlsUrl);
        await publisher.stop();
        const stopped = await http("POST", coord(`/api/admin/streams/${stream.streamId}/stop`), { headers: admin });
        assert.equal(stopped.status, 200, JSON.stringify(stopped.body));
        const offline = await http("GET", link.watchUrl);
        assert.deepEqual([offline.body.state, offline.body.streamId], ["offline", stream.streamId]);
      }
    }),
  );

  test(
    "in Chromium the watch page keeps playing across a reconnect of the glasses",
    { timeout: 240_000, skip: CHROMIUM_SKIP },
    guarded(async (t) => {
      const browser = await launchChromium();
      t.after(() => browser.close().catch(() => undefined));
      const app = await registerApp();
      const userId = unique("user-watch-page-");
      const stream = await startStream(app, userId);
      const rtmpUrl = await rtmpUrlOf(userId);
      const link = (await http("GET", coord(`/api/users/${userId}/watch-link`), { headers: admin })).body;

      const page = await (await browser.newContext({ viewport: { width: 1000, height: 700 } })).newPage();
      const problems = [];
      page.on("pageerror", (error) => problems.push(error.message));
      const response = await page.goto(link.watchUrl);
      assert.equal(response.status(), 200);
      assert.equal(response.headers()["cache-control"], "no-store");
      const badge = page.getByTestId("watch-state");
      await badge.filter({ hasText: "Offline" }).waitFor({ timeout: 15_000 });

      const video = page.locator("video");
      const playing = () => video.evaluate((v) => ({ t: v.currentTime, paused: v.paused }));
      const advancesFrom = async (what, from) =>
        waitFor(what, async () => {
          const s = await playing();
          return s.t >= from + 1 && !s.paused ? s : null;
        }, { timeoutMs: 60_000, intervalMs: 250 }).catch(async (error) => {
          error.message += `; video ${JSON.stringify(await playing())}; caption: ${await page.locator(".player figcaption").textContent()}`;
          throw error;
        });

      let publisher = publishTestPattern(rtmpUrl, 120);
      t.after(() => publisher.stop());
      await badge.filter({ hasText: "Live" }).waitFor({ timeout: 20_000 });
      const before = await advancesFrom("the picture to play", 0);

      // A real HLS client is watching: the delivery host's /views counts it.
      const input = (await (await fetch(`${stack.emulator}/__emulator/state`)).json()).inputs.find((i) => i.meta?.streamId === stream.streamId);
      const views = await waitFor("/views to count the page", async () => {
        const body = await (await fetch(`${stack.emulator}/playback/${input.uid}/views`)).json();
        return body.liveViewers >= 1 ? body : null;
      }, { timeoutMs: 15_000, intervalMs: 250 });
      assert.equal(views.liveViewers, 1);

      // The glasses drop and come back on the same input.
      await publisher.stop();
      await badge.filter({ hasText: "Reconnecting" }).waitFor({ timeout: 20_000 });
      const paused = await playing();
      const since = Date.now();
      publisher = publishTestPattern(rtmpUrl, 120);
      await connectedAt(stream.streamId, since - 1_000);
      await badge.filter({ hasText: "Live" }).waitFor({ timeout: 20_000 });
      const resumed = await advancesFrom("the picture to play again after the reconnect", paused.t);
      console.log(`# watch page: played to ${before.t.toFixed(1)} s, reconnected, playing again at ${resumed.t.toFixed(1)} s`);
      mkdirSync(path.join(root, ".build", "artifacts"), { recursive: true });
      await page.screenshot({ path: path.join(root, ".build", "artifacts", "watch.png") });
      await publisher.stop();

      // The stream's analytics saw it: the page load is a hit, the input was up twice.
      const r = (await http("GET", coord(`/api/streams/${stream.streamId}/analytics`), { headers: app.headers })).body;
      assert.equal(r.reconnects, 1);
      assert.ok(r.watchLink.hits >= 1, JSON.stringify(r.watchLink));
      assert.ok(r.liveSeconds >= 3, `liveSeconds ${r.liveSeconds}`);
      assert.deepEqual(problems, []);
    }),
  );
});
