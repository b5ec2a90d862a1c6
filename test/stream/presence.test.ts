import { env, evictDurableObject } from "cloudflare:test";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { clock, freezeClock, resetClock, shiftClock } from "../../src/clock";
import {
  expireTimer,
  fireAlarm,
  streamTimers,
  call,
  deviceToken,
  emulator,
  emulatorInputs,
  inputFor,
  newUserId,
  openSocket,
  registerApp,
  resetEmulator,
  startStream,
  waitFor,
  type TestApp,
  sharedStream,
  viewerSocket,
} from "../helpers";

beforeEach(resetEmulator);
afterEach(resetClock);

describe("connections", () => {
  it("two apps and a device: status flows to each", async () => {
    const { a, b, userId, s } = await sharedStream();

    const sa = await viewerSocket(s.streamId, a);
    const first = await sa.next("managed_stream_status");
    expect(first).toMatchObject({ status: "preparing", streamId: s.streamId, viewers: 1, outputs: [] });
    for (const field of ["hlsUrl", "dashUrl", "previewUrl", "thumbnailUrl", "message"]) expect(first).toHaveProperty(field);
    // WHEP cannot play an RTMP input, and absent means absent (the SDK's optional fields), never null.
    expect(first).not.toHaveProperty("webrtcUrl");
    expect(Object.values(first)).not.toContain(null);

    const sb = await viewerSocket(s.streamId, b);
    expect(await sb.next("managed_stream_status")).toMatchObject({ viewers: 2 });
    expect(await sa.next("managed_stream_status")).toMatchObject({ viewers: 2 });

    const device = await openSocket(s.streamId, { headers: { authorization: `Bearer ${await deviceToken(userId)}` } });
    const start = await device.next("start_rtmp_stream");
    const input = await inputFor(s.streamId);
    expect(start.rtmpUrl).toBe(`${input.rtmps.url}${input.rtmps.streamKey}`);
    expect(start.appId).toBe("MANAGED_STREAM");
    expect(start.ingest).toBe("rtmp");
    expect(start.stream).toEqual({});

    // Ingest connects at Cloudflare; the next poll observes it and every viewer is told.
    await emulator("POST", `live_inputs/${input.uid}/connect`);
    await expireTimer(s.streamId, "poll-input");
    expect(await sa.next("managed_stream_status")).toMatchObject({ status: "active" });
    expect(await sb.next("managed_stream_status")).toMatchObject({ status: "active" });
    // Apps never see ingest credentials.
    expect(JSON.stringify([...sa.messages, ...sb.messages])).not.toContain(input.rtmps.streamKey);
  });

  it("refuses bad upgrades before accepting them, as JSON", async () => {
    const app = await registerApp();
    const userId = newUserId();
    const s = await startStream(app, userId);
    const path = `/api/streams/${s.streamId}/ws`;
    const upgrade = { upgrade: "websocket" };

    const plain = await call("GET", path, undefined, app.headers);
    expect(plain.status).toBe(426);
    expect(plain.body.error).toBe("UPGRADE_REQUIRED");
    expect((await call("GET", path, undefined, { ...upgrade, "x-api-key": "nope", "x-package-name": app.packageName })).status).toBe(401);
    expect((await call("GET", path, undefined, upgrade)).status).toBe(401);
    expect((await call("GET", `${path}?token=garbage`, undefined, upgrade)).status).toBe(401);
    const otherUser = await call("GET", path, undefined, { ...upgrade, authorization: `Bearer ${await deviceToken(newUserId())}` });
    expect(otherUser.status).toBe(403);
    expect(otherUser.body.error).toBe("FORBIDDEN");
    const unknown = await call("GET", "/api/streams/AAAAAAAAAAAAAAAAAAAAA/ws", undefined, { ...upgrade, ...app.headers });
    expect(unknown.status).toBe(404);
    expect(unknown.body.error).toBe("STREAM_NOT_FOUND");
  });

  it("browsers connect with a single-use ticket", async () => {
    const app = await registerApp();
    const s = await startStream(app);
    const issued = await call("POST", `/api/streams/${s.streamId}/tickets`, undefined, app.headers);
    expect(issued.status).toBe(201);
    const socket = await openSocket(s.streamId, { query: `ticket=${issued.body.ticket}` });
    expect(await socket.next("managed_stream_status")).toMatchObject({ viewers: 1 });
    const reused = await call("GET", `/api/streams/${s.streamId}/ws?ticket=${issued.body.ticket}`, undefined, { upgrade: "websocket" });
    expect(reused.status).toBe(401);
    expect(reused.body.error).toBe("UNAUTHORIZED");
  });
});

