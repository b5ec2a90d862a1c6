import { env, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { INDEX_SHARDS, forgetInputStream, recordInputStream, runningStreamsPage, streamIdForInput } from "../../src/cloudflare/live-input-index";

const newUid = () => crypto.randomUUID().replaceAll("-", "");
/** Entries written by other tests of this file stay in the shards: pages are read for this test's streams only. */
const mine = (entries: { streamId: string }[], prefix: string) => entries.filter((e) => e.streamId.startsWith(prefix)).map((e) => e.streamId);

describe("the live input → stream index", () => {
  it("records, finds and forgets an input in its shard, without an object per input", async () => {
    const uid = newUid();
    await recordInputStream(env, uid, "stream-a");
    expect(await streamIdForInput(env, uid)).toBe("stream-a");
    // Nothing was written to an object named by the uid.
    const perUid = await runInDurableObject(env.INPUT_INDEX.getByName(uid), (_i, state) => state.storage.sql.exec("SELECT COUNT(*) AS n FROM inputs").one().n);
    expect(perUid).toBe(0);
    await forgetInputStream(env, uid);
    expect(await streamIdForInput(env, uid)).toBeNull();
  });

  it("an input recorded again points at its latest stream", async () => {
    const uid = newUid();
    await recordInputStream(env, uid, "stream-a", 5);
    await recordInputStream(env, uid, "stream-b", 7);
    expect(await streamIdForInput(env, uid)).toBe("stream-b");
  });

  it("the shard is chosen by a hash of the uid: of the 16 shards, exactly the one that holds it answers", async () => {
    const uid = newUid();
    await recordInputStream(env, uid, "stream-sharded");
    const holders = [];
    for (let i = 0; i < INDEX_SHARDS; i++) if ((await env.INPUT_INDEX.getByName(`shard:${i}`).streamId(uid)) !== null) holders.push(i);
    let hash = 0;
    for (let i = 0; i < uid.length; i++) hash = (hash * 31 + uid.charCodeAt(i)) >>> 0;
    expect(holders).toEqual([hash % INDEX_SHARDS]);
  });

  it("still finds an input indexed by an earlier version (one object per uid, key streamId), and forgets it there", async () => {
    const uid = newUid();
    await runInDurableObject(env.INPUT_INDEX.getByName(uid), (_i, state) => state.storage.put("streamId", "stream-old"));
    expect(await streamIdForInput(env, uid)).toBe("stream-old");
    await env.INPUT_INDEX.getByName(uid).forget(uid);
    expect(await streamIdForInput(env, uid)).toBeNull();
  });

  it("an index written before the running-streams list gains its created_at column, old entries sorting as oldest", async () => {
    const stub = env.INPUT_INDEX.getByName(`legacy-${newUid()}`);
    await runInDurableObject(stub, (_i, state) => {
      state.storage.sql.exec("DROP TABLE inputs");
      state.storage.sql.exec("CREATE TABLE inputs (uid TEXT PRIMARY KEY, stream_id TEXT NOT NULL)");
      state.storage.sql.exec("INSERT INTO inputs (uid, stream_id) VALUES ('u-old', 'stream-old')");
    });
    // A new instance runs the constructor's migration on the old table.
    const { LiveInputIndex } = await import("../../src/cloudflare/live-input-index");
    await runInDurableObject(stub, (_i, state) => void new LiveInputIndex(state, env));
    await stub.set("u-new", "stream-new", 10);
    expect(await stub.page(null, 10)).toEqual([
      { uid: "u-new", streamId: "stream-new", createdAt: 10 },
      { uid: "u-old", streamId: "stream-old", createdAt: 0 },
    ]);
    // The migration is not run twice.
    await runInDurableObject(stub, (_i, state) => void new LiveInputIndex(state, env));
    expect(await stub.page(null, 10)).toHaveLength(2);
  });
});

describe("the running streams (GET /api/admin/streams)", () => {
  it("one shard's page is newest first, ties by stream id, and continues after a position", async () => {
    const stub = env.INPUT_INDEX.getByName(`page-${newUid()}`);
    await stub.set("u1", "s-a", 100);
    await stub.set("u2", "s-c", 100);
    await stub.set("u3", "s-b", 100);
    await stub.set("u4", "s-old", 50);
    await stub.set("u5", "s-new", 200);
    expect((await stub.page(null, 3)).map((e) => e.streamId)).toEqual(["s-new", "s-c", "s-b"]);
    expect((await stub.page({ at: 100, streamId: "s-b" }, 3)).map((e) => e.streamId)).toEqual(["s-a", "s-old"]);
    expect((await stub.page({ at: 100, streamId: "s-a" }, 1)).map((e) => e.streamId)).toEqual(["s-old"]);
    expect(await stub.page({ at: 50, streamId: "s-old" }, 3)).toEqual([]);
  });

  it("pages merge every shard newest first, and together list each running stream once", async () => {
    const prefix = `run-${newUid().slice(0, 8)}-`;
    const base = 4_000_000_000_000;
    // 20 inputs over the shards; two created at the same moment.
    const created = Array.from({ length: 20 }, (_, i) => ({ uid: newUid(), streamId: `${prefix}${String(i).padStart(2, "0")}`, at: base + (i === 7 ? 6 : i) }));
    for (const c of created) await recordInputStream(env, c.uid, c.streamId, c.at);
    const expected = [...created].sort((a, b) => b.at - a.at || (a.streamId < b.streamId ? 1 : -1)).map((c) => c.streamId);

    const first = await runningStreamsPage(env, null, 8);
    expect(first.entries).toHaveLength(8);
    expect(first.more).toBe(true);
    expect(mine(first.entries, prefix)).toEqual(expected.slice(0, 8));
    const last = first.entries.at(-1)!;
    const second = await runningStreamsPage(env, { at: last.createdAt, streamId: last.streamId }, 12);
    expect(mine(second.entries, prefix)).toEqual(expected.slice(8, 20));
    const end = second.entries.at(-1)!;
    expect(mine((await runningStreamsPage(env, { at: end.createdAt, streamId: end.streamId }, 50)).entries, prefix)).toEqual([]);
    for (const c of created) await forgetInputStream(env, c.uid);
  });

  it("a page that holds the last entries says no more follow", async () => {
    const far = 9_000_000_000_000;
    const uid = newUid();
    await recordInputStream(env, uid, "stream-far", far);
    const page = await runningStreamsPage(env, { at: far + 1, streamId: "" }, 1);
    expect(page.entries.map((e) => e.streamId)).toEqual(["stream-far"]);
    expect(page.entries[0]).toEqual({ uid, streamId: "stream-far", createdAt: far });
    const rest = await runningStreamsPage(env, { at: far, streamId: "stream-far" }, 1000);
    expect(rest.more).toBe(false);
    expect(rest.entries.length).toBeLessThan(1000);
    await forgetInputStream(env, uid);
  });
});

describe("the running streams' merge across shards", () => {
  const shardOf = (uid: string) => {
    let hash = 0;
    for (let i = 0; i < uid.length; i++) hash = (hash * 31 + uid.charCodeAt(i)) >>> 0;
    return hash % INDEX_SHARDS;
  };
  /** Empties every shard, so a page's `more` is about this test's entries alone. */
  async function emptyIndex(): Promise<void> {
    for (const e of (await runningStreamsPage(env, null, 10_000)).entries) await forgetInputStream(env, e.uid);
  }

  it("streams created at the same moment in different shards are ordered by stream id, newest id first", async () => {
    await emptyIndex();
    const uids: string[] = [];
    while (uids.length < 4) {
      const uid = newUid();
      if (!uids.some((u) => shardOf(u) === shardOf(uid))) uids.push(uid);
    }
    // Written in an order that is neither sorted nor reversed.
    for (const [i, id] of (["tie-b", "tie-d", "tie-a", "tie-c"] as const).entries()) await recordInputStream(env, uids[i]!, id, 5_000);
    await recordInputStream(env, newUid(), "later", 6_000);
    expect((await runningStreamsPage(env, null, 10)).entries.map((e) => e.streamId)).toEqual(["later", "tie-d", "tie-c", "tie-b", "tie-a"]);
  });

  it("a page holding exactly the last entries says no more follow; one short of them says more do", async () => {
    await emptyIndex();
    for (let i = 0; i < 3; i++) await recordInputStream(env, newUid(), `exact-${i}`, 7_000 + i);
    expect(await runningStreamsPage(env, null, 3)).toMatchObject({ more: false });
    expect(await runningStreamsPage(env, null, 2)).toMatchObject({ more: true });
    expect((await runningStreamsPage(env, null, 2)).entries.map((e) => e.streamId)).toEqual(["exact-2", "exact-1"]);
  });
});
