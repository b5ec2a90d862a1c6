import { nanoid } from "nanoid";

/**
 * API keys are random, shown once, and stored only as salted SHA-256 hashes. Keys carry ~238 bits of
 * entropy, so a fast hash with a per-key salt is enough (a slow KDF guards low-entropy passwords);
 * comparison is constant-time.
 */
export interface StoredKey {
  salt: string;
  hash: string;
}

export function newApiKey(): string {
  return `sc_${nanoid(40)}`;
}

export async function hashKey(key: string, salt = randomHex(16)): Promise<StoredKey> {
  return { salt, hash: toHex(await sha256(`${salt}:${key}`)) };
}

export async function keyMatches(key: string, stored: StoredKey): Promise<boolean> {
  const candidate = await sha256(`${stored.salt}:${key}`);
  return timingSafeEqual(candidate, fromHex(stored.hash));
}

/** Constant-time comparison of two secrets of any length (both are hashed to equal length first). */
export async function secretsEqual(a: string, b: string): Promise<boolean> {
  return timingSafeEqual(await sha256(a), await sha256(b));
}

function timingSafeEqual(a: ArrayBuffer | Uint8Array, b: ArrayBuffer | Uint8Array): boolean {
  const x = a instanceof Uint8Array ? a : new Uint8Array(a);
  const y = b instanceof Uint8Array ? b : new Uint8Array(b);
  if (x.byteLength !== y.byteLength) return false;
  return crypto.subtle.timingSafeEqual(x, y);
}

async function sha256(text: string): Promise<ArrayBuffer> {
  return crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
}

function randomHex(bytes: number): string {
  return toHex(crypto.getRandomValues(new Uint8Array(bytes)));
}

function toHex(buffer: ArrayBuffer | Uint8Array): string {
  return [...(buffer instanceof Uint8Array ? buffer : new Uint8Array(buffer))].map((b) => b.toString(16).padStart(2, "0")).join("");
}

function fromHex(hex: string): Uint8Array {
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  return out;
}
