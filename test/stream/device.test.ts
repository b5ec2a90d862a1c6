import { beforeEach, describe, expect, it } from "vitest";
import { deviceToken, emulator, expireTimer, inputFor, newUserId, openSocket, registerApp, resetEmulator, startStream, type Json, type TestSocket } from "../helpers";
import { deviceConditionFor } from "../../src/stream/device";
import { DeviceStreamStatus } from "../../src/schemas/protocol";

/** The glasses channel (src/stream/device.ts): every status the SDK's glasses may report is accepted. */
beforeEach(resetEmulator);

/** Reads the viewer's pushes until one matches (earlier ones are skipped). */
async function until(socket: TestSocket, match: (m: Json) => boolean): Promise<Json> {
  for (;;) {
    const message = await socket.next("managed_stream_status");
    if (match(message)) return message;
  }
}

// [reported status, SDK status viewers see, words of the message] while ingest is connected.
const EFFECTS: [string, string, string][] = [
  ["initializing", "active", "Stream is live"],
  ["connecting", "active", "Stream is live"],
  ["streaming", "active", "Stream is live"],
  ["active", "active", "Stream is live"],
  ["reconnected", "active", "Stream is live"],
  ["reconnecting", "preparing", "Glasses are reconnecting to the ingest server"],
  ["disconnected", "preparing", "Glasses are reconnecting to the ingest server: their connection dropped"],
  ["error", "error", "Glasses reported an error"],
  ["reconnect_failed", "error", "Glasses reported an error: could not reconnect to the ingest server"],
  ["timeout", "preparing", "Glasses stopped answering keep-alives"],
  ["stopped", "preparing", "Glasses stopped streaming"],
  ["stopping", "preparing", "Glasses stopped streaming"],
];

describe("glasses status reports", () => {
  it("the table covers the SDK's whole RtmpStreamStatus set", () => {
    expect(EFFECTS.map(([status]) => status).sort()).toEqual([...DeviceStreamStatus.options].sort());
    for (const status of DeviceStreamStatus.options) expect(["ok", "lost", "error", "stopped", "reconnecting"]).toContain(deviceConditionFor(status));
  });

  it("each is accepted (no error frame) and moves the stream as documented; an `ok` report clears the last fault", async () => {
    const app = await registerApp();
    const userId = newUserId();
    const s = await startStream(app, userId);
    const v = await openSocket(s.streamId, { headers: app.headers });
    const device = await openSocket(s.streamId, { headers: { authorization: `Bearer ${await deviceToken(userId)}` } });
    await device.next("start_rtmp_stream");
    await emulator("POST", `live_inputs/${(await inputFor(s.streamId)).uid}/connect`);
    await expireTimer(s.streamId, "poll-input");
    await until(v, (m) => m.status === "active");

    const report = async (status: string) => {
      // Paced under the socket's 20 messages per second.
      await new Promise((resolve) => setTimeout(resolve, 60));
      device.ws.send(JSON.stringify({ type: "rtmp_stream_status", status, streamId: s.streamId, appId: "MANAGED_STREAM" }));
    };
    for (const [status, sdkStatus, words] of EFFECTS) {
      if (sdkStatus === "active") {
        await report("error");
        await until(v, (m) => m.status === "error");
      }
      await report(status);
      const seen = await until(v, (m) => m.status === sdkStatus);
      expect(seen.message, status).toContain(words);
      if (sdkStatus !== "active") {
        await report("streaming");
        await until(v, (m) => m.status === "active");
      }
    }
    expect(device.messages.filter((m) => m.type === "error")).toEqual([]);
  });
});
