import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { freezeClock, resetClock, shiftClock } from "../../src/clock";
import { InboundGuard } from "../../src/stream/inbound";
import { MAX_MESSAGE_BYTES, MAX_MESSAGES_PER_SECOND } from "../../src/schemas/protocol";

// Frozen: the windows are measured on the clock, and Node's moves between two lines.
beforeEach(() => void freezeClock());
afterEach(resetClock);

const CHECK = JSON.stringify({ type: "stream_status_check" });
// Any object serves as the per-socket key: the guard only remembers sockets, never calls them.
const socket = () => ({}) as WebSocket;

describe("socket message screening", () => {
  it("20 messages a second are served; the 21st within the same second closes the socket with 1008", () => {
    expect(MAX_MESSAGES_PER_SECOND).toBe(20);
    const guard = new InboundGuard();
    const ws = socket();
    for (let i = 0; i < 20; i++) expect(guard.screen(ws, CHECK, "app").kind).toBe("app");
    expect(guard.screen(ws, CHECK, "app")).toEqual({ kind: "close", code: 1008, reason: "Too many messages" });
  });

  it("the window is one second: just before it ends the socket is still over its rate, at one second a new window opens", () => {
    const guard = new InboundGuard();
    const ws = socket();
    for (let i = 0; i < 20; i++) guard.screen(ws, CHECK, "app");
    shiftClock(999);
    expect(guard.screen(ws, CHECK, "app").kind).toBe("close");
    shiftClock(1);
    for (let i = 0; i < 20; i++) expect(guard.screen(ws, CHECK, "app").kind).toBe("app");
    expect(guard.screen(ws, CHECK, "app").kind).toBe("close");
  });

  it("each socket has its own window", () => {
    const guard = new InboundGuard();
    const [flood, calm] = [socket(), socket()];
    for (let i = 0; i < 25; i++) guard.screen(flood, CHECK, "app");
    expect(guard.screen(calm, CHECK, "app").kind).toBe("app");
  });

  it("64 KiB is the most a message may hold: one byte more closes with 1009", () => {
    const guard = new InboundGuard();
    const at = (n: number) => JSON.stringify({ type: "stream_status_check", pad: "x".repeat(n - CHECK.length - 9) });
    expect(new TextEncoder().encode(at(MAX_MESSAGE_BYTES)).byteLength).toBe(MAX_MESSAGE_BYTES);
    expect(guard.screen(socket(), at(MAX_MESSAGE_BYTES), "app").kind).not.toBe("close");
    expect(guard.screen(socket(), at(MAX_MESSAGE_BYTES + 1), "app")).toEqual({ kind: "close", code: 1009, reason: "Message too large" });
    expect(guard.screen(socket(), new TextEncoder().encode(at(MAX_MESSAGE_BYTES + 1)).buffer as ArrayBuffer, "app").kind).toBe("close");
  });

  it("bad JSON, unknown types and schema violations get a reply, per role", () => {
    const guard = new InboundGuard();
    expect(guard.screen(socket(), "{", "app")).toEqual({ kind: "reply", error: "INVALID_JSON", message: "Message is not valid JSON" });
    expect(guard.screen(socket(), JSON.stringify({ type: "keep_alive_ack" }), "app")).toMatchObject({ kind: "reply", error: "UNKNOWN_MESSAGE_TYPE" });
    expect(guard.screen(socket(), JSON.stringify({ type: "stream_status_check" }), "device")).toMatchObject({ kind: "reply", error: "UNKNOWN_MESSAGE_TYPE" });
    expect(guard.screen(socket(), JSON.stringify([1]), "app")).toMatchObject({ kind: "reply", error: "UNKNOWN_MESSAGE_TYPE", message: "Unknown message type: undefined" });
    expect(guard.screen(socket(), JSON.stringify({ type: "keep_alive_ack" }), "device")).toMatchObject({ kind: "reply", error: "INVALID_MESSAGE" });
    expect(guard.screen(socket(), JSON.stringify({ type: "keep_alive_ack", ackId: "a" }), "device")).toMatchObject({ kind: "device", message: { ackId: "a" } });
  });

  it("a reply names what was wrong: the unknown type (at most 64 characters), or each bad field by path", () => {
    const guard = new InboundGuard();
    expect(guard.screen(socket(), JSON.stringify("text"), "app")).toMatchObject({ error: "UNKNOWN_MESSAGE_TYPE", message: "Unknown message type: undefined" });
    expect(guard.screen(socket(), "null", "app")).toMatchObject({ error: "UNKNOWN_MESSAGE_TYPE", message: "Unknown message type: undefined" });
    expect(guard.screen(socket(), JSON.stringify({ type: 7 }), "app")).toMatchObject({ error: "UNKNOWN_MESSAGE_TYPE", message: "Unknown message type: 7" });
    expect(guard.screen(socket(), JSON.stringify({ type: "x".repeat(100) }), "app")).toMatchObject({ message: `Unknown message type: ${"x".repeat(64)}` });
    const bad = guard.screen(socket(), JSON.stringify({ type: "rtmp_stream_status", status: "nope", errorDetails: "x".repeat(1_001) }), "device");
    expect(bad).toMatchObject({ kind: "reply", error: "INVALID_MESSAGE" });
    expect((bad as { message: string }).message).toMatch(/^status: [^;]+; errorDetails: [^;]+$/);
    const nested = guard.screen(socket(), JSON.stringify({ type: "keep_alive_ack", ackId: "" }), "device") as { message: string };
    expect(nested.message).toMatch(/^ackId: /);
  });

  it("binary frames are read as UTF-8 JSON, like text frames", () => {
    const guard = new InboundGuard();
    const frame = new TextEncoder().encode(JSON.stringify({ type: "keep_alive_ack", ackId: "bin" })).buffer as ArrayBuffer;
    expect(guard.screen(socket(), frame, "device")).toMatchObject({ kind: "device", message: { type: "keep_alive_ack", ackId: "bin" } });
  });
});
