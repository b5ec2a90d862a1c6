import { SELF, env, runInDurableObject } from "cloudflare:test";
import { SignJWT } from "jose";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { clock, resetClock, shiftClock } from "../../src/clock";
import type { Env } from "../../src/env";
import worker from "../../src/index";
import {
  ADMIN,
  call,
  deviceToken,
  emulatorInputs,
  inputFor,
  newUserId,
  openSocket,
  registerApp,
  resetEmulator,
  startStream,
  userGrant,
  type Json,
  type TestApp,
} from "../helpers";

/**
 * User grants are on by default (REQUIRE_USER_GRANT unset): an app may start, join, view or restream a
 * user's stream only after joining it with the platform's grant for that user and that app.
 */
beforeEach(resetEmulator);
afterEach(resetClock);

const GRANT_TTL_S = 60;

/** Every way an app (`app`) can fail to hold a valid grant for `userId`: the header to send, if any. */
const badGrants: Array<[string, (userId: string, app: TestApp) => Promise<string | null>]> = [
  ["no grant", async () => null],
  ["a malformed grant", async () => "not-a-grant"],
  ["a grant for another user", async (_userId, app) => userGrant(newUserId(), app)],
  ["a grant for another app", async (userId) => userGrant(userId, await registerApp())],
  [
    "an expired grant",
    async (userId, app) => {
      const token = await userGrant(userId, app, GRANT_TTL_S);
      shiftClock((GRANT_TTL_S + 1) * 1000);
      return token;
    },
  ],
  ["the user's device token", async (userId) => deviceToken(userId)],
  ["a token signed with our key for another audience", async (userId, app) => signedGrant(userId, app, env.DEVICE_TOKEN_SECRET as string, "stream-coordinator:device")],
  ["a grant signed with another key", async (userId, app) => signedGrant(userId, app, "some-other-secret-0123456789", "stream-coordinator:user-grant")],
];

/** A grant-shaped token (subject = user, `pkg` = app) signed with `secret` for `audience`. */
function signedGrant(userId: string, app: TestApp, secret: string, audience: string): Promise<string> {
  return new SignJWT({ pkg: app.packageName })
    .setProtectedHeader({ alg: "HS256" })
    .setSubject(userId)
    .setAudience(audience)
    .setExpirationTime(Math.floor(clock.now() / 1000) + 3600)
    .sign(new TextEncoder().encode(secret));
}

const withGrant = (app: TestApp, token: string | null) => (token === null ? app.headers : { ...app.headers, "x-user-grant": token });

/** A viewer-socket upgrade that is expected to be refused: its status and JSON body. */
async function refusedUpgrade(streamId: string, init: { headers?: Record<string, string>; query?: string }) {
  const res = await SELF.fetch(`http://coordinator.test/api/streams/${streamId}/ws${init.query ? `?${init.query}` : ""}`, {
    headers: { upgrade: "websocket", ...init.headers },
  });
  if (res.status === 101) res.webSocket?.accept();
  res.webSocket?.close(1000, "test done");
  return { status: res.status, body: res.status === 101 ? null : ((await res.json()) as Json) };
}

describe("user grants: start and join", () => {
  for (const [name, grantFor] of badGrants) {
    it(`${name}: an app cannot start a user's stream (403 USER_NOT_GRANTED, nothing created)`, async () => {
      const app = await registerApp();
      const userId = newUserId();
      const token = await grantFor(userId, app);
      const res = await call("POST", "/api/streams", { userId, restreamDestinations: [{ url: "rtmp://evil.example.com/live/k" }] }, withGrant(app, token));
      expect(res).toMatchObject({ status: 403, body: { error: "USER_NOT_GRANTED", message: expect.any(String) } });
      expect(await emulatorInputs()).toEqual([]);
    });

    it(`${name}: an app cannot join a user's running stream (403 USER_NOT_GRANTED, not a participant)`, async () => {
      const [owner, intruder] = [await registerApp(), await registerApp()];
      const userId = newUserId();
      const s = await startStream(owner, userId);
      const token = await grantFor(userId, intruder);
      const res = await call("POST", "/api/streams", { userId, restreamDestinations: [{ url: "rtmp://evil.example.com/live/k" }] }, withGrant(intruder, token));
      expect(res).toMatchObject({ status: 403, body: { error: "USER_NOT_GRANTED" } });
      expect((await call("GET", `/api/streams/${s.streamId}`, undefined, intruder.headers)).body.error).toBe("STREAM_NOT_FOUND");
      expect((await inputFor(s.streamId)).outputs).toEqual([]);
    });
  }

  it("with its own grant for the user, an app starts, and another app joins with its own", async () => {
    const [a, b] = [await registerApp(), await registerApp()];
    const userId = newUserId();
    const started = await call("POST", "/api/streams", { userId }, withGrant(a, await userGrant(userId, a)));
    expect(started.status).toBe(201);
    const joined = await call("POST", "/api/streams", { userId }, withGrant(b, await userGrant(userId, b)));
    expect(joined).toMatchObject({ status: 200, body: { streamId: started.body.streamId, created: false } });
  });
});