describe("presence", () => {
  it("one app with three sockets counts once", async () => {
    const app = await registerApp();
    const s = await startStream(app);
    const sockets = [await viewerSocket(s.streamId, app), await viewerSocket(s.streamId, app), await viewerSocket(s.streamId, app)];
    for (const socket of sockets) expect((await socket.next("managed_stream_status")).viewers).toBe(1);
    expect((await call("GET", `/api/streams/${s.streamId}`, undefined, app.headers)).body.viewers).toBe(1);
    // Closing two of them leaves the app watching.
    sockets[0]!.ws.close(1000);
    sockets[1]!.ws.close(1000);
    await new Promise((r) => setTimeout(r, 100));
    expect((await call("GET", `/api/streams/${s.streamId}`, undefined, app.headers)).body.viewers).toBe(1);
    expect(Object.keys(await streamTimers(s.streamId))).not.toContain("grace");
  });

  it("a reconnecting app gets the current status at once, every time", async () => {
    const app = await registerApp();
    const s = await startStream(app);
    for (let i = 0; i < 3; i++) {
      const socket = await viewerSocket(s.streamId, app);
      expect(await socket.next("managed_stream_status", 1_000)).toMatchObject({ status: "preparing", viewers: 1 });
      socket.ws.close(1000);
      await socket.closed;
    }
  });

  it("keeps presence across eviction with hibernated sockets", async () => {
    const { a, b, s } = await sharedStream();
    const sa = await viewerSocket(s.streamId, a);
    const sb = await viewerSocket(s.streamId, b);
    expect(await sa.next()).toMatchObject({ viewers: 1 });
    expect(await sa.next()).toMatchObject({ viewers: 2 });
    await sb.next();
    await evictDurableObject(env.STREAMS.getByName(s.streamId), { webSockets: "hibernate" });

    expect((await call("GET", `/api/streams/${s.streamId}`, undefined, a.headers)).body.viewers).toBe(2);
    // Identity survives: a message on a hibernated socket is answered for the right app.
    sa.ws.send(JSON.stringify({ type: "stream_status_check" }));
    expect(await sa.next("stream_status_check_response")).toMatchObject({ hasActiveStream: true, streamInfo: { activeViewers: 2, streamId: s.streamId } });
    sb.ws.send(JSON.stringify({ type: "managed_stream_stop" }));
    expect((await sb.closed).code).toBe(1000);
    expect(await sa.next("managed_stream_status")).toMatchObject({ viewers: 1 });
  });

  it("an app leaving never stops the stream for the others", async () => {
    const { a, b, s } = await sharedStream();
    const sa = await viewerSocket(s.streamId, a);
    const sb = await viewerSocket(s.streamId, b);
    await sa.next();
    await sb.next();
    sa.ws.send(JSON.stringify({ type: "managed_stream_stop", packageName: b.packageName }));
    await sa.closed;
    // The body's packageName is ignored: b is still watching.
    expect(await sb.next("managed_stream_status")).toMatchObject({ viewers: 1, status: "preparing" });
    expect(Object.keys(await streamTimers(s.streamId))).not.toContain("grace");
    expect(await emulatorInputs()).toHaveLength(1);
  });

  it("the join window expires through the alarm, then the grace period stops the stream", async () => {
    const app = await registerApp();
    const s = await startStream(app);
    const holdTimer = (Object.keys(await streamTimers(s.streamId))).find((t) => t.startsWith("hold:"));
    expect(holdTimer).toBe(`hold:${app.packageName}`);
    expect(Object.keys(await streamTimers(s.streamId))).not.toContain("grace");

    await expireTimer(s.streamId, holdTimer!);
    expect(Object.keys(await streamTimers(s.streamId))).toContain("grace");
    expect((await call("GET", `/api/streams/${s.streamId}`, undefined, app.headers)).body.status).toBe("preparing");

    await expireTimer(s.streamId, "grace");
    const after = await call("GET", `/api/streams/${s.streamId}`, undefined, app.headers);
    expect(after.body.status).toBe("stopped");
    expect(await emulatorInputs()).toHaveLength(0);
  });

  it("when the last viewer leaves: stopping, the device told to stop, everything deleted, then stopped", async () => {
    const app = await registerApp();
    const userId = newUserId();
    const s = await startStream(app, userId);
    const device = await openSocket(s.streamId, { headers: { authorization: `Bearer ${await deviceToken(userId)}` } });
    await device.next("start_rtmp_stream");
    const socket = await viewerSocket(s.streamId, app);
    await socket.next();
    const watcher = await viewerSocket(s.streamId, app);
    await watcher.next();
    socket.ws.close(1000);
    watcher.ws.close(1000);
    await waitFor(async () => (Object.keys(await streamTimers(s.streamId))).includes("grace"), 10_000, "grace timer");

    // A viewer that comes back within the grace period cancels it.
    const back = await viewerSocket(s.streamId, app);
    await back.next();
    expect(Object.keys(await streamTimers(s.streamId))).not.toContain("grace");
    back.ws.close(1000);
    await waitFor(async () => (Object.keys(await streamTimers(s.streamId))).includes("grace"), 10_000, "grace timer again");

    await expireTimer(s.streamId, "grace");
    expect(await device.next("stop_rtmp_stream")).toMatchObject({ streamId: s.streamId });
    expect((await device.closed).code).toBe(1000);
    expect(await emulatorInputs()).toHaveLength(0);
    expect((await call("GET", `/api/streams/${s.streamId}`, undefined, app.headers)).body.status).toBe("stopped");
  });
});

