// WebRTC in a real browser on the `npm start` stack: Debian's Chromium (playwright-core, test/e2e/chromium.mjs)
// with its fake camera plays the glasses. Its page publishes over WHIP to a stream started with
// `ingest: "webrtc"` and pushes the same camera track into the stream's Realtime room with partytracks (device
// token); a second page watches over WHEP at the viewer's `webrtcUrl`, a third pulls the track from the room with
// partytracks as an app viewer of the stream, after the app's socket was told `realtime_tracks`. Both viewer
// pages must decode and present frames; then the user's watch page (/w/:key) plays the stream over WHEP too, and
// the stop leaves no SFU, WHIP or WHEP session. Media goes Chromium ↔ the Node emulator's werift peers on this
// machine.
// The pages (test/e2e/webrtc-page.mjs, partytracks bundled by esbuild: no CDN) are served by the test at the
// coordinator's origin (playwright's page.route), as an app's page on our origin would be: the room's routes
// take X-API-Key from that origin's pages. Run: `node --test test/e2e/webrtc-chromium.test.mjs`.
import assert from "node:assert/strict";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { CHROMIUM_SKIP, FAKE_CAMERA, WEBRTC_PLAIN_CANDIDATES, launchChromium } from "./chromium.mjs";
import { admin, bearer, http, openSocket, startStack, unique, userGrant, waitFor } from "./stack.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
/** Frames each viewer page must decode (getStats) and present (requestVideoFrameCallback): ~1 s of video. */
const FRAMES = 30;
const PAGES = "/__e2e/webrtc/";
/**
 * Chromium's Local Network Access asks the person before a page reaches loopback: for WebRTC even from a page
 * served on 127.0.0.1 (without it the watch page's WHEP offer is answered and ICE never connects), and for
 * fetch from a page fulfilled by page.route (it has no address of its own). A person allows it at the
 * prompt; headless, the test grants it.
 */
const LOCAL_NETWORK = { permissions: ["local-network-access"] };

/** test/e2e/webrtc-page.mjs with partytracks and rxjs, one ES module for the browser. */
async function bundlePage() {
  const result = await build({ entryPoints: [path.join(here, "webrtc-page.mjs")], bundle: true, format: "esm", platform: "browser", target: "chrome120", write: false, logLevel: "silent" });
  return result.outputFiles[0].text;
}

