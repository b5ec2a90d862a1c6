import { beforeEach, describe, expect, it } from "vitest";
import { RealtimeApi, RealtimeCallError } from "../../src/cloudflare/realtime-api";
import { ApiError } from "../../src/http/errors";
import { calls, control, injectFault, resetEmulator, SDP_OFFER as OFFER, testConfig, type Json } from "./emulated";

/** The Realtime SFU and TURN client (src/cloudflare/realtime-api.ts) against the emulator's SFU (/v1). */
let api: RealtimeApi;
beforeEach(async () => {
  await resetEmulator();
  api = new RealtimeApi(testConfig());
});

const SESSIONS = "/v1/apps/local-realtime-app/sessions";
const rejection = (p: Promise<unknown>) => p.then(() => expect.unreachable("should have thrown"), (e: unknown) => e as RealtimeCallError);
const ok = (body: unknown) => ({ status: 200, body });

/** A publishing session with two local tracks (video "cam", audio "mic"). */
async function publisher(): Promise<string> {
  const { sessionId } = await api.newSession();
  const answer = await api.newTracks(sessionId, [{ location: "local", mid: "0", trackName: "cam" }, { location: "local", mid: "1", trackName: "mic" }], { type: "offer", sdp: OFFER });
  expect(answer.sessionDescription?.type).toBe("answer");
  return sessionId;
}

describe("sessions and tracks", () => {
  it("a session is opened, publishes local tracks, and lists them", async () => {
    const sessionId = await publisher();
    const state = await api.getSession(sessionId);
    expect(state.tracks.map((t) => [t.location, t.mid, t.trackName])).toEqual([
      ["local", "0", "cam"],
      ["local", "1", "mic"],
    ]);
    expect(state.tracks[0]!.status).toEqual(expect.any(String));
  });

  it("a session opened with an offer is answered", async () => {
    const opened = await api.newSession({ type: "offer", sdp: OFFER });
    expect(opened.sessionId).toEqual(expect.any(String));
    expect(opened.sessionDescription?.type).toBe("answer");
    expect(opened.sessionDescription?.sdp).toEqual(expect.any(String));
  });

  it("a viewer pulls a publisher's track as a remote track, renegotiates, and closes it", async () => {
    const source = await publisher();
    const { sessionId } = await api.newSession();
    const pulled = await api.newTracks(sessionId, [{ location: "remote", sessionId: source, trackName: "cam" }]);
    expect(pulled.requiresImmediateRenegotiation).toBe(true);
    expect(pulled.sessionDescription?.type).toBe("offer");
    expect(pulled.tracks).toEqual([expect.objectContaining({ sessionId: source, trackName: "cam", mid: expect.any(String) })]);
    const mid = pulled.tracks[0]!.mid!;
    expect(await api.renegotiate(sessionId, { type: "answer", sdp: OFFER })).toEqual({});
    const closed = await api.closeTracks(sessionId, [mid], false);
    expect(closed.requiresImmediateRenegotiation).toBe(false);
    expect(closed.tracks).toEqual([{ mid }]);
    expect((await api.getSession(sessionId)).tracks).toEqual([]);
  });

  it("the emulator's control view says which sessions the SFU dropped, and why; a reset forgets them", async () => {
    const forced = await publisher();
    await api.closeTracks(forced, ["0", "1"], true);
    const vanished = await publisher();
    await control("DELETE", `realtime/sessions/${vanished}`);
    const view = await control("GET", "realtime");
    expect(view.sessions).toEqual([]);
    expect(view.dropped).toEqual([
      { sessionId: forced, why: "its last track was closed with force", at: expect.any(String) },
      { sessionId: vanished, why: "dropped through /__emulator/realtime", at: expect.any(String) },
    ]);
    await resetEmulator();
    expect((await control("GET", "realtime")).dropped).toEqual([]);
  });

  it("the control view keeps the last 50 dropped sessions, the oldest let go first", async () => {
    const ids: string[] = [];
    for (let i = 0; i < 51; i++) {
      const { sessionId } = await api.newSession();
      await control("DELETE", `realtime/sessions/${sessionId}`);
      ids.push(sessionId);
    }
    expect((await control("GET", "realtime")).dropped.map((d: Json) => d.sessionId)).toEqual(ids.slice(1));
  });

  it("a track the SFU refuses inside a 200 is reported per track, with its code and description", async () => {
    const { sessionId } = await api.newSession();
    const answer = await api.newTracks(sessionId, [{ location: "remote", sessionId: "no-such-session", trackName: "cam" }]);
    expect(answer.tracks[0]).toMatchObject({ trackName: "cam", errorCode: "track_not_found", errorDescription: expect.stringContaining("cam") });
  });

  it("a session gone at the SFU is SESSION_NOT_FOUND with upstream 404, for callers to treat as an answer", async () => {
    const error = await rejection(api.getSession("gone"));
    expect(error).toBeInstanceOf(RealtimeCallError);
    expect(error).toMatchObject({ status: 404, code: "SESSION_NOT_FOUND", upstreamStatus: 404 });
    expect(error.message).toBe("Cloudflare Realtime has no such session (session_not_found: Session gone does not exist)");
  });

  it("a call the SFU refuses (4xx) is 400 REALTIME_REFUSED with its code and description", async () => {
    const { sessionId } = await api.newSession();
    const error = await rejection(api.newTracks(sessionId, []));
    expect(error).toMatchObject({ status: 400, code: "REALTIME_REFUSED", upstreamStatus: 400 });
    expect(error.message).toBe("Cloudflare Realtime refused the call: invalid_request: tracks must be a non-empty array");
  });

  it("session ids are sent encoded in the path", async () => {
    await control("DELETE", "calls");
    await rejection(api.getSession("a/b c"));
    expect((await calls()).at(-1)).toBe(`GET ${SESSIONS}/a%2Fb%20c 404`);
  });

  it("the app's id and secret authenticate each call: a wrong secret is REALTIME_ERROR (our configuration), not a refusal", async () => {
    const wrong = new RealtimeApi(testConfig({ REALTIME_APP_SECRET: "not-the-secret" }));
    expect(await rejection(wrong.newSession())).toMatchObject({ status: 502, code: "REALTIME_ERROR", upstreamStatus: 401 });
  });
});

