import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { ADMIN, LIVE_INPUTS_PATH, call, deviceToken, injectFault, inputFor, newUserId, openSocket, registerApp, resetEmulator, startStream } from "../helpers";

beforeEach(resetEmulator);
afterEach(() => vi.restoreAllMocks());

describe("no log line carries a stream key, an API key or a token", () => {
  it("across starts, outputs, faults, sockets and stops", async () => {
    const lines: string[] = [];
    for (const level of ["log", "info", "warn", "error", "debug"] as const) {
      vi.spyOn(console, level).mockImplementation((...args: unknown[]) => {
        lines.push(args.map((a) => (a instanceof Error ? `${a.message} ${a.stack}` : typeof a === "string" ? a : JSON.stringify(a))).join(" "));
      });
    }
    const app = await registerApp();
    const userId = newUserId();
    const s = await startStream(app, userId);
    const token = await deviceToken(userId);
    const device = await openSocket(s.streamId, { headers: { authorization: `Bearer ${token}` } });
    await device.next("start_rtmp_stream");
    const streamKey = "sk-live-5up3r-s3cr3t";
    const outputs = `${LIVE_INPUTS_PATH}/*/outputs`;
    await call("POST", `/api/streams/${s.streamId}/outputs`, { url: `rtmp://a.rtmp.youtube.com/live2/${streamKey}` }, app.headers);
    await injectFault({ method: "POST", path: outputs, status: 500, count: 2 });
    await call("POST", `/api/streams/${s.streamId}/outputs`, { url: `rtmp://b.example.com/live/${streamKey}-2` }, app.headers);
    await injectFault({ method: "DELETE", path: `${LIVE_INPUTS_PATH}/*`, status: 500, count: 2 });
    const input = await inputFor(s.streamId);
    await call("POST", `/api/admin/streams/${s.streamId}/stop`, undefined, ADMIN);
    await call("POST", "/api/streams", { userId }, { "x-api-key": `${app.apiKey}x`, "x-package-name": app.packageName });

    const all = lines.join("\n");
    expect(lines.length).toBeGreaterThan(0); // the faults above did log something
    for (const secret of [app.apiKey, streamKey, token, input.rtmps.streamKey, input.srt.passphrase, ADMIN.authorization.slice(7)]) {
      expect(all).not.toContain(secret);
    }
  });
});
