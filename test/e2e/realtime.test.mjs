// The Realtime SFU room on the real stack (npm start: coordinator + Node emulator with werift media): the
// glasses (ffmpeg VP8 test pattern → RTP → a werift peer) publish through our proxy with their device
// token, an app viewer is told the tracks on its socket (`realtime_tracks`), pulls them through the proxy
// and receives the RTP the emulator's SFU forwards. Every exchange is checked against the served specs.
// Run: `node --test test/e2e/realtime.test.mjs` (needs ffmpeg; skipped without it).
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { admin, bearer, ffmpegAvailable, http, openSocket, startStack, unique, userGrant, waitFor } from "./stack.mjs";
import { publishTestPattern, pullTrack } from "./realtime-peers.mjs";

const SKIP = ffmpegAvailable() ? false : "ffmpeg is not installed";

describe("Realtime SFU room, real media", { skip: SKIP }, () => {
  let stack;
  const cleanups = [];
  before(async () => {
    stack = await startStack();
  });
  after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
    await stack?.stop();
  });

  const sfuSessions = async () => (await (await fetch(`${stack.emulator}/__emulator/realtime`)).json()).sessions;

  async function streamWithGlasses() {
    const C = stack.coordinator;
    const packageName = unique("com.e2e.rt");
    const { body: app } = await http("POST", `${C}/api/admin/apps`, { body: { packageName }, headers: admin });
    const headers = { "x-api-key": app.apiKey, "x-package-name": packageName };
    const userId = unique("user-");
    const grant = await userGrant(C, userId, packageName);
    const started = await http("POST", `${C}/api/streams`, { body: { userId }, headers: { ...headers, "x-user-grant": grant } });
    assert.equal(started.status, 201, JSON.stringify(started.body));
    const { body: token } = await http("POST", `${C}/api/admin/device-tokens`, { body: { userId }, headers: admin });
    const streamId = started.body.streamId;
    const room = (credentials) => async (method, path, body) =>
      http(method, `${C}/api/streams/${streamId}/realtime/${path}`, { ...(body === undefined ? {} : { body }), headers: credentials });
    return { streamId, headers, device: bearer(token.token), asApp: room(headers), asGlasses: room(bearer(token.token)) };
  }

  test("a werift viewer pulls the glasses' track through our proxy after realtime_tracks and receives its RTP", async () => {
    const s = await streamWithGlasses();
    const socket = await openSocket(`${stack.coordinator.replace("http", "ws")}/api/streams/${s.streamId}/ws`, s.headers);
    cleanups.push(() => socket.close());

    const glasses = await publishTestPattern(s.asGlasses, { trackName: "cam" });
    cleanups.push(() => glasses.stop());
    const told = await socket.next("realtime_tracks", (m) => m.type === "realtime_tracks" && m.sessionId === glasses.sessionId, { timeoutMs: 15_000 });
    assert.deepEqual(told.tracks, [{ trackName: "cam", kind: "video" }]);

    const viewer = await pullTrack(s.asApp, told.sessionId, told.tracks[0].trackName).catch(async (error) => {
      // Why the publisher's session was gone at the SFU, when it was.
      const view = await (await fetch(`${stack.emulator}/__emulator/realtime`)).json();
      error.message += `\nSFU dropped: ${JSON.stringify(view.dropped)}; publisher peer: ${glasses.pc.connectionState} (ICE ${glasses.pc.iceConnectionState})`;
      throw error;
    });
    cleanups.push(() => viewer.stop());
    await waitFor("RTP at the viewer", () => viewer.packets() >= 30, { timeoutMs: 20_000 });
    console.log(`viewer: first RTP ${viewer.firstPacketMs()} ms after the pull; ${viewer.packets()} packets`);

    // The emulator forwarded them: publisher's packets received, the viewer's mid forwarded.
    const sessions = await sfuSessions();
    const atViewer = sessions.find((x) => x.sessionId === viewer.sessionId);
    assert.ok(atViewer.media.forwarded[viewer.mid].packets >= 30, JSON.stringify(atViewer.media));
    // The room counts the viewer once (socket and session of one app).
    assert.equal((await http("GET", `${stack.coordinator}/api/streams/${s.streamId}`, { headers: s.headers })).body.viewers, 1);

    // The app leaves: its session is closed at the SFU; the glasses' stays. Then the stop leaves nothing.
    assert.equal((await http("DELETE", `${stack.coordinator}/api/streams/${s.streamId}`, { headers: s.headers })).status, 200);
    assert.deepEqual((await sfuSessions()).map((x) => x.sessionId), [glasses.sessionId]);
    assert.equal((await http("POST", `${stack.coordinator}/api/admin/streams/${s.streamId}/stop`, { headers: admin })).status, 200);
    assert.deepEqual(await sfuSessions(), []);
  });

  test("an app that does not view the stream is refused its pull, and no session is made for it", async () => {
    const s = await streamWithGlasses();
    const glasses = await publishTestPattern(s.asGlasses);
    cleanups.push(() => glasses.stop());
    const before = (await sfuSessions()).length;
    const stranger = unique("com.e2e.stranger");
    const { body: app } = await http("POST", `${stack.coordinator}/api/admin/apps`, { body: { packageName: stranger }, headers: admin });
    const res = await http("POST", `${stack.coordinator}/api/streams/${s.streamId}/realtime/sessions/new`, { headers: { "x-api-key": app.apiKey, "x-package-name": stranger } });
    assert.equal(res.status, 403);
    assert.equal(res.body.error, "NOT_A_VIEWER");
    assert.equal((await sfuSessions()).length, before);
    await http("POST", `${stack.coordinator}/api/admin/streams/${s.streamId}/stop`, { headers: admin });
  });
});
