import { env, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { beforeEach, describe, expect, it } from "vitest";
import {
  ADMIN,
  call,
  deviceToken,
  emulator,
  expireTimer,
  grantedHeaders,
  injectFault,
  newUserId,
  openSocket,
  registerApp,
  resetEmulator,
  startStream,
  streamTimers,
  type Json,
  type TestApp,
  restartStreamObject,
} from "../helpers";
import { SDP_OFFER as OFFER } from "../cloudflare/emulated";

/**
 * The stream's Realtime SFU room (src/stream/realtime-calls.ts) against the emulator's SFU
 * (signalling only inside workerd): who may do what, one call at a time per session, per-track
 * errors, the `realtime_tracks` pushes, and cleanup on leave, stop and after a crash.
 */
beforeEach(resetEmulator);


const rt = (streamId: string, path: string) => `/api/streams/${streamId}/realtime/${path}`;
const sfuSessions = async (): Promise<Json[]> => (await emulator("GET", "realtime")).sessions;
const sfuCalls = async (): Promise<Json[]> => (await emulator("GET", "calls")).calls.filter((c: Json) => c.path.startsWith("/v1/"));

interface Room {
  streamId: string;
  userId: string;
  app: TestApp;
  device: Record<string, string>;
}

async function room(): Promise<Room> {
  const app = await registerApp();
  const userId = newUserId();
  const s = await startStream(app, userId);
  return { streamId: s.streamId, userId, app, device: { authorization: `Bearer ${await deviceToken(userId)}` } };
}

/** The glasses open a session and publish a video and an audio track. */
async function publish(r: Room, names = ["cam", "mic"]): Promise<string> {
  const created = await call("POST", rt(r.streamId, "sessions/new"), undefined, r.device);
  expect(created.status, JSON.stringify(created.body)).toBe(201);
  const sessionId = created.body.sessionId;
  const pushed = await call(
    "POST",
    rt(r.streamId, `sessions/${sessionId}/tracks/new`),
    { sessionDescription: { type: "offer", sdp: OFFER }, tracks: [{ location: "local", mid: "0", trackName: names[0] }, { location: "local", mid: "1", trackName: names[1] }] },
    r.device,
  );
  expect(pushed.status, JSON.stringify(pushed.body)).toBe(200);
  expect(pushed.body.sessionDescription.type).toBe("answer");
  return sessionId;
}

async function viewerSession(r: Room, headers = r.app.headers): Promise<string> {
  const created = await call("POST", rt(r.streamId, "sessions/new"), undefined, headers);
  expect(created.status, JSON.stringify(created.body)).toBe(201);
  return created.body.sessionId;
}

const pull = (r: Room, sessionId: string, publisher: string, trackName = "cam", headers = r.app.headers) =>
  call("POST", rt(r.streamId, `sessions/${sessionId}/tracks/new`), { tracks: [{ location: "remote", sessionId: publisher, trackName }] }, headers);


describe("the glasses publish and viewers pull", () => {
  it("a viewer pulls the publisher's track through the room, renegotiates, and sees it in its session", async () => {
    const r = await room();
    const publisher = await publish(r);
    const viewer = await viewerSession(r);
    const pulled = await pull(r, viewer, publisher);
    expect(pulled.status, JSON.stringify(pulled.body)).toBe(200);
    expect(pulled.body.requiresImmediateRenegotiation).toBe(true);
    expect(pulled.body.sessionDescription.type).toBe("offer");
    const mid = pulled.body.tracks[0].mid;
    expect(mid).toBeTruthy();
    const renegotiated = await call("PUT", rt(r.streamId, `sessions/${viewer}/renegotiate`), { sessionDescription: { type: "answer", sdp: OFFER } }, r.app.headers);
    expect(renegotiated.status).toBe(200);
    const state = await call("GET", rt(r.streamId, `sessions/${viewer}`), undefined, r.app.headers);
    expect(state.status).toBe(200);
    expect(state.body.tracks).toEqual([expect.objectContaining({ location: "remote", mid, trackName: "cam", sessionId: publisher, status: "active" })]);
  });

  it("every viewer socket is told the publisher's tracks when they appear and change, and on connect", async () => {
    const r = await room();
    const ws = await openSocket(r.streamId, { headers: r.app.headers });
    const publisher = await publish(r);
    const told = await ws.next("realtime_tracks");
    expect(told).toMatchObject({ sessionId: publisher, tracks: [{ trackName: "cam", kind: "video" }, { trackName: "mic", kind: "audio" }] });

    const late = await openSocket(r.streamId, { headers: r.app.headers });
    expect(await late.next("realtime_tracks")).toMatchObject({ sessionId: publisher, tracks: [{ trackName: "cam" }, { trackName: "mic" }] });

    const closed = await call("PUT", rt(r.streamId, `sessions/${publisher}/tracks/close`), { tracks: [{ mid: "1" }], force: true }, r.device);
    expect(closed.status).toBe(200);
    expect(await ws.next("realtime_tracks")).toMatchObject({ sessionId: publisher, tracks: [{ trackName: "cam", kind: "video" }] });
    await call("PUT", rt(r.streamId, `sessions/${publisher}/tracks/close`), { tracks: [{ mid: "0" }], force: true }, r.device);
    const none = await ws.next("realtime_tracks");
    expect(none.tracks).toEqual([]);
    expect(none).not.toHaveProperty("sessionId");
  });

  it("the glasses' newer session replaces the publisher: the old one is closed at the SFU and viewers are told", async () => {
    const r = await room();
    const ws = await openSocket(r.streamId, { headers: r.app.headers });
    const first = await publish(r);
    await ws.next("realtime_tracks");
    const second = await publish(r, ["cam2", "mic2"]);
    expect(await ws.next("realtime_tracks")).toMatchObject({ sessionId: second, tracks: [{ trackName: "cam2" }, { trackName: "mic2" }] });
    await expireTimer(r.streamId, "realtime-close");
    expect((await sfuSessions()).map((s: Json) => s.sessionId)).toEqual([second]);
    const stale = await pull(r, await viewerSession(r), first);
    expect(stale.status).toBe(404);
    expect(stale.body.error).toBe("TRACK_NOT_FOUND");
  });

  it("ICE servers come from the TURN key, for the glasses and for viewers", async () => {
    const r = await room();
    for (const headers of [r.device, r.app.headers]) {
      const res = await call("GET", rt(r.streamId, "generate-ice-servers"), undefined, headers);
      expect(res.status).toBe(200);
      expect(res.body.iceServers).toEqual(expect.arrayContaining([expect.objectContaining({ username: expect.any(String), credential: expect.any(String) })]));
    }
  });
});

describe("the stream object authorizes every call", () => {
  it("an app that is not a viewer of the stream gets 403 NOT_A_VIEWER, and no session is made", async () => {
    const r = await room();
    const stranger = await registerApp();
    for (const path of ["sessions/new", "generate-ice-servers"]) {
      const res = await call(path === "sessions/new" ? "POST" : "GET", rt(r.streamId, path), undefined, stranger.headers);
      expect(res.status).toBe(403);
      expect(res.body.error).toBe("NOT_A_VIEWER");
    }
    expect(await sfuSessions()).toEqual([]);
  });

  it("an app may not publish: 403 PUBLISH_FORBIDDEN before the SFU is called", async () => {
    const r = await room();
    const session = await viewerSession(r);
    const res = await call(
      "POST",
      rt(r.streamId, `sessions/${session}/tracks/new`),
      { sessionDescription: { type: "offer", sdp: OFFER }, tracks: [{ location: "local", mid: "0", trackName: "fake" }] },
      r.app.headers,
    );
    expect(res.status).toBe(403);
    expect(res.body.error).toBe("PUBLISH_FORBIDDEN");
    expect((await sfuCalls()).filter((c: Json) => c.path.endsWith("/tracks/new"))).toEqual([]);
  });

  it("the glasses do not pull: 403 PULL_FORBIDDEN", async () => {
    const r = await room();
    const publisher = await publish(r);
    const res = await pull(r, publisher, publisher, "cam", r.device);
    expect(res.status).toBe(403);
    expect(res.body.error).toBe("PULL_FORBIDDEN");
  });

  it("a viewer may pull only the publisher's published tracks: another name, another session or another stream's publisher are 404 TRACK_NOT_FOUND", async () => {
    const r = await room();
    const other = await room();
    const publisher = await publish(r);
    const otherPublisher = await publish(other);
    const viewer = await viewerSession(r);
    const before = (await sfuCalls()).length;
    for (const [session, name] of [
      [publisher, "nope"],
      [viewer, "cam"],
      [otherPublisher, "cam"],
    ] as const) {
      const res = await pull(r, viewer, session, name);
      expect(res.status, `${session} ${name}`).toBe(404);
      expect(res.body.error).toBe("TRACK_NOT_FOUND");
    }
    expect((await sfuCalls()).length).toBe(before);
  });

  it("a session belongs to whoever created it: another app, or the glasses, get 404 SESSION_NOT_FOUND and change nothing", async () => {
    const r = await room();
    const publisher = await publish(r);
    const viewer = await viewerSession(r);
    const second = await registerApp();
    expect((await call("POST", "/api/streams", { userId: r.userId }, await grantedHeaders(second, r.userId))).status).toBe(200);
    const attempts: Array<[string, string, unknown, Record<string, string>]> = [
      ["GET", `sessions/${viewer}`, undefined, second.headers],
      ["PUT", `sessions/${viewer}/tracks/close`, { tracks: [{ mid: "0" }], force: true }, second.headers],
      ["PUT", `sessions/${publisher}/tracks/close`, { tracks: [{ mid: "0" }], force: true }, r.app.headers],
      ["PUT", `sessions/${viewer}/renegotiate`, { sessionDescription: { type: "answer", sdp: OFFER } }, r.device],
      ["GET", `sessions/unknown-session`, undefined, r.app.headers],
    ];
    for (const [method, path, body, headers] of attempts) {
      const res = await call(method, rt(r.streamId, path), body, headers);
      expect(res.status, `${method} ${path}`).toBe(404);
      expect(res.body.error).toBe("SESSION_NOT_FOUND");
    }
    const at = (await sfuSessions()).find((s: Json) => s.sessionId === publisher);
    expect(at.tracks.map((t: Json) => t.trackName)).toEqual(["cam", "mic"]);
  });

  it("the glasses of another user get 403 FORBIDDEN; an expired or missing device token 401", async () => {
    const r = await room();
    const foreign = { authorization: `Bearer ${await deviceToken(newUserId())}` };
    const res = await call("POST", rt(r.streamId, "sessions/new"), undefined, foreign);
    expect(res.status).toBe(403);
    expect(res.body.error).toBe("FORBIDDEN");
    const expired = await call("POST", "/api/admin/device-tokens", { userId: r.userId, ttlSeconds: 60 }, ADMIN);
    const { shiftClock, resetClock } = await import("../../src/clock");
    shiftClock(120_000);
    try {
      const late = await call("POST", rt(r.streamId, "sessions/new"), undefined, { authorization: `Bearer ${expired.body.token}` });
      expect(late.status).toBe(401);
      expect(late.body.error).toBe("UNAUTHORIZED");
    } finally {
      resetClock();
    }
    expect((await call("POST", rt(r.streamId, "sessions/new"))).status).toBe(401);
  });

  it("bad bodies are 400 before the SFU is called: not SDP, a mid the offer lacks, more than 64 tracks", async () => {
    const r = await room();
    const session = (await call("POST", rt(r.streamId, "sessions/new"), undefined, r.device)).body.sessionId;
    const path = rt(r.streamId, `sessions/${session}/tracks/new`);
    const bad = await call("POST", path, { sessionDescription: { type: "offer", sdp: "hello" }, tracks: [{ location: "local", mid: "0", trackName: "x" }] }, r.device);
    expect(bad.status).toBe(400);
    expect(bad.body.error).toBe("INVALID_REQUEST");
    const noMid = await call("POST", path, { sessionDescription: { type: "offer", sdp: OFFER }, tracks: [{ location: "local", mid: "7", trackName: "x" }] }, r.device);
    expect(noMid.status).toBe(400);
    expect(noMid.body.error).toBe("INVALID_SDP");
    const tracks = Array.from({ length: 65 }, (_, i) => ({ location: "remote", sessionId: "s", trackName: `t${i}` }));
    const many = await call("POST", path, { tracks }, r.device);
    expect(many.status).toBe(400);
    expect((await call("POST", path, "{not json", r.device)).body.error).toBe("INVALID_JSON");
    expect((await sfuCalls()).filter((c: Json) => c.path.endsWith("/tracks/new"))).toEqual([]);
  });
});

describe("calls on one session run one at a time", () => {
  it("a second call on a session starts only after the first has answered; another session's call does not wait", async () => {
    const r = await room();
    const publisher = await publish(r);
    const viewer = await viewerSession(r);
    const other = await viewerSession(r);
    await injectFault({ method: "GET", path: `/v1/apps/*/sessions/${viewer}`, delayMs: 400, count: 1 });
    await emulator("DELETE", "calls");
    const [slow, queued, elsewhere] = await Promise.all([
      call("GET", rt(r.streamId, `sessions/${viewer}`), undefined, r.app.headers),
      (async () => {
        await new Promise((resolve) => setTimeout(resolve, 50));
        return pull(r, viewer, publisher);
      })(),
      (async () => {
        await new Promise((resolve) => setTimeout(resolve, 50));
        return pull(r, other, publisher);
      })(),
    ]);
    expect([slow.status, queued.status, elsewhere.status]).toEqual([200, 200, 200]);
    const calls = await sfuCalls();
    const get = calls.find((c: Json) => c.method === "GET" && c.path.endsWith(viewer));
    const mine = calls.find((c: Json) => c.path.endsWith(`${viewer}/tracks/new`));
    const theirs = calls.find((c: Json) => c.path.endsWith(`${other}/tracks/new`));
    const end = (c: Json) => Date.parse(c.time) + c.durationMs;
    expect(Date.parse(mine.time)).toBeGreaterThanOrEqual(end(get));
    expect(Date.parse(theirs.time)).toBeLessThan(end(get));
  });
});

describe("SFU failures reach the caller as clear errors", () => {
  it("a per-track errorCode inside a 200 is 409 REALTIME_TRACK_FAILED naming the track and code", async () => {
    const r = await room();
    const publisher = await publish(r);
    const viewer = await viewerSession(r);
    // The publisher's peer vanished at the SFU, but the room has not audited yet.
    await emulator("DELETE", `realtime/sessions/${publisher}`);
    const res = await pull(r, viewer, publisher);
    expect(res.status).toBe(409);
    expect(res.body.error).toBe("REALTIME_TRACK_FAILED");
    expect(res.body.message).toContain('"cam": track_not_found');
  });

  it("tracks the SFU did make in a call that partly failed are closed again", async () => {
    const r = await room();
    const publisher = await publish(r);
    const viewer = await viewerSession(r);
    await injectFault({
      method: "POST",
      path: `/v1/apps/*/sessions/${viewer}/tracks/new`,
      status: 200,
      count: 1,
      body: { requiresImmediateRenegotiation: true, tracks: [{ trackName: "cam", sessionId: publisher, mid: "9" }, { trackName: "mic", errorCode: "internal", errorDescription: "boom" }] },
    });
    await emulator("DELETE", "calls");
    const res = await call(
      "POST",
      rt(r.streamId, `sessions/${viewer}/tracks/new`),
      { tracks: [{ location: "remote", sessionId: publisher, trackName: "cam" }, { location: "remote", sessionId: publisher, trackName: "mic" }] },
      r.app.headers,
    );
    expect(res.status).toBe(409);
    expect(res.body.message).toContain('"mic": internal (boom)');
    expect((await sfuCalls()).map((c: Json) => `${c.method} ${c.path.split("/").slice(-2).join("/")}`)).toEqual(["POST tracks/new", "PUT tracks/close"]);
  });

  it("a timeout or a 5xx is 502 REALTIME_ERROR, a 4xx 400 REALTIME_REFUSED, a 429 is 429 with Retry-After", async () => {
    const r = await room();
    await injectFault({ method: "POST", path: "/v1/apps/*/sessions/new", delayMs: 2_500, count: 1 });
    const slow = await call("POST", rt(r.streamId, "sessions/new"), undefined, r.app.headers);
    expect(slow.status).toBe(502);
    expect(slow.body).toMatchObject({ error: "REALTIME_ERROR", message: expect.stringContaining("timed out") });
    await injectFault({ method: "POST", path: "/v1/apps/*/sessions/new", status: 500, count: 1 });
    expect((await call("POST", rt(r.streamId, "sessions/new"), undefined, r.app.headers)).body.error).toBe("REALTIME_ERROR");
    await injectFault({ method: "POST", path: "/v1/apps/*/sessions/new", status: 400, count: 1, body: { errorCode: "invalid_request", errorDescription: "bad" } });
    const refused = await call("POST", rt(r.streamId, "sessions/new"), undefined, r.app.headers);
    expect(refused.status).toBe(400);
    expect(refused.body).toMatchObject({ error: "REALTIME_REFUSED", message: expect.stringContaining("invalid_request: bad") });
    await injectFault({ method: "POST", path: "/v1/apps/*/sessions/new", status: 429, retryAfter: 3, count: 1 });
    const limited = await call("POST", rt(r.streamId, "sessions/new"), undefined, r.app.headers);
    expect(limited.status).toBe(429);
    expect(limited.headers.get("retry-after")).toBe("3");
  });

  it("a session the SFU no longer has is forgotten by the room at the first call that finds out", async () => {
    const r = await room();
    const viewer = await viewerSession(r);
    await emulator("DELETE", `realtime/sessions/${viewer}`);
    expect((await call("GET", rt(r.streamId, `sessions/${viewer}`), undefined, r.app.headers)).body.error).toBe("SESSION_NOT_FOUND");
    const left = await runInDurableObject(env.STREAMS.getByName(r.streamId), (_i, state) => state.storage.sql.exec("SELECT session_id FROM realtime_sessions").toArray());
    expect(left).toEqual([]);
  });
});

describe("room presence and cleanup", () => {
  it("an app with a room session counts as a viewer, even without a socket", async () => {
    const r = await room();
    await publish(r);
    const before = (await call("GET", `/api/streams/${r.streamId}`, undefined, r.app.headers)).body.viewers;
    expect(before).toBe(0);
    await viewerSession(r);
    expect((await call("GET", `/api/streams/${r.streamId}`, undefined, r.app.headers)).body.viewers).toBe(1);
  });

  it("an app that leaves has its sessions closed at the SFU; the stream's others stay", async () => {
    const r = await room();
    const publisher = await publish(r);
    const viewer = await viewerSession(r);
    expect((await pull(r, viewer, publisher)).status).toBe(200);
    const left = await call("DELETE", `/api/streams/${r.streamId}`, undefined, r.app.headers);
    expect(left.status).toBe(200);
    expect((await sfuSessions()).map((s: Json) => s.sessionId)).toEqual([publisher]);
    expect(left.body.viewers).toBe(0);
  });

  it("a stopped stream leaves no SFU session behind, and refuses room calls with 409 STREAM_ENDED", async () => {
    const r = await room();
    const publisher = await publish(r);
    const viewer = await viewerSession(r);
    await pull(r, viewer, publisher);
    expect((await call("POST", `/api/admin/streams/${r.streamId}/stop`, undefined, ADMIN)).status).toBe(200);
    expect(await sfuSessions()).toEqual([]);
    const after = await call("POST", rt(r.streamId, "sessions/new"), undefined, r.device);
    expect(after.status).toBe(409);
    expect(after.body.error).toBe("STREAM_ENDED");
  });

  it("a stop whose SFU close fails stays stopping and closes the sessions on its retry", async () => {
    const r = await room();
    const publisher = await publish(r);
    await injectFault({ method: "PUT", path: "/v1/apps/*/sessions/*/tracks/close", status: 503, count: 1 });
    await call("POST", `/api/admin/streams/${r.streamId}/stop`, undefined, ADMIN);
    expect((await sfuSessions()).map((s: Json) => s.sessionId)).toEqual([publisher]);
    expect((await call("GET", `/api/streams/${r.streamId}`, undefined, r.app.headers)).body.stoppedAt).toBeNull();
    await expireTimer(r.streamId, "cleanup");
    expect(await sfuSessions()).toEqual([]);
    expect((await call("GET", `/api/streams/${r.streamId}`, undefined, r.app.headers)).body.status).toBe("stopped");
  });

  it("after a crash the wake audit forgets sessions whose peers vanished and tells viewers the publisher is gone", async () => {
    const r = await room();
    const ws = await openSocket(r.streamId, { headers: r.app.headers });
    const publisher = await publish(r);
    await ws.next("realtime_tracks");
    const viewer = await viewerSession(r);
    // While the object was down, both peers went away.
    await emulator("DELETE", `realtime/sessions/${publisher}`);
    await emulator("DELETE", `realtime/sessions/${viewer}`);
    await restartStreamObject(r.streamId);
    // The wake made the audit due now (its alarm may already have run it: then the timer is gone).
    const timers = await streamTimers(r.streamId);
    expect(timers["realtime-audit"] ?? 0).toBeLessThanOrEqual(Date.now());
    await runInDurableObject(env.STREAMS.getByName(r.streamId), (_i, state) => state.storage.setAlarm(Date.now() + 60_000));
    await runDurableObjectAlarm(env.STREAMS.getByName(r.streamId));
    const told = await ws.next("realtime_tracks");
    expect(told.tracks).toEqual([]);
    const rows = await runInDurableObject(env.STREAMS.getByName(r.streamId), (_i, state) => state.storage.sql.exec("SELECT session_id FROM realtime_sessions").toArray());
    expect(rows).toEqual([]);
  });

  it("50 viewer sessions churned with a crash in the middle leave 0 sessions at the SFU", async () => {
    const r = await room();
    const publisher = await publish(r);
    const apps = [r.app];
    for (let i = 0; i < 4; i++) {
      const app = await registerApp();
      expect((await call("POST", "/api/streams", { userId: r.userId }, await grantedHeaders(app, r.userId))).status).toBe(200);
      apps.push(app);
    }
    const viewers: Array<{ app: TestApp; sessionId: string }> = [];
    for (let i = 0; i < 50; i++) {
      if (i === 25) await restartStreamObject(r.streamId); // the object crashes and starts again mid-churn
      const app = apps[i % apps.length]!;
      const sessionId = await viewerSession(r, app.headers);
      expect((await pull(r, sessionId, publisher, "cam", app.headers)).status).toBe(200);
      // The viewer answers the SFU's offer, as a real one does: the emulator drops a session never
      // negotiated 30 s after it was made (in real time), which under load is shorter than this test.
      const answered = await call("PUT", rt(r.streamId, `sessions/${sessionId}/renegotiate`), { sessionDescription: { type: "answer", sdp: OFFER } }, app.headers);
      expect(answered.status).toBe(200);
      viewers.push({ app, sessionId });
      // Every third viewer closes its track and then goes (its PeerConnection closes: the SFU drops the
      // session); every seventh vanishes without a word. The room learns of both only from the SFU.
      if (i % 3 === 0) await call("PUT", rt(r.streamId, `sessions/${sessionId}/tracks/close`), { tracks: [{ mid: "p0" }] }, app.headers);
      if (i % 3 === 0 || i % 7 === 0) await emulator("DELETE", `realtime/sessions/${sessionId}`);
    }
    const gone = [...Array(50).keys()].filter((i) => i % 3 === 0 || i % 7 === 0).length;
    expect((await sfuSessions()).length).toBe(1 + 50 - gone);
    // Two apps leave; then the audit notices the vanished ones; then the stream stops.
    for (const app of apps.slice(0, 2)) await call("DELETE", `/api/streams/${r.streamId}`, undefined, app.headers);
    await expireTimer(r.streamId, "realtime-audit");
    const remaining = await runInDurableObject(env.STREAMS.getByName(r.streamId), (_i, state) =>
      state.storage.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM realtime_sessions").one().n,
    );
    expect(remaining).toBe((await sfuSessions()).length);
    await call("POST", `/api/admin/streams/${r.streamId}/stop`, undefined, ADMIN);
    expect(await sfuSessions()).toEqual([]);
  }, 90_000);
});
