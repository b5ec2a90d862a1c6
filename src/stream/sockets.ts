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

export function send(ws: WebSocket, message: unknown): boolean {
  try {
    ws.send(JSON.stringify(message));
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