describe("faults", () => {
  it("a 5xx or a 403 is 502 REALTIME_ERROR with the SFU's status and detail", async () => {
    await injectFault({ method: "POST", path: `${SESSIONS}/new`, status: 503 });
    const error = await rejection(api.newSession());
    expect(error).toMatchObject({ status: 502, code: "REALTIME_ERROR", upstreamStatus: 503 });
    expect(error.message).toMatch(/^Cloudflare Realtime returned /);
    await injectFault({ method: "POST", path: `${SESSIONS}/new`, status: 403, body: { errorCode: "forbidden", errorDescription: "no" } });
    const forbidden = await rejection(api.newSession());
    expect(forbidden).toMatchObject({ status: 502, code: "REALTIME_ERROR", upstreamStatus: 403, message: "Cloudflare Realtime returned forbidden: no" });
    await injectFault({ method: "POST", path: `${SESSIONS}/new`, status: 500, body: { errorCode: "oops" } });
    expect((await rejection(api.newSession())).message).toBe("Cloudflare Realtime returned oops");
    await injectFault({ method: "POST", path: `${SESSIONS}/new`, status: 500, body: {} });
    expect((await rejection(api.newSession())).message).toBe("Cloudflare Realtime returned HTTP 500");
  });

  it("a 499 is still a refusal, a 500 already an error", async () => {
    await injectFault({ method: "POST", path: `${SESSIONS}/new`, status: 499, body: {} });
    expect(await rejection(api.newSession())).toMatchObject({ status: 400, code: "REALTIME_REFUSED", upstreamStatus: 499, message: "Cloudflare Realtime refused the call: HTTP 499" });
    await injectFault({ method: "POST", path: `${SESSIONS}/new`, status: 500, body: {} });
    expect(await rejection(api.newSession())).toMatchObject({ status: 502, code: "REALTIME_ERROR" });
    await injectFault({ method: "POST", path: `${SESSIONS}/new`, status: 400, body: {} });
    expect(await rejection(api.newSession())).toMatchObject({ status: 400, code: "REALTIME_REFUSED", upstreamStatus: 400, message: "Cloudflare Realtime refused the call: HTTP 400" });
  });

  it("a 429 is 429 RATE_LIMITED with the SFU's retry-after, 1 s when it gives none", async () => {
    await injectFault({ method: "POST", path: `${SESSIONS}/new`, status: 429, retryAfter: 9 });
    expect(await rejection(api.newSession())).toMatchObject({
      status: 429,
      code: "RATE_LIMITED",
      upstreamStatus: 429,
      retryAfter: 9,
      message: "Cloudflare Realtime is rate limiting this session; retry shortly",
    });
    await injectFault({ method: "POST", path: `${SESSIONS}/new`, status: 429 });
    expect(await rejection(api.newSession())).toMatchObject({ status: 429, retryAfter: 1 });
  });

  it("a dropped connection is 502 REALTIME_ERROR 'unreachable', no upstream status", async () => {
    await injectFault({ method: "POST", path: `${SESSIONS}/new`, drop: true });
    const error = await rejection(api.newSession());
    expect(error).toMatchObject({ status: 502, code: "REALTIME_ERROR", upstreamStatus: undefined, message: "Cloudflare Realtime unreachable" });
  });

  it("no answer within CLOUDFLARE_TIMEOUT_MS is 502 REALTIME_ERROR 'timed out'", async () => {
    // A host that never answers (the emulator in Node does not see the caller's abort, so it cannot stand in):
    // only the client's own timeout signal ends the call.
    const quick = new RealtimeApi(testConfig({ CLOUDFLARE_TIMEOUT_MS: "100" }));
    const realFetch = globalThis.fetch;
    globalThis.fetch = (_input: RequestInfo | URL, init?: RequestInit) =>
      new Promise<Response>((_resolve, reject) => init?.signal?.addEventListener("abort", () => reject(init.signal!.reason)));
    try {
      expect(await rejection(quick.newSession())).toMatchObject({ status: 502, code: "REALTIME_ERROR", upstreamStatus: undefined, message: "Cloudflare Realtime timed out" });
    } finally {
      globalThis.fetch = realFetch;
    }
  });

  it("a top-level errorCode inside a 200 is a refusal", async () => {
    await injectFault({ method: "POST", path: `${SESSIONS}/new`, ...ok({ errorCode: "bad_thing", errorDescription: "nope", sessionId: "s" }) });
    expect(await rejection(api.newSession())).toMatchObject({ status: 400, code: "REALTIME_REFUSED", upstreamStatus: 200, message: "Cloudflare Realtime refused the call: bad_thing: nope" });
    await injectFault({ method: "POST", path: `${SESSIONS}/new`, ...ok({ errorCode: "", sessionId: "s" }) });
    expect((await api.newSession()).sessionId).toBe("s");
  });

  it("an answer that is not an object, or a session without an id, is 502 REALTIME_ERROR (malformed)", async () => {
    for (const body of ["just a string", 42]) {
      await injectFault({ method: "POST", path: `${SESSIONS}/new`, ...ok(body) });
      const error = await rejection(api.newSession());
      expect(error).toMatchObject({ status: 502, code: "REALTIME_ERROR", upstreamStatus: 200, message: "Cloudflare Realtime answered with a body that is not an object" });
    }
    for (const body of [{}, { sessionId: "" }, { sessionId: 7 }]) {
      await injectFault({ method: "POST", path: `${SESSIONS}/new`, ...ok(body) });
      expect(await rejection(api.newSession())).toMatchObject({ status: 502, code: "REALTIME_ERROR", message: "Cloudflare Realtime sessions/new answered without a sessionId" });
    }
  });

  /** Runs `fn` with every SFU call answered by `answer`: bodies the emulator never sends (empty, not JSON, a bare null). */
  async function withSfu(answer: (init?: RequestInit) => Promise<Response>, fn: () => Promise<void>): Promise<void> {
    const realFetch = globalThis.fetch;
    globalThis.fetch = (_input: RequestInfo | URL, init?: RequestInit) => answer(init);
    try {
      await fn();
    } finally {
      globalThis.fetch = realFetch;
    }
  }

  it("an empty 200 body is an empty object: a close answers no tracks, a session has no id (malformed)", async () => {
    await withSfu(async () => new Response("", { status: 200 }), async () => {
      expect(await api.closeTracks("s", ["0"], true)).toEqual({ requiresImmediateRenegotiation: false, tracks: [] });
      expect(await rejection(api.newSession())).toMatchObject({ code: "REALTIME_ERROR", message: "Cloudflare Realtime sessions/new answered without a sessionId" });
    });
  });

  it("a 200 whose body is not JSON, or is a bare null, is 502 REALTIME_ERROR (malformed), never a crash", async () => {
    await withSfu(async () => new Response("<html>", { status: 200 }), async () => {
      expect(await rejection(api.getSession("s"))).toMatchObject({ status: 502, code: "REALTIME_ERROR", upstreamStatus: 200, message: "Cloudflare Realtime answered 200 with a body that is not JSON" });
    });
    await withSfu(async () => new Response("null", { status: 200 }), async () => {
      const error = await rejection(api.newSession());
      expect(error).toBeInstanceOf(RealtimeCallError);
      expect(error).toMatchObject({ message: "Cloudflare Realtime answered with a body that is not an object" });
    });
  });

  it("an error answer whose body is not JSON is judged by its status alone", async () => {
    await withSfu(async () => new Response("<html>bad gateway</html>", { status: 502 }), async () => {
      expect(await rejection(api.newSession())).toMatchObject({ status: 502, code: "REALTIME_ERROR", upstreamStatus: 502, message: "Cloudflare Realtime returned HTTP 502" });
    });
    await withSfu(async () => new Response("nope", { status: 404 }), async () => {
      expect(await rejection(api.getSession("s"))).toMatchObject({ status: 404, code: "SESSION_NOT_FOUND" });
    });
  });

  it("a call aborted on the way (AbortError) is 'timed out' too; any other throw is 'unreachable'", async () => {
    await withSfu(async () => Promise.reject(new DOMException("aborted", "AbortError")), async () => {
      expect((await rejection(api.newSession())).message).toBe("Cloudflare Realtime timed out");
    });
    await withSfu(async () => Promise.reject(new DOMException("x", "NetworkError")), async () => {
      expect((await rejection(api.newSession())).message).toBe("Cloudflare Realtime unreachable");
    });
  });
});

