// End-to-end: the web console at /console/ in a real browser (Debian's Chromium, driven by
// playwright-core) against the `npm start` stack. It signs in by keyboard, watches a stream turn live
// when ffmpeg's test pattern reaches the emulator's RTMP ingest, plays the picture, adds and removes an
// output through the console's form, and saves a screenshot to .build/artifacts/console.png.
// Run: `node --test test/e2e/console.test.mjs`. Needs /usr/bin/chromium (.ci/run installs it); without
// it the browser tests are skipped, and without ffmpeg the parts that need a picture are.
import assert from "node:assert/strict";
import { mkdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { CHROMIUM_SKIP, launchChromium } from "./chromium.mjs";
import { admin, bearer, ffmpegAvailable, http, publishTestPattern, sleep, startStack, unique, userGrant, waitFor } from "./stack.mjs";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const HAVE_FFMPEG = ffmpegAvailable();
const ARTIFACTS = path.join(root, ".build", "artifacts");
/** The badge must turn live within this of the emulator seeing the ingest connect (issue 12). */
const LIVE_WITHIN_MS = 1_000;

// In CI a missing Chromium fails the suite (.ci/run installs it); elsewhere the browser tests are skipped.
describe("the web console in Chromium", { skip: CHROMIUM_SKIP }, () => {
  let stack;
  let browser;
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
    [stack, browser] = await Promise.all([
      // Outputs are listed at Cloudflare every 5 s, so an output's own status shows up quickly.
      startStack({ OUTPUTS_POLL_SECONDS: "5" }),
      launchChromium(),
    ]);
  });

  after(async () => {
    await browser?.close().catch(() => undefined);
    if (failed && stack) console.log(`--- stack output ---\n${stack.output().slice(-20_000)}`);
    await stack?.stop();
  });

  async function registerApp() {
    const packageName = unique("com.e2e.console.").toLowerCase();
    const res = await http("POST", coord("/api/admin/apps"), { body: { packageName }, headers: admin });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    return { packageName, apiKey: res.body.apiKey, headers: { "x-api-key": res.body.apiKey, "x-package-name": packageName } };
  }

  async function startStream(app, userId) {
    const grant = await userGrant(stack.coordinator, userId, app.packageName);
    const res = await http("POST", coord("/api/streams"), { body: { userId, recording: { mode: "off" } }, headers: { ...app.headers, "x-user-grant": grant } });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    return res.body;
  }

  async function newPage() {
    const context = await browser.newContext({ viewport: { width: 1360, height: 1000 } });
    const page = await context.newPage();
    const problems = [];
    page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
    page.on("console", (message) => {
      if (message.type() === "error") problems.push(`console error: ${message.text()}`);
    });
    // Nothing may be loaded from another origin than the coordinator's, except the stream's playback host.
    const origins = new Set();
    page.on("request", (request) => origins.add(new URL(request.url()).origin));
    return { page, context, problems, origins };
  }

  /** The ids (or tag) of the elements Tab reaches, in order, starting from the top of the page. */
  async function tabOrder(page, presses) {
    await page.evaluate(() => {
      document.activeElement?.blur?.();
      window.scrollTo(0, 0);
    });
    const order = [];
    for (let i = 0; i < presses; i++) {
      await page.keyboard.press("Tab");
      order.push(
        await page.evaluate(() => {
          const el = document.activeElement;
          if (!el || el === document.body) return "body";
          return el.id ? `#${el.id}` : `${el.tagName.toLowerCase()}:${(el.textContent ?? "").trim().slice(0, 40)}`;
        }),
      );
    }
    return order;
  }

  test(
    "signs in by keyboard, turns live within 1 s of ingest, plays the picture, adds and removes an output",
    { timeout: 240_000 },
    guarded(async (t) => {
      const app = await registerApp();
      const userId = unique("user-console-");
      const stream = await startStream(app, userId);
      const { page, problems, origins } = await newPage();

      // /console answers with the page (wrangler's assets add the trailing slash).
      const response = await page.goto(coord("/console"));
      assert.equal(response.status(), 200);
      assert.equal(new URL(page.url()).pathname, "/console/");
      await page.getByRole("heading", { name: "Sign in" }).waitFor();

      await t.test("every field has a real label, and Tab reaches the fields and buttons in order", async () => {
        for (const [label, id, type] of [
          ["Package name", "package-name", "text"],
          ["API key", "api-key", "password"],
          ["Admin token", "admin-token", "password"],
        ]) {
          const field = page.getByLabel(label, { exact: true });
          assert.equal(await field.getAttribute("id"), id);
          assert.equal(await field.getAttribute("type"), type);
          assert.equal(await field.evaluate((el) => el.labels?.[0]?.tagName), "LABEL");
        }
        const order = await tabOrder(page, 8);
        const at = (what) => {
          const i = order.indexOf(what);
          assert.ok(i >= 0, `Tab never reached ${what}: ${order.join(" → ")}`);
          return i;
        };
        const sequence = ["#package-name", "#api-key", "button:Sign in as app", "#admin-token", "button:Sign in as admin"].map(at);
        assert.deepEqual([...sequence].sort((a, b) => a - b), sequence, `focus order: ${order.join(" → ")}`);
        for (const name of ["Sign in as app", "Sign in as admin"]) {
          assert.equal(await page.getByRole("button", { name }).evaluate((el) => el.tagName), "BUTTON");
        }
      });

      await t.test("a wrong key is a readable error and nothing is stored", async () => {
        await page.getByLabel("Package name").fill(app.packageName);
        await page.getByLabel("API key").fill("sc_wrong");
        await page.getByLabel("API key").press("Enter");
        const error = page.locator("#app-sign-in-error");
        await error.filter({ hasText: "Invalid API key or package name" }).waitFor({ timeout: 10_000 });
        assert.equal(await error.textContent(), "Invalid API key or package name (UNAUTHORIZED, HTTP 401)");
        assert.equal(await page.evaluate(() => sessionStorage.length), 0);
      });

      await t.test("signs in with the keyboard alone; the key is kept in sessionStorage only", async () => {
        await page.getByLabel("API key").fill("");
        await page.getByLabel("Package name").focus();
        await page.keyboard.press("Tab");
        await page.keyboard.type(app.apiKey);
        await page.keyboard.press("Tab");
        await page.keyboard.press("Enter");
        await page.getByTestId("signed-in").filter({ hasText: `Signed in as app ${app.packageName}` }).waitFor({ timeout: 10_000 });
        const stored = await page.evaluate(() => ({ session: { ...sessionStorage }, local: localStorage.length, cookie: document.cookie }));
        assert.equal(stored.local, 0);
        assert.equal(stored.cookie, "");
        assert.ok(JSON.stringify(stored.session).includes(app.apiKey));
        assert.ok(!page.url().includes(app.apiKey));
      });

      await t.test("lists the app's stream; choosing it opens its detail on the viewer socket", async () => {
        // The same list over REST (checked against /openapi.json by stack.mjs's spec check).
        const listed = await http("GET", coord("/api/streams?limit=5"), { headers: app.headers });
        assert.equal(listed.status, 200, JSON.stringify(listed.body));
        assert.deepEqual(listed.body.streams.map((s) => s.streamId), [stream.streamId]);
        const item = page.locator(`button[data-stream-id="${stream.streamId}"]`);
        await item.waitFor({ timeout: 10_000 });
        await item.focus();
        await page.keyboard.press("Enter");
        await page.getByRole("heading", { name: `Stream ${stream.streamId}` }).waitFor();
        const badge = page.getByTestId("status-badge");
        assert.equal(await badge.getAttribute("data-status"), "preparing");
        await page.getByTestId("timeline").getByText("Viewer socket connected").waitFor({ timeout: 10_000 });
        await page.locator('[data-fact="Viewer socket"]', { hasText: "open" }).waitFor();
        await page.getByTestId("no-outputs").waitFor({ timeout: 10_000 });
        assert.equal(await page.locator('[data-fact="Ingest"]').textContent(), "idle");
        assert.equal(await page.locator('[data-fact="Glasses"]').textContent(), "Not connected");
      });

      await t.test("the badge turns live within 1 s of the ingest connecting, and the video plays", { skip: !HAVE_FFMPEG && "ffmpeg is not installed" }, async () => {
        // When the badge first says live, by the browser's clock (the machine's, as the emulator's is).
        await page.evaluate(() => {
          const seen = () => document.querySelector('[data-testid="status-badge"]')?.getAttribute("data-status") === "active";
          window.__liveAt = seen() ? Date.now() : null;
          new MutationObserver(() => {
            if (window.__liveAt === null && seen()) window.__liveAt = Date.now();
          }).observe(document.body, { subtree: true, childList: true, attributes: true, attributeFilter: ["data-status"] });
        });
        const deviceToken = (await http("POST", coord("/api/admin/device-tokens"), { body: { userId, ttlSeconds: 600 }, headers: admin })).body.token;
        const device = await http("GET", coord("/api/device/stream"), { headers: bearer(deviceToken) });
        assert.equal(device.status, 200, JSON.stringify(device.body));
        const publisher = publishTestPattern(device.body.start.rtmpUrl, 120);
        t.after(() => publisher.stop());

        // The emulator's own record of the connect: the input's current status, entered when RTMP connected.
        const connectedAt = await waitFor(
          "the emulator to see the ingest connect",
          async () => {
            const state = await (await fetch(`${stack.emulator}/__emulator/state`)).json();
            const input = state.inputs.find((i) => i.meta?.streamId === stream.streamId);
            const current = input?.connected ? input.status?.current : null;
            return current?.state === "connected" ? Date.parse(current.statusEnteredAt) : null;
          },
          { timeoutMs: 20_000, intervalMs: 20 },
        );
        const liveAt = await waitFor("the badge to turn live", () => page.evaluate(() => window.__liveAt), { timeoutMs: 10_000, intervalMs: 20 });
        const latency = liveAt - connectedAt;
        t.diagnostic(`badge live ${latency} ms after the emulator saw the ingest connect`);
        console.log(`# console: status badge live ${latency} ms after ingest connect`);
        assert.ok(latency <= LIVE_WITHIN_MS, `badge turned live ${latency} ms after the ingest connected (limit ${LIVE_WITHIN_MS} ms)`);
        await page.getByTestId("timeline").getByText("Stream is live").first().waitFor();

        // The picture: hls.js plays the emulator's HLS; currentTime must advance.
        const video = page.getByTestId("player");
        const playing = async () => video.evaluate((v) => ({ t: v.currentTime, paused: v.paused, ready: v.readyState, error: v.error?.message ?? null }));
        const first = await waitFor("the video to start playing", async () => {
          const s = await playing();
          return s.t > 0 && !s.paused ? s : null;
        }, { timeoutMs: 45_000, intervalMs: 250 }).catch(async (error) => {
          error.message += `; video ${JSON.stringify(await playing())}; caption: ${await page.locator(".player figcaption").textContent()}`;
          throw error;
        });
        await waitFor("the video's currentTime to advance by 1 s", async () => (await playing()).t >= first.t + 1, { timeoutMs: 15_000, intervalMs: 250 });
        await page.locator('[data-fact="Ingest"]', { hasText: "connected" }).waitFor({ timeout: 10_000 });
        // The analytics panel draws the stream's timeline (GET /api/streams/:id/analytics, read every 10 s).
        await page.locator('[data-analytics="peakViewers"]', { hasText: "1" }).waitFor({ timeout: 15_000 });
        const points = Number(await page.getByTestId("analytics-timeline").getAttribute("data-points"));
        assert.ok(points >= 1, `timeline points ${points}`);
        assert.ok((await page.locator('[data-testid="analytics-timeline"] polyline').count()) === 1);
        mkdirSync(ARTIFACTS, { recursive: true });
        await page.screenshot({ path: path.join(ARTIFACTS, "console.png"), fullPage: true });
        assert.ok(readFileSync(path.join(ARTIFACTS, "console.png")).length > 10_000);
        t.diagnostic(`screenshot: ${path.relative(root, path.join(ARTIFACTS, "console.png"))}`);
      });

      await t.test("an invalid output URL is a readable error from the API", async () => {
        await page.getByLabel("RTMP URL").fill("http://example.com/key");
        await page.getByRole("button", { name: "Add output" }).click();
        await page.getByText("url must start with rtmp:// or rtmps://", { exact: false }).waitFor({ timeout: 10_000 });
        assert.match(await page.locator(".add-output ~ .error").textContent(), /\(INVALID_URL, HTTP 400\)$/);
      });

      await t.test("adding an output shows it with its status; removing it removes it", async () => {
        const url = `rtmp://127.0.0.1:9/live/console-e2e-${Date.now()}`;
        await page.getByLabel("RTMP URL").fill(url);
        await page.getByLabel("Name (optional)").fill("Console e2e");
        await page.getByLabel("Name (optional)").press("Enter");
        const row = page.locator("table.outputs tbody tr", { hasText: "Console e2e" });
        await row.waitFor({ timeout: 15_000 });
        // The app that added it sees its own URL as the API gives it (other apps see the key masked).
        assert.equal(await row.locator("code.url").textContent(), url);
        const status = await row.locator(".badge").getAttribute("data-status");
        assert.ok(["active", "connecting", "error", "unknown"].includes(status), status);
        await page.getByRole("status").filter({ hasText: "Output added" }).waitFor();
        await page.screenshot({ path: path.join(ARTIFACTS, "console-output.png"), fullPage: true });
        const after = await http("GET", coord(`/api/streams/${stream.streamId}/outputs`), { headers: app.headers });
        assert.equal(after.body.outputs.length, 1);
        assert.equal(await row.getAttribute("data-output-id"), after.body.outputs[0].outputId);

        // Disable, then remove, with the keyboard.
        await page.getByRole("button", { name: "Disable output Console e2e" }).focus();
        await page.keyboard.press("Enter");
        await row.getByText("No", { exact: true }).waitFor({ timeout: 15_000 });
        // "No" can show (a pushed status refreshed the list) before the toggle's own answer is back, while
        // every action button is still disabled; a disabled button takes no focus and Enter would go nowhere.
        await page.getByRole("status").filter({ hasText: "Output disabled" }).waitFor({ timeout: 15_000 });
        const remove = page.getByRole("button", { name: "Remove output Console e2e" });
        await page.waitForFunction((el) => !el.disabled, await remove.elementHandle(), { timeout: 15_000 });
        await remove.focus();
        await page.keyboard.press("Enter");
        await row.waitFor({ state: "detached", timeout: 15_000 });
        await page.getByTestId("no-outputs").waitFor();
        assert.deepEqual((await http("GET", coord(`/api/streams/${stream.streamId}/outputs`), { headers: app.headers })).body.outputs, []);
      });

      await t.test("nothing is fetched from another origin than the coordinator's and the stream's playback host", () => {
        const allowed = new Set([stack.coordinator, stack.emulator]);
        assert.deepEqual([...origins].filter((o) => !allowed.has(o)), []);
        assert.deepEqual(problems.filter((p) => !/Failed to load resource/.test(p)), []);
      });
    }),
  );

  test(
    "the admin sees every running stream with its participants and masked outputs",
    { timeout: 120_000 },
    guarded(async () => {
      const app = await registerApp();
      const stream = await startStream(app, unique("user-console-admin-"));
      const added = await http("POST", coord(`/api/streams/${stream.streamId}/outputs`), {
        body: { url: "rtmp://127.0.0.1:9/live/admin-secret-key", name: "Hidden key" },
        headers: app.headers,
      });
      assert.equal(added.status, 200, JSON.stringify(added.body));
      const listed = await http("GET", coord("/api/admin/streams?limit=50"), { headers: admin });
      assert.equal(listed.status, 200, JSON.stringify(listed.body));
      assert.ok(listed.body.streams.some((s) => s.streamId === stream.streamId));
      const { page, context } = await newPage();
      await page.goto(coord("/console/"));
      await page.getByLabel("Admin token").fill("wrong");
      await page.getByRole("button", { name: "Sign in as admin" }).click();
      await page.locator("#admin-sign-in-error", { hasText: "Invalid admin token (UNAUTHORIZED, HTTP 401)" }).waitFor({ timeout: 10_000 });
      await page.getByLabel("Admin token").fill(admin.authorization.replace("Bearer ", ""));
      await page.getByLabel("Admin token").press("Enter");
      await page.getByTestId("signed-in").filter({ hasText: "Signed in as the admin" }).waitFor({ timeout: 10_000 });
      await page.locator(`button[data-stream-id="${stream.streamId}"]`).click();
      await page.locator('[data-fact="Created by"]', { hasText: app.packageName }).waitFor();
      const row = page.locator("table.outputs tbody tr", { hasText: "Hidden key" });
      await row.waitFor();
      assert.equal(await row.locator("code.url").textContent(), "rtmp://127.0.0.1:9/live/****");
      assert.ok(!(await page.content()).includes("admin-secret-key"));
      // Stopping asks first, then stops through POST /api/admin/streams/:id/stop.
      await page.getByRole("button", { name: "Stop stream…" }).click();
      await page.getByRole("button", { name: "Yes, stop the stream" }).click();
      await page.getByText(`Stream ${stream.streamId}: Stream stopped`).waitFor({ timeout: 20_000 });
      await context.close();
      await sleep(0);
    }),
  );
});
