/**
 * Connection identity lives in the socket itself (tags + a namespaced attachment), so it survives
 * hibernation and eviction; nothing about who is connected is kept only in memory.
 */
export type SocketIdentity =
  | { role: "app"; packageName: string; connectedAt: number }
  | { role: "device"; userId: string; connectedAt: number };

interface Attachment {
  sc: SocketIdentity;
}

export const APP_TAG = "app";
export const DEVICE_TAG = "device";
export const appTag = (packageName: string) => `app:${packageName}`;

export function tagsFor(identity: SocketIdentity): string[] {
  return identity.role === "app" ? [APP_TAG, appTag(identity.packageName)] : [DEVICE_TAG];
}

export function attach(ws: WebSocket, identity: SocketIdentity): void {
  ws.serializeAttachment({ sc: identity } satisfies Attachment);
}

export function identityOf(ws: WebSocket): SocketIdentity | null {
  const attachment = ws.deserializeAttachment() as Partial<Attachment> | null;
  return attachment?.sc ?? null;
}

/**
 * Identities read through a cache: `deserializeAttachment` copies the attachment out of the runtime on
 * every call, which a push to N sockets cannot afford. Per object instance (not per module), so a new
 * instance after a restart reads the attachments afresh; only `attach` writes them.
 */
export class SocketIdentities {
  private readonly cache = new WeakMap<WebSocket, SocketIdentity | null>();

  attach(ws: WebSocket, identity: SocketIdentity): void {
    attach(ws, identity);
    this.cache.set(ws, identity);
  }

  of(ws: WebSocket): SocketIdentity | null {
    let identity = this.cache.get(ws);
    if (identity === undefined) {
      identity = identityOf(ws);
      this.cache.set(ws, identity);
    }
    return identity;
  }
}

export function send(ws: WebSocket, message: unknown): boolean {
  return sendText(ws, JSON.stringify(message));
}

export function sendText(ws: WebSocket, text: string): boolean {
  try {
    ws.send(text);
    return true;
  } catch {
    // The peer is gone; its close handler does the bookkeeping.
    return false;
  }
}

export function closeQuietly(ws: WebSocket, code: number, reason: string): void {
  try {
    ws.close(code, reason);
  } catch {
    // Already closed.
  }
}
