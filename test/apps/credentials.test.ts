import { describe, expect, it } from "vitest";
import { hashKey, keyMatches, newApiKey, secretsEqual } from "../../src/apps/credentials";

describe("API keys and secrets", () => {
  it("a key is sc_ and 40 URL-safe random characters, new every time", () => {
    const [a, b] = [newApiKey(), newApiKey()];
    expect(a).toMatch(/^sc_[A-Za-z0-9_-]{40}$/);
    expect(a).not.toBe(b);
  });

  it("a key is stored as a random 16-byte salt and the SHA-256 of salt:key, never the key", async () => {
    const key = newApiKey();
    const [one, two] = [await hashKey(key), await hashKey(key)];
    expect(one.salt).toMatch(/^[0-9a-f]{32}$/);
    expect(one.hash).toMatch(/^[0-9a-f]{64}$/);
    expect(one.salt).not.toBe(two.salt);
    expect(one.hash).not.toBe(two.hash);
    expect(JSON.stringify(one)).not.toContain(key);
    const expected = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(`${one.salt}:${key}`)));
    expect(one.hash).toBe([...expected].map((b) => b.toString(16).padStart(2, "0")).join(""));
    expect(await hashKey(key, "fixed")).toEqual({ salt: "fixed", hash: (await hashKey(key, "fixed")).hash });
  });

  it("a key matches only its own stored hash: not another key, not another salt", async () => {
    const key = newApiKey();
    const stored = await hashKey(key);
    expect(await keyMatches(key, stored)).toBe(true);
    expect(await keyMatches(newApiKey(), stored)).toBe(false);
    expect(await keyMatches(key, { salt: (await hashKey(key)).salt, hash: stored.hash })).toBe(false);
    // One bit off in the last byte of the stored hash.
    const last = stored.hash.slice(-2);
    const flipped = (parseInt(last, 16) ^ 1).toString(16).padStart(2, "0");
    expect(await keyMatches(key, { salt: stored.salt, hash: stored.hash.slice(0, -2) + flipped })).toBe(false);
  });

  it("a stored hash of the wrong length never matches (a damaged row refuses, it does not throw)", async () => {
    const key = newApiKey();
    const stored = await hashKey(key);
    expect(await keyMatches(key, { salt: stored.salt, hash: stored.hash.slice(0, 62) })).toBe(false);
    expect(await keyMatches(key, { salt: stored.salt, hash: `${stored.hash}00` })).toBe(false);
    expect(await keyMatches(key, { salt: stored.salt, hash: "" })).toBe(false);
  });

  it("two secrets are equal only when they are the same string, whatever their lengths", async () => {
    expect(await secretsEqual("test-admin-token", "test-admin-token")).toBe(true);
    expect(await secretsEqual("test-admin-token", "test-admin-tokex")).toBe(false);
    expect(await secretsEqual("short", "a much longer secret")).toBe(false);
    expect(await secretsEqual("", "")).toBe(true);
  });
});
