// WebRTC ingest end to end on the `npm start` stack, with real media and no browser: a stream started with
// `ingest: "webrtc"` hands the glasses its WHIP URL; a WHIP publisher (ffmpeg's H.264 test pattern over RTP into
// a werift peer, emulator/webrtc/clients.ts) makes it active for a viewer app; a werift WHEP viewer at the
// stream's webrtcUrl receives its RTP and keyframes (its keyframe request reaches the publisher); outputs are
// refused by us and fail at the emulator as at Cloudflare; a DELETE, or a publisher that closes without one,
// ends the broadcast. Run: `node --test test/e2e/webrtc-ingest.test.mjs`.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { register } from "tsx/esm/api";
import { admin, bearer, ffmpegAvailable, http, openSocket, startStack, unique, userGrant, waitFor } from "./stack.mjs";

// The werift test clients are TypeScript (emulator/webrtc/clients.ts): `npm test` runs plain `node --test`.
register();

const HAVE_FFMPEG = ffmpegAvailable();
const TOKEN = "local-dev-token";
let stack;
let clients;
let failed = false;
const cleanups = [];

async function registerApp() {
  const packageName = unique("com.e2e.webrtc.").toLowerCase();
  const res = await http("POST", `${stack.coordinator}/api/admin/apps`, { body: { packageName }, headers: admin });
  assert.equal(res.status, 201);
  return { packageName, headers: { "x-api-key": res.body.apiKey, "x-package-name": packageName } };
}

async function startWebrtcStream(app, userId) {
  const grant = await userGrant(stack.coordinator, userId, app.packageName);
  const res = await http("POST", `${stack.coordinator}/api/streams`, { body: { userId, ingest: "webrtc" }, headers: { ...app.headers, "x-user-grant": grant } });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  return res.body;
}

async function whipUrlFor(userId) {
  const token = (await http("POST", `${stack.coordinator}/api/admin/device-tokens`, { body: { userId }, headers: admin })).body.token;
  const res = await http("GET", `${stack.coordinator}/api/device/stream`, { headers: bearer(token) });
  assert.equal(res.status, 200);
  assert.equal(res.body.start.ingest, "webrtc");
  assert.equal(res.body.start.rtmpUrl, undefined);
  return res.body.start.whipUrl;
}

const emulatorState = async () => (await http("GET", `${stack.emulator}/__emulator/state`)).body;
const ingestSessions = async () => (await http("GET", `${stack.emulator}/__emulator/ingest`)).body;
const viewerSocket = async (app, streamId) => {
  const socket = await openSocket(`${stack.coordinator.replace(/^http/, "ws")}/api/streams/${streamId}/ws`, app.headers);
  cleanups.push(async () => socket.close());
  await socket.next("first status", (m) => m.type === "managed_stream_status");
  return socket;
};
const guarded = (fn) => async (t) => {
  try {
    await fn(t);
  } catch (error) {
    failed = true;
    throw error;
  }
};

