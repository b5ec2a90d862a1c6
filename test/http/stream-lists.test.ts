import { env, runInDurableObject } from "cloudflare:test";
import { beforeEach, describe, expect, it } from "vitest";
import { recordInputStream, streamIdForInput } from "../../src/cloudflare/live-input-index";
import { ADMIN, call, expireTimer, newUserId, postStream, registerApp, resetEmulator, startStream, type Json, type TestApp } from "../helpers";

/**
 * GET /api/streams (an app's streams, from the index in its AppAccount) and GET /api/admin/streams (every
 * running stream, from the live-input index's shards): newest first, paged by cursor, bad input a clear
 * 400, and index entries whose stream is gone dropped without a short page.
 */

beforeEach(resetEmulator);

const list = (app: TestApp, query = "") => call("GET", `/api/streams${query}`, undefined, app.headers);
const adminList = (query = "") => call("GET", `/api/admin/streams${query}`, undefined, ADMIN);

/** Every page of a list, following nextCursor; fails on a repeat or on a page that is short but not the last. */
async function allPages(get: (query: string) => Promise<Json>, limit: number): Promise<Json[]> {
  const seen: Json[] = [];
  let cursor: string | null = null;
  for (let page = 0; page < 100; page++) {
    const res: Json = await get(`?limit=${limit}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    seen.push(...res.body.streams);
    cursor = res.body.nextCursor;
    if (cursor === null) return seen;
    expect(res.body.streams).toHaveLength(limit);
  }
  throw new Error("more than 100 pages");
}

describe("GET /api/streams", () => {
  it("lists the app's streams, newest join first, with each stream's snapshot, user and join time", async () => {
    const app = await registerApp();
    expect((await list(app)).body).toEqual({ streams: [], nextCursor: null });
    const users = [newUserId(), newUserId(), newUserId()];
    const started: Json[] = [];
    for (const userId of users) started.push(await startStream(app, userId));
    const res = await list(app);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toContain("application/json");
    expect(res.body.nextCursor).toBeNull();
    expect(res.body.streams.map((s: Json) => s.streamId)).toEqual(started.map((s) => s.streamId).reverse());
    const [newest] = res.body.streams;
    expect(newest).toMatchObject({ streamId: started[2].streamId, userId: users[2], status: "preparing", ingest: "idle", hlsUrl: started[2].hlsUrl });
    expect(Date.parse(newest.joinedAt)).toBeGreaterThan(0);
    // The snapshot's own fields, nothing of other apps or ingest secrets.
    expect(Object.keys(newest).sort()).toEqual([...Object.keys(started[2]).filter((k) => k !== "created"), "userId", "joinedAt"].sort());
  });

  it("pages with limit and cursor: every stream exactly once, in order, full pages until the last", async () => {
    const app = await registerApp();
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await startStream(app)).streamId);
    const first = await list(app, "?limit=2");
    expect(first.body.streams).toHaveLength(2);
    expect(first.body.nextCursor).toEqual(expect.any(String));
    const pages = await allPages((q) => list(app, q), 2);
    expect(pages.map((s) => s.streamId)).toEqual(ids.reverse());
    // limit defaults to 20 and the last page says so.
    expect((await list(app)).body.streams).toHaveLength(5);
    expect((await list(app, "?limit=5")).body.nextCursor).toBeNull();
  });

  it("shows an app only the streams it joined; a joining app sees the stream from its join", async () => {
    const [a, b] = [await registerApp(), await registerApp()];
    const userId = newUserId();
    const shared = await startStream(a, userId);
    const own = await startStream(a);
    expect((await list(b)).body.streams).toEqual([]);
    const joined = await postStream(b, { userId });
    expect(joined.status).toBe(200);
    const bList = (await list(b)).body.streams;
    expect(bList.map((s: Json) => s.streamId)).toEqual([shared.streamId]);
    expect(bList[0].userId).toBe(userId);
    expect((await list(a)).body.streams.map((s: Json) => s.streamId)).toEqual([own.streamId, shared.streamId]);
  });

  it("keeps a stopped stream, shown stopped, and drops one whose stream is gone without a short page", async () => {
    const app = await registerApp();
    const kept = await startStream(app);
    const stopped = await startStream(app);
    expect((await call("POST", `/api/admin/streams/${stopped.streamId}/stop`, undefined, ADMIN)).status).toBe(200);
    // Two entries whose streams never existed (as after a purge whose end notice was lost), newest of all.
    const account = env.APPS.getByName(app.packageName);
    const ghosts = ["ghostghostghostghost1", "ghostghostghostghost2"];
    await account.recordStreams(ghosts.map((streamId) => ({ streamId, userId: "user-ghost", joinedAt: Date.now() + 60_000, endedAt: null })));
    const res = await list(app, "?limit=2");
    expect(res.body.streams.map((s: Json) => [s.streamId, s.status])).toEqual([
      [stopped.streamId, "stopped"],
      [kept.streamId, "preparing"],
    ]);
    const left = await runInDurableObject(account, (_i, state) => state.storage.sql.exec<{ stream_id: string }>("SELECT stream_id FROM app_streams").toArray());
    expect(left.map((r) => r.stream_id).sort()).toEqual([kept.streamId, stopped.streamId].sort());
  });

  it("drops a stream a day after it ended (its snapshot is purged then)", async () => {
    const app = await registerApp();
    const s = await startStream(app);
    await call("POST", `/api/admin/streams/${s.streamId}/stop`, undefined, ADMIN);
    const account = env.APPS.getByName(app.packageName);
    // The stream's end was reported to the app's account.
    const row = async () =>
      runInDurableObject(account, (_i, state) => state.storage.sql.exec<{ ended_at: number | null }>("SELECT ended_at FROM app_streams").toArray()[0]);
    expect((await row())?.ended_at).toEqual(expect.any(Number));
    await runInDurableObject(account, (_i, state) => state.storage.sql.exec("UPDATE app_streams SET ended_at = ?", Date.now() - 25 * 3_600_000));
    expect((await list(app)).body.streams).toEqual([]);
    expect(await row()).toBeUndefined();
  });

  it("a join that could not be reported at once is delivered from the stream's alarm", async () => {
    const app = await registerApp();
    const s = await startStream(app);
    const account = env.APPS.getByName(app.packageName);
    await runInDurableObject(account, (_i, state) => state.storage.sql.exec("DELETE FROM app_streams"));
    // As if the delivery had failed: the entry is queued again and the retry timer fires.
    await runInDurableObject(env.STREAMS.getByName(s.streamId), (_i, state) => {
      state.storage.sql.exec("INSERT INTO participation_outbox (package_name, joined_at, ended_at) VALUES (?, ?, NULL)", app.packageName, Date.now());
      state.storage.sql.exec("INSERT INTO schedule (name, due_at, attempts) VALUES ('participation-outbox', ?, 0)", Date.now() + 60_000);
    });
    await expireTimer(s.streamId, "participation-outbox");
    expect((await list(app)).body.streams.map((x: Json) => x.streamId)).toEqual([s.streamId]);
  });

  it("needs the app's credentials", async () => {
    const app = await registerApp();
    const none = await call("GET", "/api/streams");
    expect(none.status).toBe(401);
    expect(none.body).toEqual({ error: "UNAUTHORIZED", message: "X-API-Key and X-Package-Name headers are required" });
    const wrong = await call("GET", "/api/streams", undefined, { ...app.headers, "x-api-key": "sc_wrong" });
    expect(wrong.status).toBe(401);
    expect(wrong.body.error).toBe("UNAUTHORIZED");
    // The admin token is not an app's credential.
    expect((await call("GET", "/api/streams", undefined, ADMIN)).status).toBe(401);
  });

  it("answers bad paging with 400 INVALID_REQUEST naming the parameter, never a 500", async () => {
    const app = await registerApp();
    for (const [query, field] of [
      ["?limit=0", "limit"],
      ["?limit=51", "limit"],
      ["?limit=abc", "limit"],
      ["?limit=1.5", "limit"],
      ["?limit=-3", "limit"],
      ["?limit=", "limit"],
      ["?cursor=", "cursor"],
      ["?cursor=nope", "cursor"],
      ["?cursor=1.short", "cursor"],
      [`?cursor=${"9".repeat(17)}.${"a".repeat(21)}`, "cursor"],
      [`?cursor=${encodeURIComponent("1.aaaaaaaaaaaaaaaaaaaa'")}`, "cursor"],
    ] as const) {
      const res = await list(app, query);
      expect(res.status, query).toBe(400);
      expect(res.body.error, query).toBe("INVALID_REQUEST");
      expect(res.body.message, query).toMatch(new RegExp(`^${field}: `));
    }
    // Unknown parameters are ignored; a well-formed cursor that matches nothing is an empty last page.
    expect((await list(app, "?foo=bar")).status).toBe(200);
    expect((await list(app, `?cursor=0.${"a".repeat(21)}`)).body).toEqual({ streams: [], nextCursor: null });
  });
});

describe("GET /api/admin/streams", () => {
  it("lists every running stream of every app, newest first, with participants and masked outputs", async () => {
    const [a, b] = [await registerApp(), await registerApp()];
    const userId = newUserId();
    const first = await startStream(a, userId, { restreamDestinations: [{ url: "rtmp://a.rtmp.youtube.com/live2/secret-key-a", name: "YouTube" }] });
    await postStream(b, { userId });
    const second = await startStream(b);
    const mine = (await allPages(adminList, 50)).filter((s) => [first.streamId, second.streamId].includes(s.streamId));
    expect(mine.map((s) => s.streamId)).toEqual([second.streamId, first.streamId]);
    const [, shared] = mine;
    expect(shared).toMatchObject({ userId, createdBy: a.packageName, participants: [a.packageName, b.packageName], status: "preparing" });
    expect(shared.outputs).toHaveLength(1);
    expect(shared.outputs[0]).toMatchObject({ url: "rtmp://a.rtmp.youtube.com/live2/****", name: "YouTube", addedBy: a.packageName });
    expect(JSON.stringify(mine)).not.toContain("secret-key-a");
  });

  it("pages across the index's shards: every running stream once, newest first; stopped ones are not listed", async () => {
    const app = await registerApp();
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) ids.push((await startStream(app)).streamId);
    await call("POST", `/api/admin/streams/${ids[2]}/stop`, undefined, ADMIN);
    const everything = await allPages(adminList, 2);
    const seen = everything.map((s) => s.streamId);
    expect(new Set(seen).size).toBe(seen.length);
    expect(seen.filter((id) => ids.includes(id))).toEqual(ids.filter((_, i) => i !== 2).reverse());
    const created = everything.map((s) => Date.parse(s.createdAt));
    expect(created).toEqual([...created].sort((x, y) => y - x));
  });

  it("drops an index entry whose stream is gone or stopped, and still fills the page", async () => {
    const app = await registerApp();
    const running = await startStream(app);
    const future = Date.now() + 60_000;
    // Entries left behind by a stop whose removal was lost, or a stream that vanished: newest of all.
    await recordInputStream(env, "0".repeat(32), "ghostghostghostghost3", future);
    await recordInputStream(env, "1".repeat(32), "ghostghostghostghost4", future + 1);
    const res = await adminList("?limit=1");
    expect(res.status).toBe(200);
    expect(res.body.streams.map((s: Json) => s.streamId)).not.toContain("ghostghostghostghost3");
    expect(res.body.streams).toHaveLength(1);
    expect(await streamIdForInput(env, "0".repeat(32))).toBeNull();
    expect(await streamIdForInput(env, "1".repeat(32))).toBeNull();
    expect((await allPages(adminList, 50)).map((s) => s.streamId)).toContain(running.streamId);
  });

  it("needs the admin token, and answers bad paging with 400", async () => {
    const app = await registerApp();
    expect((await call("GET", "/api/admin/streams")).body).toEqual({ error: "UNAUTHORIZED", message: "Invalid admin token" });
    expect((await call("GET", "/api/admin/streams", undefined, { authorization: "Bearer nope" })).status).toBe(401);
    expect((await call("GET", "/api/admin/streams", undefined, app.headers)).status).toBe(401);
    const bad = await adminList("?limit=100");
    expect(bad.status).toBe(400);
    expect(bad.body).toEqual({ error: "INVALID_REQUEST", message: "limit: must be a whole number from 1 to 50" });
    expect((await adminList("?cursor=x")).body.error).toBe("INVALID_REQUEST");
  });
});
