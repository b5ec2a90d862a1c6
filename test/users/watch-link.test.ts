// A user's watch key (src/users/watch-link.ts), kept by the user's own object; the sharded index only routes.
import { env } from "cloudflare:test";
import { beforeEach, describe, expect, it } from "vitest";
import { recordWatchKey, userForWatchKey, WATCH_KEY_SHARDS } from "../../src/users/watch-key-index";
import { newUserId, resetEmulator } from "../helpers";

beforeEach(resetEmulator);

const users = (userId: string) => env.USERS.getByName(userId);

async function keyOf(userId: string): Promise<string> {
  const link = await users(userId).watchLink(userId);
  if (!link.ok) throw new Error(link.message);
  return link.watchKey;
}

describe("a user's watch key", () => {
  it("callers asking at once for a new user's key all get one and the same key, and it is the current one", async () => {
    const userId = newUserId();
    const keys = await Promise.all(Array.from({ length: 6 }, () => keyOf(userId)));
    expect(new Set(keys).size).toBe(1);
    expect(await keyOf(userId)).toBe(keys[0]);
    expect(await userForWatchKey(env, keys[0]!)).toBe(userId);
  });

  it("a key is 24 characters of nanoid's alphabet and is indexed to its user before it is given out", async () => {
    const userId = newUserId();
    const key = await keyOf(userId);
    expect(key).toMatch(/^[A-Za-z0-9_-]{24}$/);
    expect(await userForWatchKey(env, key)).toBe(userId);
  });

  it("a rotation gives a new indexed key and tidies the old key's index entry away", async () => {
    const userId = newUserId();
    const old = await keyOf(userId);
    const rotated = await users(userId).rotateWatchKey(userId, "http://coordinator.test");
    if (!rotated.ok) throw new Error(rotated.message);
    expect(rotated.watchKey).not.toBe(old);
    expect(await userForWatchKey(env, rotated.watchKey)).toBe(userId);
    expect(await userForWatchKey(env, old)).toBeNull();
    expect(await keyOf(userId)).toBe(rotated.watchKey);
  });

  it("a rotation asked while the first key is being made waits for it, then replaces it", async () => {
    const userId = newUserId();
    const [first, rotated] = await Promise.all([keyOf(userId), users(userId).rotateWatchKey(userId, "http://coordinator.test")]);
    if (!rotated.ok) throw new Error(rotated.message);
    expect(rotated.watchKey).not.toBe(first);
    expect(await keyOf(userId)).toBe(rotated.watchKey);
    expect(await userForWatchKey(env, first)).toBeNull();
    expect(await userForWatchKey(env, rotated.watchKey)).toBe(userId);
  });

  it("index entries of different users' keys are kept apart", async () => {
    const a = newUserId();
    const b = newUserId();
    const [ka, kb] = await Promise.all([keyOf(a), keyOf(b)]);
    expect(await userForWatchKey(env, ka)).toBe(a);
    expect(await userForWatchKey(env, kb)).toBe(b);
    expect(await userForWatchKey(env, "A".repeat(24))).toBeNull();
  });

  it("the index spreads keys over its 16 shard objects, each key in exactly one of them", async () => {
    const keys = Array.from({ length: 24 }, (_, i) => `spread-key-${String(i).padStart(2, "0")}`.padEnd(24, "x"));
    for (const key of keys) await recordWatchKey(env, key, `user-${key}`);
    const shardOf = new Map<string, number>();
    for (const key of keys) {
      const found = await Promise.all(Array.from({ length: WATCH_KEY_SHARDS }, (_, n) => env.WATCH_KEYS.getByName(`shard:${n}`).userId(key)));
      const holders = found.flatMap((userId, n) => (userId === `user-${key}` ? [n] : []));
      expect(holders, key).toHaveLength(1);
      shardOf.set(key, holders[0]!);
    }
    expect(WATCH_KEY_SHARDS).toBe(16);
    expect(new Set(shardOf.values()).size).toBeGreaterThanOrEqual(8);
  });
});