describe("user grants: an app that did not join cannot view or restream", () => {
  /** `owner` joined the user's stream with a grant and added an output; `intruder` is a granted app of another user. */
  async function scene() {
    const [owner, intruder] = [await registerApp(), await registerApp()];
    const userId = newUserId();
    const s = await startStream(owner, userId);
    // The intruder is a legitimate app elsewhere: it holds a grant for (and runs) another user's stream.
    await startStream(intruder, newUserId());
    const added = await call("POST", `/api/streams/${s.streamId}/outputs`, { url: "rtmp://live.example.com/app/owner-key" }, owner.headers);
    expect(added.status).toBe(200);
    return { owner, intruder, streamId: s.streamId as string, outputId: added.body.outputId as string };
  }

  it("cannot open a viewer socket with its API key (403 NOT_A_PARTICIPANT)", async () => {
    const { owner, intruder, streamId } = await scene();
    expect(await refusedUpgrade(streamId, { headers: intruder.headers })).toMatchObject({ status: 403, body: { error: "NOT_A_PARTICIPANT" } });
    // The owner, who joined with a grant, can.
    const viewer = await openSocket(streamId, { headers: owner.headers });
    expect((await viewer.next("managed_stream_status")).viewers).toBe(1);
    viewer.ws.close();
  });

  it("cannot get a ticket (404 STREAM_NOT_FOUND); the owner's ticket works", async () => {
    const { owner, intruder, streamId } = await scene();
    expect(await call("POST", `/api/streams/${streamId}/tickets`, undefined, intruder.headers)).toMatchObject({
      status: 404,
      body: { error: "STREAM_NOT_FOUND" },
    });
    const ticket = await call("POST", `/api/streams/${streamId}/tickets`, undefined, owner.headers);
    expect(ticket.status).toBe(201);
    const viewer = await openSocket(streamId, { query: `ticket=${ticket.body.ticket}` });
    expect((await viewer.next("managed_stream_status")).streamId).toBe(streamId);
    viewer.ws.close();
  });

  it("cannot view with a ticket made out to it without a join (403 NOT_A_PARTICIPANT)", async () => {
    const { intruder, streamId } = await scene();
    // However such a ticket came to exist, redeeming it still needs the join.
    const ticket = "tk_forged0123456789abcdefghijklmnopq";
    await runInDurableObject(env.STREAMS.getByName(streamId), (_instance, state) => {
      state.storage.sql.exec("INSERT INTO tickets (ticket, package_name, expires_at) VALUES (?, ?, ?)", ticket, intruder.packageName, clock.now() + 60_000);
    });
    expect(await refusedUpgrade(streamId, { query: `ticket=${ticket}` })).toMatchObject({ status: 403, body: { error: "NOT_A_PARTICIPANT" } });
  });

  it("cannot read or leave the stream (404 STREAM_NOT_FOUND)", async () => {
    const { intruder, streamId } = await scene();
    expect((await call("GET", `/api/streams/${streamId}`, undefined, intruder.headers)).body.error).toBe("STREAM_NOT_FOUND");
    expect((await call("DELETE", `/api/streams/${streamId}`, undefined, intruder.headers)).body.error).toBe("STREAM_NOT_FOUND");
  });

  it("cannot list or add outputs (403 NOT_A_VIEWER); nothing reaches Cloudflare", async () => {
    const { intruder, streamId } = await scene();
    const path = `/api/streams/${streamId}/outputs`;
    expect(await call("GET", path, undefined, intruder.headers)).toMatchObject({ status: 403, body: { error: "NOT_A_VIEWER" } });
    const added = await call("POST", path, { url: "rtmp://evil.example.com/live/stolen" }, intruder.headers);
    expect(added).toMatchObject({ status: 403, body: { error: "NOT_A_VIEWER" } });
    expect((await inputFor(streamId)).outputs.map((o: Json) => o.streamKey)).toEqual(["owner-key"]);
  });

  it("cannot disable or delete the owner's output (403 NOT_AUTHORIZED)", async () => {
    const { intruder, streamId, outputId } = await scene();
    const path = `/api/streams/${streamId}/outputs/${outputId}`;
    expect(await call("PATCH", path, { enabled: false }, intruder.headers)).toMatchObject({ status: 403, body: { error: "NOT_AUTHORIZED" } });
    expect(await call("DELETE", path, undefined, intruder.headers)).toMatchObject({ status: 403, body: { error: "NOT_AUTHORIZED" } });
    expect((await inputFor(streamId)).outputs).toMatchObject([{ streamKey: "owner-key", enabled: true }]);
  });
});

