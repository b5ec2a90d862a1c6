// Random identifiers in Cloudflare's formats (Web Crypto only, so it runs in workerd).

export function randomHex(bytes: number): string {
  const buf = new Uint8Array(bytes);
  crypto.getRandomValues(buf);
  let out = "";
  for (const b of buf) out += b.toString(16).padStart(2, "0");
  return out;
}

/** 32 hex characters, like live input and output uids. */
export function uid(): string {
  return randomHex(16);
}

/** Cloudflare RTMPS stream keys look like `<32 hex>k<32 hex>`; only [0-9a-fk] so RTMP servers accept them. */
export function streamKey(): string {
  return `${randomHex(16)}k${randomHex(16)}`;
}