describe("WebRTC in Chromium (npm start stack)", { skip: CHROMIUM_SKIP, timeout: 120_000 }, () => {
  let stack;
  let browser;
  let script;
  let failed = false;
  const cleanups = [];
  const pages = [];

  before(async () => {
    // All three settled before any failure is thrown, so after() stops what did start: with Promise.all a
    // failed page bundle left the stack and the browser running, unreferenced, and the file never exited.
    const results = await Promise.allSettled([
      startStack().then((started) => (stack = started)),
      launchChromium([...FAKE_CAMERA, ...WEBRTC_PLAIN_CANDIDATES]).then((launched) => (browser = launched)),
      bundlePage().then((bundled) => (script = bundled)),
    ]);
    const failure = results.find((r) => r.status === "rejected");
    if (failure) throw failure.reason;
  });
  after(async () => {
    // Bounded: a page stuck in a call (seen once after 12 min of a hung run) must not hold the file open.
    for (const cleanup of cleanups.reverse()) await bounded(cleanup(), 5_000, undefined);
    await bounded(browser?.close() ?? Promise.resolve(), 10_000, undefined);
    if (failed && stack) console.log(`--- stack output ---\n${stack.output().slice(-20_000)}`);
    await stack?.stop();
  });

  /** A page at the coordinator's origin running webrtc-page.mjs, with its errors collected. */
  async function openPage(name) {
    const context = await browser.newContext({ viewport: { width: 700, height: 420 }, ...LOCAL_NETWORK });
    cleanups.push(() => context.close());
    const page = await context.newPage();
    const problems = [];
    page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
    page.on("console", (message) => {
      if (message.type() === "error") problems.push(`console error: ${message.text()}`);
    });
    await page.route(`${stack.coordinator}${PAGES}**`, (route) => {
      const file = new URL(route.request().url()).pathname.slice(PAGES.length);
      if (file === "page.js") return route.fulfill({ contentType: "text/javascript", body: script });
      return route.fulfill({
        contentType: "text/html",
        body: `<!doctype html><title>${name}</title><video autoplay muted playsinline width="640" height="360"></video><script type="module" src="${PAGES}page.js"></script>`,
      });
    });
    await page.goto(`${stack.coordinator}${PAGES}${name}.html`);
    await page.waitForFunction(() => window.webrtcPage !== undefined, null, { timeout: 10_000 });
    const entry = { name, page, problems, stats: () => bounded(page.evaluate(() => window.webrtcPage.stats()), 3_000, "(the page did not answer)") };
    pages.push(entry);
    return entry;
  }

  /** `promise`, or `fallback` once `ms` have passed or if it fails (for calls into a page that may be stuck). */
  function bounded(promise, ms, fallback) {
    let timer;
    const late = new Promise((resolve) => (timer = setTimeout(() => resolve(fallback), ms)));
    return Promise.race([Promise.resolve(promise).catch(() => fallback), late]).finally(() => clearTimeout(timer));
  }

  /** Runs `fn(arg)` in the page, failing after `timeoutMs` with what the page logged. */
  async function inPage(entry, what, fn, arg, timeoutMs = 20_000) {
    let timer;
    const timeout = new Promise((_, reject) => {
      timer = setTimeout(async () => reject(new Error(`${entry.name}: timed out after ${timeoutMs} ms: ${what}; page: ${JSON.stringify(await entry.stats().catch((e) => e.message))}; ${entry.problems.join("; ")}`)), timeoutMs);
    });
    try {
      return await Promise.race([entry.page.evaluate(fn, arg), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  const guarded = (fn) => async (t) => {
    try {
      await fn(t);
    } catch (error) {
      failed = true;
      for (const p of pages) t.diagnostic(`${p.name}: ${JSON.stringify(await p.stats().catch((e) => e.message))} ${p.problems.join("; ")}`);
      throw error;
    }
  };

  test(
    "Chromium's camera published over WHIP and into the room plays in Chromium over WHEP, over partytracks and on the watch page",
    guarded(async (t) => {
      const C = stack.coordinator;
      const packageName = unique("com.e2e.chromium.").toLowerCase();
      const registered = await http("POST", `${C}/api/admin/apps`, { body: { packageName }, headers: admin });
      assert.equal(registered.status, 201, JSON.stringify(registered.body));
      const appHeaders = { "x-api-key": registered.body.apiKey, "x-package-name": packageName };
      const userId = unique("user-chromium-");
      const grant = await userGrant(C, userId, packageName);
      const started = await http("POST", `${C}/api/streams`, { body: { userId, ingest: "webrtc" }, headers: { ...appHeaders, "x-user-grant": grant } });
      assert.equal(started.status, 201, JSON.stringify(started.body));
      const { streamId } = started.body;
      const socket = await openSocket(`${C.replace(/^http/, "ws")}/api/streams/${streamId}/ws`, appHeaders);
      cleanups.push(() => socket.close());

      const deviceToken = (await http("POST", `${C}/api/admin/device-tokens`, { body: { userId }, headers: admin })).body.token;
      const device = await http("GET", `${C}/api/device/stream`, { headers: bearer(deviceToken) });
      assert.equal(device.status, 200, JSON.stringify(device.body));
      assert.equal(device.body.start.ingest, "webrtc");
      const roomPrefix = `/api/streams/${streamId}/realtime`;
      // partytracks fetches generate-ice-servers without its headers: each side fetches them with its credentials.
      const iceServersFor = async (headers) => {
        const res = await http("GET", `${C}${roomPrefix}/generate-ice-servers`, { headers });
        assert.equal(res.status, 200, JSON.stringify(res.body));
        return res.body.iceServers;
      };

      const glasses = await openPage("glasses");
      const t0 = Date.now();
      const published = await inPage(glasses, "publish over WHIP and push into the room", (arg) => window.webrtcPage.publish(arg), {
        whipUrl: device.body.start.whipUrl,
        roomPrefix,
        deviceToken,
        iceServers: await iceServersFor(bearer(deviceToken)),
      });
      t.diagnostic(`glasses page: WHIP answered and room track sending ${Date.now() - t0} ms after the publish began`);
      const active = await socket.next("the stream to go active", (m) => m.type === "managed_stream_status" && m.status === "active", { timeoutMs: 15_000 });
      assert.equal(active.webrtcUrl, started.body.webrtcUrl);
      const told = await socket.next("realtime_tracks naming the glasses' room session", (m) => m.type === "realtime_tracks" && m.sessionId === published.sessionId, { timeoutMs: 15_000 });
      assert.deepEqual(told.tracks, [{ trackName: published.trackName, kind: "video" }]);

      const whep = await openPage("whep-viewer");
      const room = await openPage("room-viewer");
      const appIceServers = await iceServersFor(appHeaders);
      await Promise.all([
        inPage(whep, "WHEP offer answered", (url) => window.webrtcPage.watchWhep(url), active.webrtcUrl),
        inPage(room, "partytracks pull started", (arg) => window.webrtcPage.watchRoom(arg), {
          roomPrefix,
          headers: appHeaders,
          iceServers: appIceServers,
          sessionId: told.sessionId,
          trackName: told.tracks[0].trackName,
        }),
      ]);

      const decoded = (viewer) =>
        waitFor(
          `${viewer.name} to decode and present ${FRAMES} frames`,
          async () => {
            const s = await viewer.stats();
            return s.inbound?.framesDecoded >= FRAMES && s.presented >= FRAMES && s.width > 0 ? s : null;
          },
          { timeoutMs: 20_000, intervalMs: 100 },
        );
      const viewers = await Promise.all([decoded(whep), decoded(room)]);
      for (const [name, s] of [["WHEP", viewers[0]], ["partytracks", viewers[1]]]) {
        t.diagnostic(`${name} viewer: first frame shown ${s.firstFrameMs} ms after it began watching; ${s.inbound.framesDecoded} frames decoded (${s.inbound.keyFramesDecoded} key), ${s.presented} presented, ${s.width}x${s.height}; ${s.log.join(" | ")}`);
        // Chromium may scale the camera down (its bandwidth estimate, CPU), never its shape: 640x360 is 16:9.
        assert.ok(Math.abs(s.width / s.height - 16 / 9) < 0.02, `the ${name} viewer shows the camera's picture (16:9), not ${s.width}x${s.height}`);
      }
      // The emulator forwarded them: one WHIP publisher with one WHEP viewer; the room's viewer session got RTP.
      const ingest = (await (await fetch(`${stack.emulator}/__emulator/ingest`)).json()).whip;
      assert.deepEqual(ingest.map((x) => [x.state, x.viewers]), [["connected", 1]]);
      const sfu = (await (await fetch(`${stack.emulator}/__emulator/realtime`)).json()).sessions;
      const forwarded = sfu.flatMap((x) => Object.values(x.media?.forwarded ?? {})).reduce((n, f) => n + f.packets, 0);
      assert.ok(forwarded > 0, `the SFU forwarded RTP to the room viewer: ${JSON.stringify(sfu)}`);
      for (const p of pages) assert.deepEqual(p.problems, [], `${p.name} had no page errors`);

      // The user's watch link plays it too: the watch page (web/watch/, served by the coordinator) has no HLS
      // for this stream and plays its webrtcUrl over WHEP.
      const link = (await http("GET", `${C}/api/users/${userId}/watch-link`, { headers: admin })).body;
      const watchView = await http("GET", link.watchUrl);
      assert.deepEqual([watchView.body.state, watchView.body.hlsUrl, watchView.body.webrtcUrl], ["live", null, started.body.webrtcUrl]);
      const watchContext = await browser.newContext({ viewport: { width: 700, height: 500 }, ...LOCAL_NETWORK });
      cleanups.push(() => watchContext.close());
      const watchPage = await watchContext.newPage();
      const watchProblems = [];
      watchPage.on("pageerror", (error) => watchProblems.push(error.message));
      const watchStarted = Date.now();
      assert.equal((await watchPage.goto(link.watchUrl)).status(), 200);
      const player = watchPage.getByTestId("player");
      await player.waitFor({ timeout: 10_000 });
      await player.evaluate((v) => {
        window.presented = 0;
        const count = () => v.requestVideoFrameCallback(() => {
          window.presented++;
          count();
        });
        count();
      });
      let seen;
      const shown = await waitFor(
        `the watch page to present ${FRAMES} frames over WHEP`,
        async () => {
          seen = await player.evaluate((v) => ({ presented: window.presented, width: v.videoWidth, caption: v.parentElement.querySelector("figcaption").textContent }));
          return seen.presented >= FRAMES && seen.width > 0 ? seen : null;
        },
        { timeoutMs: 20_000, intervalMs: 100 },
      ).catch(async (error) => {
        error.message += `; the watch page showed ${JSON.stringify(seen)}; ${watchProblems.join("; ")}; emulator: ${JSON.stringify(await (await fetch(`${stack.emulator}/__emulator/ingest`)).json())}`;
        throw error;
      });
      t.diagnostic(`watch page: ${FRAMES} frames presented ${Date.now() - watchStarted} ms after it was opened (${shown.width} wide)`);
      assert.deepEqual(watchProblems, []);
      assert.deepEqual((await (await fetch(`${stack.emulator}/__emulator/ingest`)).json()).whip.map((x) => x.viewers), [2]);

      // The stop leaves no SFU session and no WHIP/WHEP session behind.
      assert.equal((await http("POST", `${C}/api/admin/streams/${streamId}/stop`, { headers: admin })).status, 200);
      assert.deepEqual((await (await fetch(`${stack.emulator}/__emulator/realtime`)).json()).sessions, []);
      await waitFor("no WHIP or WHEP session left after the stop", async () => {
        const left = await (await fetch(`${stack.emulator}/__emulator/ingest`)).json();
        return left.whip.length === 0 && left.whep.length === 0;
      }, { timeoutMs: 10_000 });
    }),
  );
});