describe("what is read from an answer", () => {
  it("a session description is kept only when it is a well-formed offer or answer", async () => {
    for (const [sessionDescription, kept] of [
      [{ type: "offer", sdp: "x" }, true],
      [{ type: "answer", sdp: "x" }, true],
      [{ type: "pranswer", sdp: "x" }, false],
      [{ type: "offer" }, false],
      [{ type: "answer", sdp: 5 }, false],
      [null, false],
    ] as const) {
      await injectFault({ method: "POST", path: `${SESSIONS}/new`, ...ok({ sessionId: "s", sessionDescription }) });
      expect(await api.newSession()).toEqual(kept ? { sessionId: "s", sessionDescription } : { sessionId: "s" });
    }
  });

  it("tracks keep only their string fields and a known location; non-objects are dropped; no list is no tracks", async () => {
    const { sessionId } = await api.newSession();
    const path = `${SESSIONS}/${sessionId}`;
    const track = { location: "remote", mid: "3", trackName: "cam", sessionId: "src", status: "active", errorCode: "e", errorDescription: "d", extra: 1 };
    await injectFault({ method: "GET", path, ...ok({ tracks: [track, null, "x", { mid: 4, location: "elsewhere", trackName: "t" }, { location: "local" }] }) });
    expect(await api.getSession(sessionId)).toEqual({
      tracks: [{ location: "remote", mid: "3", trackName: "cam", sessionId: "src", status: "active", errorCode: "e", errorDescription: "d" }, { trackName: "t" }, { location: "local" }],
    });
    await injectFault({ method: "GET", path, ...ok({ tracks: "none" }) });
    expect(await api.getSession(sessionId)).toEqual({ tracks: [] });
  });

  it("requiresImmediateRenegotiation is true only when the SFU says true", async () => {
    const { sessionId } = await api.newSession();
    const path = `${SESSIONS}/${sessionId}/tracks/close`;
    await injectFault({ method: "PUT", path, ...ok({ requiresImmediateRenegotiation: "yes", tracks: [] }) });
    expect(await api.closeTracks(sessionId, ["0"], true)).toEqual({ requiresImmediateRenegotiation: false, tracks: [] });
    await injectFault({ method: "PUT", path, ...ok({ requiresImmediateRenegotiation: true, tracks: [], sessionDescription: { type: "offer", sdp: "o" } }) });
    expect(await api.closeTracks(sessionId, ["0"], true)).toEqual({ requiresImmediateRenegotiation: true, sessionDescription: { type: "offer", sdp: "o" }, tracks: [] });
  });
});