describe("WebRTC ingest (npm start stack)", { skip: !HAVE_FFMPEG && "ffmpeg is not installed", timeout: 240_000 }, () => {
  before(async () => {
    clients = await import("../../emulator/webrtc/clients.ts");
    stack = await startStack({ POLL_SLOW_SECONDS: "2" });
  }, { timeout: 150_000 });

  after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
    if (!stack) return;
    await stack.stop(10_000);
    if (failed) console.error(`--- stack output ---\n${stack.output()}`);
  });

  test(
    "a WHIP publish makes the stream active for a viewer within 1 s; a WHEP viewer gets its frames; outputs fail as at Cloudflare; DELETE ends it",
    guarded(async (t) => {
      const app = await registerApp();
      const userId = unique("user-webrtc-");
      const s = await startWebrtcStream(app, userId);
      assert.equal(s.ingestProtocol, "webrtc");
      assert.equal(s.hlsUrl, null);
      assert.match(s.webrtcUrl, /\/webRTC\/play$/);
      const socket = await viewerSocket(app, s.streamId);

      const publisher = await clients.publishTestPatternOverWhip(await whipUrlFor(userId), { seconds: 60 });
      cleanups.push(() => publisher.close());
      const answeredAt = Date.now();
      const states = [];
      publisher.pc.connectionStateChange.subscribe((state) => states.push(`${state}@${Date.now() - answeredAt}`));
      publisher.pc.iceConnectionStateChange.subscribe((state) => states.push(`ice:${state}@${Date.now() - answeredAt}`));
      t.after(() => t.diagnostic(`publisher peer: ${states.join(" ")}`));
      const input = await waitFor("the live input to connect over WHIP", async () => {
        const ours = (await emulatorState()).inputs.find((i) => i.meta?.streamId === s.streamId);
        return ours?.connected ? ours : null;
      }, { timeoutMs: 30_000, intervalMs: 20 });
      const connectedAt = Date.now();
      const active = await socket.next("the stream to go active", (m) => m.type === "managed_stream_status" && m.status === "active", 10_000);
      t.diagnostic(`WHIP answered → input connected ${connectedAt - answeredAt} ms; connected → viewer app told active ${active.receivedAt - connectedAt} ms`);
      assert.ok(active.receivedAt - connectedAt < 1000, `active within 1 s of the WHIP connect (took ${active.receivedAt - connectedAt} ms)`);
      assert.equal(active.webrtcUrl, s.webrtcUrl);
      assert.equal(active.hlsUrl, undefined);

      // Viewer: WHEP at the stream's webrtcUrl (the emulator stands in for the customer host under npm start).
      const viewer = await clients.watchOverWhep(s.webrtcUrl);
      cleanups.push(() => viewer.close());
      await waitFor("the WHEP viewer to receive RTP and a keyframe", async () => viewer.stats().keyframes > 0 && viewer.stats().packets > 30, { timeoutMs: 10_000 });
      assert.ok(publisher.keyframeRequests() >= 1, "the viewer's keyframe request was relayed to the publisher");
      const sessions = await ingestSessions();
      assert.deepEqual(sessions.whip.map((x) => [x.inputUid, x.state, x.viewers]), [[input.uid, "connected", 1]]);
      assert.deepEqual(sessions.whep.map((x) => [x.inputUid, x.state]), [[input.uid, "connected"]]);

      // Outputs: we refuse them; one made at the emulator directly fails as Cloudflare's would (never relays).
      const refused = await http("POST", `${stack.coordinator}/api/streams/${s.streamId}/outputs`, { body: { url: "rtmp://127.0.0.1:1/live/key" }, headers: app.headers });
      assert.equal(refused.status, 409);
      assert.equal(refused.body.error, "OUTPUTS_UNSUPPORTED");
      const api = `${stack.emulator}/client/v4/accounts/local-account/stream/live_inputs`;
      const direct = await fetch(`${api}/${input.uid}/outputs`, { method: "POST", headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" }, body: JSON.stringify({ url: "rtmp://127.0.0.1:1/live", streamKey: "k" }) });
      assert.equal(direct.status, 200);
      const relay = (await emulatorState()).inputs.find((i) => i.uid === input.uid).outputs[0].relay;
      assert.equal(relay.state, "error");
      assert.match(relay.lastError, /WebRTC/);
      // A WHIP input plays over WHEP only.
      assert.equal((await fetch(`${stack.emulator}/playback/${input.uid}/manifest/video.m3u8`)).status, 404);

      await viewer.close();
      await publisher.close();
      await socket.next("the stream to leave active", (m) => m.type === "managed_stream_status" && m.status !== "active", 10_000);
      await waitFor("no WHIP or WHEP session left", async () => {
        const left = await ingestSessions();
        return left.whip.length === 0 && left.whep.length === 0;
      }, { timeoutMs: 5_000 });
    }),
  );

  test(
    "a publisher that closes without a DELETE is noticed and the broadcast ends",
    guarded(async (t) => {
      const app = await registerApp();
      const userId = unique("user-webrtc-");
      const s = await startWebrtcStream(app, userId);
      const socket = await viewerSocket(app, s.streamId);
      const publisher = await clients.publishTestPatternOverWhip(await whipUrlFor(userId), { seconds: 30 });
      cleanups.push(() => publisher.close());
      await socket.next("active", (m) => m.type === "managed_stream_status" && m.status === "active", 30_000);
      const t0 = Date.now();
      publisher.vanish();
      await publisher.pc.close();
      const ours = (await emulatorState()).inputs.find((i) => i.meta?.streamId === s.streamId);
      await waitFor("the emulator to notice the publisher is gone", async () => !(await emulatorState()).inputs.find((i) => i.uid === ours.uid).connected, { timeoutMs: 20_000, intervalMs: 100 });
      // Media silence (5 s after the last packet, 10 s if none came), well before ICE consent's 30 s.
      assert.ok(Date.now() - t0 < 15_000, "noticed by media silence, not ICE consent");
      t.diagnostic(`a publisher gone without a DELETE was noticed after ${Date.now() - t0} ms`);
      const told = await socket.next("the stream to leave active", (m) => m.type === "managed_stream_status" && m.status !== "active", 10_000);
      assert.match(told.message, /./);
      assert.deepEqual((await ingestSessions()).whip.filter((x) => x.inputUid === ours.uid), []);
    }),
  );

  test(
    "bad WHIP/WHEP requests get their status codes and change nothing",
    guarded(async () => {
      const app = await registerApp();
      const userId = unique("user-webrtc-");
      const s = await startWebrtcStream(app, userId);
      const whip = await whipUrlFor(userId);
      const post = (url, body, type = "application/sdp") => fetch(url, { method: "POST", headers: { "content-type": type }, body });
      assert.equal((await post(whip, "v=0\r\n", "application/json")).status, 415);
      assert.equal((await post(whip, "not sdp")).status, 400);
      assert.equal((await post(whip.replace(/\/playback\/[^/]+\//, "/playback/wrongsecret/"), "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n")).status, 404);
      // WHEP before anything is published over WHIP: refused, no session made.
      const early = await post(s.webrtcUrl, "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n");
      assert.equal(early.status, 409);
      assert.equal((await early.json()).error, "NOT_LIVE_OVER_WHIP");
      const ours = (await emulatorState()).inputs.find((i) => i.meta?.streamId === s.streamId);
      const sessions = await ingestSessions();
      assert.deepEqual([...sessions.whip, ...sessions.whep].filter((x) => x.inputUid === ours.uid), []);
      assert.equal(ours.connected, false);
    }),
  );
});
