import { deriveStatus } from "./status";
import type { StreamContext } from "./context";
import { StreamMeta } from "./context";
import type { Presence } from "./presence";
import { APP_TAG, sendText } from "./sockets";
import type { StatusMessages, StreamViews } from "./views";

const PUSH_FINGERPRINT_KEY = "lastPushed";

/**
 * Keeps what viewers see in step with the facts: re-derives the status, and pushes
 * `managed_stream_status` to every viewer whenever anything a viewer could see has changed since the
 * last push (a durable fingerprint, so a restarted object neither repeats nor skips a push).
 */
export class StatusPublisher {
  private readonly meta: StreamMeta;

  constructor(
    private readonly s: StreamContext,
    private readonly views: StreamViews,
    private readonly presence: Presence,
    /** Called before every push (analytics observe the facts each push is about). */
    private readonly observe: () => void = () => undefined,
  ) {
    this.meta = new StreamMeta(s.sql);
  }

  /** Re-derives the status from the facts, persists it if it changed, and pushes to clients. */
  refresh(): void {
    const record = this.s.store.get();
    if (!record) return;
    const derived = deriveStatus(record);
    if (derived.status !== record.status || derived.message !== record.message) this.s.store.update(derived);
    this.pushIfChanged();
  }

  /**
   * A viewer (re)connected: it gets the status at once, never de-duplicated away, and everybody else
   * only if what they see changed (the viewer count). One build of the messages serves both.
   */
  welcome(fresh: WebSocket, packageName: string): void {
    const messages = this.build();
    if (!messages) return;
    sendText(fresh, messages.serialized(packageName));
    this.pushIfChanged(fresh, undefined, messages);
  }

  /**
   * `fresh` was just sent the status directly; `closing` is leaving. One push builds and serializes each
   * distinct message once (see StreamViews.statusMessages) and walks the sockets once.
   */
  pushIfChanged(fresh?: WebSocket, closing?: WebSocket, built?: StatusMessages): void {
    this.observe();
    const messages = built ?? this.build();
    if (!messages) return;
    // Fingerprint the unmasked view: what any viewer could see changed.
    const { timestamp: _ignored, ...visible } = messages.message(null);
    const fingerprint = JSON.stringify(visible);
    if (this.meta.get(PUSH_FINGERPRINT_KEY) === fingerprint) return;
    this.meta.set(PUSH_FINGERPRINT_KEY, fingerprint);
    for (const ws of this.s.ctx.getWebSockets(APP_TAG)) {
      if (ws === fresh || ws === closing || ws.readyState !== WebSocket.OPEN) continue;
      const identity = this.presence.identities.of(ws);
      sendText(ws, messages.serialized(identity?.role === "app" ? identity.packageName : null));
    }
  }

  private build(): StatusMessages | null {
    const record = this.s.store.get();
    return record ? this.views.statusMessages(record) : null;
  }
}
