import { AppMessage, DeviceMessage, MAX_MESSAGE_BYTES, MAX_MESSAGES_PER_SECOND } from "../schemas/protocol";
import { clock } from "../clock";

/**
 * Screening of inbound socket messages: size, rate, JSON and schema. Bad input never disturbs the
 * stream: a malformed message earns an `error` reply on that socket; only abuse (too large, too many)
 * closes it.
 */
export type Inbound =
  | { kind: "close"; code: number; reason: string }
  | { kind: "reply"; error: string; message: string }
  | { kind: "app"; message: AppMessage }
  | { kind: "device"; message: DeviceMessage };

const KNOWN_TYPES = {
  app: ["managed_stream_request", "managed_stream_stop", "stream_status_check"],
  device: ["keep_alive_ack", "rtmp_stream_status"],
} as const;

export class InboundGuard {
  /** Per-socket 1 s windows; losing them on hibernation only resets a window. */
  private readonly rates = new WeakMap<WebSocket, { windowStart: number; count: number }>();

  screen(ws: WebSocket, raw: string | ArrayBuffer, role: "app" | "device"): Inbound {
    const size = typeof raw === "string" ? new TextEncoder().encode(raw).byteLength : raw.byteLength;
    if (size > MAX_MESSAGE_BYTES) return { kind: "close", code: 1009, reason: "Message too large" };
    if (!this.withinRate(ws)) return { kind: "close", code: 1008, reason: "Too many messages" };

    let data: unknown;
    try {
      data = JSON.parse(typeof raw === "string" ? raw : new TextDecoder().decode(raw));
    } catch {
      return { kind: "reply", error: "INVALID_JSON", message: "Message is not valid JSON" };
    }
    const parsed = role === "app" ? AppMessage.safeParse(data) : DeviceMessage.safeParse(data);
    if (parsed.success) {
      return role === "app" ? { kind: "app", message: parsed.data as AppMessage } : { kind: "device", message: parsed.data as DeviceMessage };
    }
    const type = typeof data === "object" && data !== null ? (data as { type?: unknown }).type : undefined;
    if (typeof type !== "string" || !(KNOWN_TYPES[role] as readonly string[]).includes(type)) {
      return { kind: "reply", error: "UNKNOWN_MESSAGE_TYPE", message: `Unknown message type: ${String(type).slice(0, 64)}` };
    }
    return {
      kind: "reply",
      error: "INVALID_MESSAGE",
      message: parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; "),
    };
  }

  private withinRate(ws: WebSocket): boolean {
    const now = clock.now();
    const rate = this.rates.get(ws);
    if (!rate || now - rate.windowStart >= 1000) {
      this.rates.set(ws, { windowStart: now, count: 1 });
      return true;
    }
    rate.count += 1;
    return rate.count <= MAX_MESSAGES_PER_SECOND;
  }
}
