import { env, runInDurableObject } from "cloudflare:test";
import { beforeEach, describe, expect, it } from "vitest";
import { call, newUserId, postStream, registerApp, resetEmulator, startStream, type Json, type TestApp, type TestSocket, sharedStream, viewerSocket } from "../helpers";
import type { StreamCoordinator } from "../../src/stream/stream-coordinator";

/** The app socket's SDK requests (src/stream/app-requests.ts): the same rules and answers as REST. */
beforeEach(resetEmulator);

const yt = (key: string) => `rtmp://a.rtmp.youtube.com/live2/${key}`;
/** The answer carries `restreamResults`; pushes for the outputs it added may come first. */
async function answerOf(socket: TestSocket): Promise<Json> {
  for (;;) {
    const message = await socket.next("managed_stream_status");
    if (message.restreamResults) return message;
  }
}
const outputsOf = async (app: TestApp, streamId: string) => (await call("GET", `/api/streams/${streamId}/outputs`, undefined, app.headers)).body.outputs;

describe("managed_stream_request", () => {
  it("joins, adds each destination as POST /outputs would, and answers with the status and a result per destination", async () => {
    const app = await registerApp();
    const s = await startStream(app);
    const v = await viewerSocket(s.streamId, app);
    await v.next("managed_stream_status");

    v.ws.send(JSON.stringify({
      type: "managed_stream_request",
      packageName: "ignored",
      quality: "720p",
      timestamp: new Date().toISOString(), // the SDK adds these; they are dropped
      sessionId: "sdk-session",
      restreamDestinations: [{ url: yt("key-1"), name: "YouTube" }, { url: "http://not-rtmp.example/x" }, { url: yt("key-1") }],
    }));
    const answer = await answerOf(v);
    expect(answer).toMatchObject({ status: "preparing", streamId: s.streamId });
    expect(answer.restreamResults).toEqual([
      { url: yt("key-1"), success: true, outputId: expect.any(String) },
      { url: "http://not-rtmp.example/x", success: false, error: "INVALID_URL", message: expect.any(String) },
      { url: yt("key-1"), success: false, error: "DUPLICATE_URL", message: expect.any(String) },
    ]);
    const outputs = await outputsOf(app, s.streamId);
    expect(outputs).toEqual([expect.objectContaining({ outputId: answer.restreamResults[0].outputId, url: yt("key-1"), name: "YouTube", addedBy: app.packageName })]);
    // The answer already lists the new output, unmasked for the app that added it.
    expect(answer.outputs).toEqual([expect.objectContaining({ outputId: answer.restreamResults[0].outputId, url: yt("key-1"), name: "YouTube" })]);
  });

  it("without destinations it answers with the current status alone, and each request counts as a start", async () => {
    const app = await registerApp();
    const s = await startStream(app); // start 1 of the app's 10 per minute
    const v = await viewerSocket(s.streamId, app);
    await v.next("managed_stream_status");
    for (let i = 2; i <= 10; i++) {
      v.ws.send(JSON.stringify({ type: "managed_stream_request" }));
      const answer = await v.next("managed_stream_status");
      expect(answer.status).toBe("preparing");
      expect(answer).not.toHaveProperty("restreamResults");
    }
    // The 11th start within the minute is refused, as POST /api/streams would be.
    v.ws.send(JSON.stringify({ type: "managed_stream_request", restreamDestinations: [{ url: yt("never") }] }));
    const refused = await v.next("error");
    expect(refused).toMatchObject({ error: "RATE_LIMITED", retryAfter: expect.any(Number) });
    expect(refused.retryAfter).toBeGreaterThan(0);
    // The SDK's startManagedStream() rejects on an `error` status: it hears the reason at once.
    expect(await v.next("managed_stream_status")).toMatchObject({ status: "error", message: expect.stringContaining("RATE_LIMITED") });
    expect(await outputsOf(app, s.streamId)).toEqual([]);
    const rest = await postStream(app, { userId: newUserId() });
    expect(rest.status).toBe(429);
  });

  it("the limits of POST /outputs hold: the per-stream cap refuses the destination past 10", async () => {
    const app = await registerApp();
    const s = await startStream(app);
    const v = await viewerSocket(s.streamId, app);
    await v.next("managed_stream_status");
    for (let i = 0; i < 9; i++) {
      const res = await call("POST", `/api/streams/${s.streamId}/outputs`, { url: yt(`rest-${i}`) }, app.headers);
      expect(res.status).toBe(200);
    }
    v.ws.send(JSON.stringify({ type: "managed_stream_request", restreamDestinations: [{ url: yt("tenth") }, { url: yt("eleventh") }] }));
    const answer = await answerOf(v);
    expect(answer.restreamResults.map((r: Json) => r.error ?? "ok")).toEqual(["ok", "MAX_OUTPUTS_REACHED"]);
    expect(await outputsOf(app, s.streamId)).toHaveLength(10);
  });

  it("a malformed request gets INVALID_MESSAGE and changes nothing", async () => {
    const app = await registerApp();
    const s = await startStream(app);
    const v = await viewerSocket(s.streamId, app);
    await v.next("managed_stream_status");
    v.ws.send(JSON.stringify({ type: "managed_stream_request", restreamDestinations: "rtmp://x" }));
    expect(await v.next("error")).toMatchObject({ error: "INVALID_MESSAGE", message: expect.stringContaining("restreamDestinations") });
    v.ws.send(JSON.stringify({ type: "managed_stream_request", quality: "4k" }));
    expect(await v.next("error")).toMatchObject({ error: "INVALID_MESSAGE", message: expect.stringContaining("quality") });
    expect(await outputsOf(app, s.streamId)).toEqual([]);
  });
});