describe("what is sent", () => {
  it("a close sends the mids, force and the description; a new session without an offer sends no body", async () => {
    const seen: Json[] = [];
    const realFetch = globalThis.fetch;
    globalThis.fetch = async (input: RequestInfo | URL, init?: RequestInit) => {
      const request = new Request(input, init);
      seen.push({ method: request.method, url: request.url, type: request.headers.get("content-type"), auth: request.headers.get("authorization"), body: await request.clone().text() });
      return realFetch(request);
    };
    try {
      const { sessionId } = await api.newSession();
      await api.closeTracks(sessionId, ["0", "1"], true, { type: "offer", sdp: "o" }).catch(() => undefined);
      await api.closeTracks(sessionId, ["0"], false).catch(() => undefined);
      await api.newTracks(sessionId, [{ location: "local", mid: "0", trackName: "cam" }]).catch(() => undefined);
    } finally {
      globalThis.fetch = realFetch;
    }
    expect(seen[0]).toMatchObject({ method: "POST", type: null, auth: "Bearer local-realtime-secret", body: "" });
    expect(JSON.parse(seen[1].body)).toEqual({ tracks: [{ mid: "0" }, { mid: "1" }], force: true, sessionDescription: { type: "offer", sdp: "o" } });
    expect(seen[1]).toMatchObject({ method: "PUT", type: "application/json" });
    expect(JSON.parse(seen[2].body)).toEqual({ tracks: [{ mid: "0" }], force: false });
    expect(JSON.parse(seen[3].body)).toEqual({ tracks: [{ location: "local", mid: "0", trackName: "cam" }] });
  });
});