describe("the glasses channel", () => {
  async function setup() {
    const app = await registerApp();
    const userId = newUserId();
    const s = await startStream(app, userId);
    const v = await viewerSocket(s.streamId, app);
    await v.next();
    const device = await openSocket(s.streamId, { headers: { authorization: `Bearer ${await deviceToken(userId)}` } });
    await device.next("start_rtmp_stream");
    return { app, s, v, device, userId };
  }

  it("three missed keep-alive ACKs are reported truthfully; an ACK restores", async () => {
    const { s, v, device } = await setup();
    let last: { ackId: string } | null = null;
    for (let i = 0; i < 4; i++) {
      await expireTimer(s.streamId, "device-keepalive");
      last = await device.next("keep_rtmp_stream_alive");
      expect(last).toMatchObject({ streamId: s.streamId, ackId: expect.any(String) });
    }
    const lost = await v.next("managed_stream_status");
    expect(lost.status).not.toBe("active");
    expect(lost.message).toContain("keep-alive");
    device.ws.send(JSON.stringify({ type: "keep_alive_ack", ackId: last!.ackId }));
    expect(await v.next("managed_stream_status")).toMatchObject({ status: "preparing", message: expect.stringContaining("Waiting") });
  });

  it("a device-reported error reaches viewers as error, never active", async () => {
    const { s, v, device } = await setup();
    const input = await inputFor(s.streamId);
    await emulator("POST", `live_inputs/${input.uid}/connect`);
    await expireTimer(s.streamId, "poll-input");
    expect(await v.next("managed_stream_status")).toMatchObject({ status: "active" });
    device.ws.send(JSON.stringify({ type: "rtmp_stream_status", status: "error", errorDetails: "camera overheated" }));
    expect(await v.next("managed_stream_status")).toMatchObject({ status: "error", message: expect.stringContaining("camera overheated") });
    device.ws.send(JSON.stringify({ type: "rtmp_stream_status", status: "streaming" }));
    expect(await v.next("managed_stream_status")).toMatchObject({ status: "active" });
  });

  it("glasses that reconnect after an error are trusted again", async () => {
    const { s, v, device, userId } = await setup();
    device.ws.send(JSON.stringify({ type: "rtmp_stream_status", status: "error", errorDetails: "wifi" }));
    expect(await v.next("managed_stream_status")).toMatchObject({ status: "error" });
    device.ws.close(1000);
    await device.closed;
    const again = await openSocket(s.streamId, { headers: { authorization: `Bearer ${await deviceToken(userId)}` } });
    await again.next("start_rtmp_stream");
    expect(await v.next("managed_stream_status")).toMatchObject({ status: "preparing" });
  });
});