describe("managed_stream_stop", () => {
  it("the leaving app hears `stopped` on each of its sockets before they close; the stream goes on for the others", async () => {
    const { a, b, s } = await sharedStream();
    const [a1, a2, vb] = [await viewerSocket(s.streamId, a), await viewerSocket(s.streamId, a), await viewerSocket(s.streamId, b)];
    await a1.next("managed_stream_status");
    await a2.next("managed_stream_status");
    await vb.next("managed_stream_status");

    a1.ws.send(JSON.stringify({ type: "managed_stream_stop", packageName: a.packageName }));
    for (const socket of [a1, a2]) {
      // The last frame before the close, whatever pushes came first.
      const closed = await socket.closed;
      expect(closed.code).toBe(1000);
      expect(socket.messages.at(-1)).toMatchObject({ type: "managed_stream_status", status: "stopped", streamId: s.streamId, viewers: 1 });
    }
    const seenByB = await vb.next("managed_stream_status");
    expect(seenByB).toMatchObject({ status: "preparing", viewers: 1 });
    expect((await call("GET", `/api/streams/${s.streamId}`, undefined, b.headers)).body.status).toBe("preparing");
  });
});

describe("stream_status_check", () => {
  it("is answered with the SDK's stream_status_check_response: fields present or absent, never null, no ingest secret", async () => {
    const app = await registerApp();
    const s = await startStream(app);
    const v = await viewerSocket(s.streamId, app);
    await v.next("managed_stream_status");
    v.ws.send(JSON.stringify({ type: "stream_status_check", packageName: app.packageName, sessionId: "sdk-session" }));
    const response = await v.next("stream_status_check_response");
    expect(response).toEqual({
      type: "stream_status_check_response",
      hasActiveStream: true,
      streamInfo: {
        type: "managed",
        streamId: s.streamId,
        status: "preparing",
        createdAt: s.createdAt,
        hlsUrl: s.hlsUrl,
        dashUrl: s.dashUrl,
        // The SDK's preview is the user's watch link (GET /w/:key), not the input's player page.
        previewUrl: expect.stringMatching(/^http:\/\/coordinator\.test\/w\/[A-Za-z0-9_-]{24}$/),
        thumbnailUrl: s.thumbnailUrl,
        activeViewers: 1,
      },
      timestamp: expect.any(String),
    });
    expect(Number.isNaN(Date.parse(response.timestamp))).toBe(false);
  });

  it("a stream that is stopping or stopped is no active stream", async () => {
    const app = await registerApp();
    const s = await startStream(app);
    const stub = env.STREAMS.getByName(s.streamId);
    const answers = await runInDurableObject(stub, (instance: StreamCoordinator) => {
      const parts = (instance as unknown as { parts: { views: { statusCheckResponse(r: Json): Json }; s: { store: { get(): Json } } } }).parts;
      const record = parts.s.store.get();
      return ["running", "stopping", "stopped"].map((phase) => parts.views.statusCheckResponse({ ...record, phase }).hasActiveStream);
    });
    expect(answers).toEqual([true, false, false]);
  });
});