describe("configuration", () => {
  it("without an app id or secret, rooms are disabled (503 REALTIME_DISABLED) and nothing is sent", async () => {
    for (const overrides of [{ REALTIME_APP_ID: "" }, { REALTIME_APP_SECRET: "" }] as Record<string, string>[]) {
      const off = new RealtimeApi(testConfig(overrides));
      expect(off.enabled).toBe(false);
      await control("DELETE", "calls");
      const error = await rejection(Promise.resolve().then(() => off.newSession()));
      expect(error).toBeInstanceOf(ApiError);
      expect(error).toMatchObject({ status: 503, code: "REALTIME_DISABLED" });
      expect(await calls()).toEqual([]);
    }
    expect(api.enabled).toBe(true);
  });

  it("the disabled answer says what to configure", async () => {
    const error = await rejection(Promise.resolve().then(() => new RealtimeApi(testConfig({ REALTIME_APP_ID: "" })).newSession()));
    expect(error.message).toBe("Realtime rooms are disabled: REALTIME_APP_ID and REALTIME_APP_SECRET are not configured");
  });

  it("a trailing slash on the base URL is dropped", async () => {
    const slashed = new RealtimeApi(testConfig({ REALTIME_API_BASE_URL: "http://stream-emulator.test/v1//" }));
    expect((await slashed.newSession()).sessionId).toEqual(expect.any(String));
  });
});

describe("ICE servers", () => {
  it("TURN credentials from the TURN key, with the configured time to live", async () => {
    const ttl = 600;
    const servers = await new RealtimeApi(testConfig({ TURN_CREDENTIAL_TTL_SECONDS: String(ttl) })).iceServers();
    expect(servers.some((s) => s.username && s.credential)).toBe(true);
    const turn = servers.find((s) => s.username)!;
    const expiry = Number(turn.username!.split(":")[0]);
    expect(expiry - Math.floor(Date.now() / 1000)).toBeGreaterThan(ttl - 60);
    expect(expiry - Math.floor(Date.now() / 1000)).toBeLessThanOrEqual(ttl + 1);
  });

  it("STUN only without a TURN key or its token, and nothing is sent", async () => {
    for (const overrides of [{ TURN_KEY_ID: "" }, { TURN_KEY_API_TOKEN: "" }] as Record<string, string>[]) {
      await control("DELETE", "calls");
      expect(await new RealtimeApi(testConfig(overrides)).iceServers()).toEqual([{ urls: ["stun:stun.cloudflare.com:3478", "stun:stun.cloudflare.com:53"] }]);
      expect(await calls()).toEqual([]);
    }
  });

  it("entries without urls are dropped; an answer without a list is malformed", async () => {
    const path = "/v1/turn/keys/local-turn-key/credentials/generate-ice-servers";
    await injectFault({ method: "POST", path, ...ok({ iceServers: [{ urls: "stun:a" }, { username: "u" }, null, "x"] }) });
    expect(await api.iceServers()).toEqual([{ urls: "stun:a" }]);
    await injectFault({ method: "POST", path, ...ok({ iceServers: "none" }) });
    expect(await rejection(api.iceServers())).toMatchObject({ status: 502, code: "REALTIME_ERROR", message: "Cloudflare Realtime generate-ice-servers answered without iceServers" });
  });
});