describe("bad input on sockets", () => {
  it("invalid JSON, unknown types and schema violations get an error; the socket stays open", async () => {
    const app = await registerApp();
    const userId = newUserId();
    const s = await startStream(app, userId);
    const v = await viewerSocket(s.streamId, app);
    await v.next();
    v.ws.send("{nope");
    expect(await v.next("error")).toMatchObject({ error: "INVALID_JSON" });
    v.ws.send(JSON.stringify({ type: "launch_rockets" }));
    expect(await v.next("error")).toMatchObject({ error: "UNKNOWN_MESSAGE_TYPE" });
    v.ws.send(JSON.stringify([1, 2]));
    expect(await v.next("error")).toMatchObject({ error: "UNKNOWN_MESSAGE_TYPE" });

    const device = await openSocket(s.streamId, { headers: { authorization: `Bearer ${await deviceToken(userId)}` } });
    await device.next("start_rtmp_stream");
    device.ws.send(JSON.stringify({ type: "rtmp_stream_status", status: "exploded" }));
    expect(await device.next("error")).toMatchObject({ error: "INVALID_MESSAGE", message: expect.stringContaining("status") });
    device.ws.send(JSON.stringify({ type: "keep_alive_ack" }));
    expect(await device.next("error")).toMatchObject({ error: "INVALID_MESSAGE" });

    v.ws.send(JSON.stringify({ type: "stream_status_check" }));
    expect(await v.next("stream_status_check_response")).toMatchObject({ streamInfo: { status: "preparing" } });
  });

  it("a message over 64 KiB closes that socket with 1009, and nothing else", async () => {
    const app = await registerApp();
    const s = await startStream(app);
    const [bad, good] = [await viewerSocket(s.streamId, app), await viewerSocket(s.streamId, app)];
    await bad.next();
    await good.next();
    bad.ws.send(JSON.stringify({ type: "stream_status_check", pad: "x".repeat(65 * 1024) }));
    expect((await bad.closed).code).toBe(1009);
    good.ws.send(JSON.stringify({ type: "stream_status_check" }));
    expect(await good.next("stream_status_check_response")).toMatchObject({ streamInfo: { status: "preparing", activeViewers: 1 } });
  });

  it("more than 20 messages a second closes that socket with 1008, and nothing else", async () => {
    const app = await registerApp();
    const s = await startStream(app);
    const [flood, calm] = [await viewerSocket(s.streamId, app), await viewerSocket(s.streamId, app)];
    await flood.next();
    await calm.next();
    for (let i = 0; i < 40; i++) flood.ws.send(JSON.stringify({ type: "stream_status_check" }));
    expect((await flood.closed).code).toBe(1008);
    calm.ws.send(JSON.stringify({ type: "stream_status_check" }));
    expect(await calm.next("stream_status_check_response")).toMatchObject({ streamInfo: { status: "preparing" } });
    expect((await call("GET", `/api/streams/${s.streamId}`, undefined, app.headers)).body.status).toBe("preparing");
  });
});