describe("user grants: what a join lasts", () => {
  it("a grant admits the app into the stream: after it expires the app still views and restreams, but cannot join again", async () => {
    const app = await registerApp();
    const userId = newUserId();
    const token = await userGrant(userId, app, GRANT_TTL_S);
    const started = await call("POST", "/api/streams", { userId, recording: { mode: "off" } }, withGrant(app, token));
    expect(started.status).toBe(201);
    const streamId = started.body.streamId;
    const first = await openSocket(streamId, { headers: app.headers });
    await first.next("managed_stream_status");

    shiftClock((GRANT_TTL_S + 1) * 1000);
    // Still a participant of this stream: a reconnect and a restream need no fresh grant.
    const second = await openSocket(streamId, { headers: app.headers });
    await second.next("managed_stream_status");
    expect((await call("POST", `/api/streams/${streamId}/outputs`, { url: "rtmp://live.example.com/app/later" }, app.headers)).status).toBe(200);
    // A new start or join is checked again.
    expect((await call("POST", "/api/streams", { userId }, withGrant(app, token))).body.error).toBe("USER_NOT_GRANTED");
    first.ws.close();
    second.ws.close();
  });
});

describe("REQUIRE_USER_GRANT", () => {
  /** The Worker as deployed with REQUIRE_USER_GRANT=`value` (the stream objects take the check from it). */
  async function deployedWith(value: string, method: string, path: string, headers: Record<string, string>, body?: unknown) {
    const request = new Request(`http://coordinator.test${path}`, {
      method,
      headers: { ...headers, ...(body === undefined ? {} : { "content-type": "application/json" }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const res = await worker.fetch(request, { ...env, REQUIRE_USER_GRANT: value } as unknown as Env, {} as ExecutionContext);
    if (res.status === 101) {
      res.webSocket!.accept();
      res.webSocket!.close(1000, "test done");
      return { status: 101, body: null };
    }
    return { status: res.status, body: (await res.json()) as Json };
  }

  it("=false (one trusted app): any registered app starts, joins, views and restreams without a grant", async () => {
    const [a, b] = [await registerApp(), await registerApp()];
    const userId = newUserId();
    const started = await deployedWith("false", "POST", "/api/streams", a.headers, { userId });
    expect(started.status).toBe(201);
    const streamId = started.body.streamId;
    // B never joined: with the opt-out, opening a socket makes it a participant.
    expect((await deployedWith("false", "GET", `/api/streams/${streamId}/ws`, { ...b.headers, upgrade: "websocket" })).status).toBe(101);
    expect((await deployedWith("false", "GET", `/api/streams/${streamId}`, b.headers)).status).toBe(200);
    expect((await deployedWith("false", "POST", "/api/streams", b.headers, { userId })).status).toBe(200);
    expect((await deployedWith("false", "POST", `/api/streams/${streamId}/outputs`, b.headers, { url: "rtmp://live.example.com/app/b" })).status).toBe(200);
  });

  for (const value of ["true", "", "FALSE", "False", "0", "no", " false"]) {
    it(`=${JSON.stringify(value)} keeps grants required`, async () => {
      const app = await registerApp();
      expect(await deployedWith(value, "POST", "/api/streams", app.headers, { userId: newUserId() })).toMatchObject({
        status: 403,
        body: { error: "USER_NOT_GRANTED" },
      });
    });
  }

  it("is not set in the test bindings or wrangler.jsonc to anything but the secure default", () => {
    expect([undefined, "true"]).toContain(env.REQUIRE_USER_GRANT);
  });
});

// The admin endpoint that mints grants is admin-only.
describe("POST /api/admin/user-grants", () => {
  it("needs the admin token and a valid body", async () => {
    const app = await registerApp();
    expect((await call("POST", "/api/admin/user-grants", { userId: "u", packageName: app.packageName })).status).toBe(401);
    expect((await call("POST", "/api/admin/user-grants", { userId: "u" }, ADMIN)).body.error).toBe("INVALID_REQUEST");
    const res = await call("POST", "/api/admin/user-grants", { userId: "u", packageName: app.packageName, ttlSeconds: 600 }, ADMIN);
    expect(res).toMatchObject({ status: 201, body: { userId: "u", packageName: app.packageName, token: expect.any(String), expiresAt: expect.any(String) } });
  });
});