describe("presence boundaries (the tests' clock, alarms fired on purpose)", () => {
  // Frozen, so "one millisecond before" stays one millisecond before across the awaits.
  beforeEach(() => void freezeClock());
  const statusOf = async (streamId: string, app: TestApp) => (await call("GET", `/api/streams/${streamId}`, undefined, app.headers)).body.status;

  it("the join window holds an app present for JOIN_WINDOW_SECONDS (30 s) without a socket, and not a millisecond more", async () => {
    const app = await registerApp();
    const before = clock.now();
    const s = await startStream(app);
    const after = clock.now();
    const holdAt = (await streamTimers(s.streamId))[`hold:${app.packageName}`]!;
    expect(holdAt).toBe(before + 30_000);
    expect(after).toBe(before);

    shiftClock(holdAt - 1 - clock.now());
    await fireAlarm(s.streamId);
    expect(await streamTimers(s.streamId)).not.toHaveProperty("grace");
    // Still present: the outputs list is for viewers only.
    expect((await call("GET", `/api/streams/${s.streamId}/outputs`, undefined, app.headers)).status).toBe(200);

    shiftClock(1);
    await fireAlarm(s.streamId);
    const timers = await streamTimers(s.streamId);
    expect(timers).not.toHaveProperty(`hold:${app.packageName}`);
    expect(timers.grace).toBe(holdAt + 60_000);
    expect((await call("GET", `/api/streams/${s.streamId}/outputs`, undefined, app.headers)).body.error).toBe("NOT_A_VIEWER");
  });

  it("the grace period is VIEWER_GRACE_SECONDS (60 s) after the last viewer leaves: running just before, stopped just after", async () => {
    const app = await registerApp();
    const s = await startStream(app);
    const v = await viewerSocket(s.streamId, app);
    await v.next();
    // Past the join window, so only the socket keeps the app present.
    shiftClock(31_000);
    await fireAlarm(s.streamId);
    expect(await streamTimers(s.streamId)).not.toHaveProperty("grace");

    const leftAt = clock.now();
    v.ws.close(1000);
    const graceAt = (await waitFor(async () => (await streamTimers(s.streamId)).grace, 10_000, "grace timer"))!;
    expect(graceAt - leftAt).toBe(60_000);

    shiftClock(graceAt - 1 - clock.now());
    await fireAlarm(s.streamId);
    expect(await statusOf(s.streamId, app)).toBe("preparing");
    expect((await streamTimers(s.streamId)).grace).toBe(graceAt);

    shiftClock(1);
    await fireAlarm(s.streamId);
    expect(await statusOf(s.streamId, app)).toBe("stopped");
    expect(await emulatorInputs()).toHaveLength(0);
  });

  it("a viewer ticket works until its expiry (60 s) and is refused from that moment", async () => {
    const app = await registerApp();
    const s = await startStream(app);
    const issue = async () => (await call("POST", `/api/streams/${s.streamId}/tickets`, undefined, app.headers)).body;
    const [first, second] = [await issue(), await issue()];
    const expiresAt = Date.parse(second.expiresAt);
    expect(expiresAt - clock.now()).toBe(60_000);

    shiftClock(Date.parse(first.expiresAt) - 1 - clock.now());
    const socket = await openSocket(s.streamId, { query: `ticket=${first.ticket}` });
    expect(await socket.next("managed_stream_status")).toMatchObject({ viewers: 1 });

    shiftClock(expiresAt - clock.now());
    const late = await call("GET", `/api/streams/${s.streamId}/ws?ticket=${second.ticket}`, undefined, { upgrade: "websocket" });
    expect(late).toMatchObject({ status: 401, body: { error: "UNAUTHORIZED", message: expect.stringContaining("expired") } });
  });

  it("a socket upgrade to an ended stream is 410 STREAM_ENDED, not 404", async () => {
    const app = await registerApp();
    const s = await startStream(app);
    await env.STREAMS.getByName(s.streamId).forceStop();
    const ended = await call("GET", `/api/streams/${s.streamId}/ws`, undefined, { upgrade: "websocket", ...app.headers });
    expect(ended).toMatchObject({ status: 410, body: { error: "STREAM_ENDED", message: "Stream is stopped" } });
  });

  it("glasses are lost after exactly three unanswered keep-alives, not two", async () => {
    const app = await registerApp();
    const userId = newUserId();
    const s = await startStream(app, userId);
    const v = await viewerSocket(s.streamId, app);
    await v.next("managed_stream_status");
    const device = await openSocket(s.streamId, { headers: { authorization: `Bearer ${await deviceToken(userId)}` } });
    await device.next("start_rtmp_stream");
    const keepAliveAt = (await streamTimers(s.streamId))["device-keepalive"]!;
    expect(keepAliveAt - clock.now()).toBe(15_000);
    const tick = async () => {
      shiftClock((await streamTimers(s.streamId))["device-keepalive"]! - clock.now());
      await fireAlarm(s.streamId);
      return device.next("keep_rtmp_stream_alive");
    };
    await tick(); // the first one asked: none missed yet
    await tick(); // 1 missed
    await tick(); // 2 missed
    const seen = v.messages.length;
    await tick(); // 3 missed: lost
    const lost = await v.next("managed_stream_status");
    expect(v.messages.slice(0, seen).some((m) => m.message?.includes("keep-alive"))).toBe(false);
    expect(lost).toMatchObject({ status: "preparing", message: "Glasses stopped answering keep-alives" });
  });
});
