import { env, runInDurableObject, SELF } from "cloudflare:test";
import { beforeEach, describe, expect, it } from "vitest";
import { call, newUserId, registerApp, resetEmulator, startStream, streamTimers, type TestApp, type TestSocket, restartStreamObject, sharedStream, viewerSocket } from "../helpers";

/**
 * Viewer presence is state kept by connect and close (not a recount per message), and one push builds
 * each distinct message once. These tests go red when the bookkeeping drifts from the sockets.
 */
beforeEach(resetEmulator);

const viewers = async (streamId: string, app: TestApp): Promise<number> =>
  (await call("GET", `/api/streams/${streamId}`, undefined, app.headers)).body.viewers;
const settle = () => new Promise((r) => setTimeout(r, 100));

/** A new instance over the same storage and sockets (a wake); returns the viewer count it derived. */
async function restart(streamId: string, app: TestApp): Promise<number> {
  return restartStreamObject(streamId, async (fresh) => {
    const snapshot = await fresh.getSnapshot(app.packageName);
    if (!snapshot.ok) throw new Error(JSON.stringify(snapshot));
    return snapshot.snapshot.viewers;
  });
}

async function closeAndWait(socket: TestSocket): Promise<void> {
  socket.ws.close(1000);
  await socket.closed;
  await settle();
}

describe("viewer counts are state", () => {
  it("follow every connect and close, per app, and arm the grace timer only when the last socket goes", async () => {
    const { a, b, s } = await sharedStream();
    const a1 = await viewerSocket(s.streamId, a);
    const a2 = await viewerSocket(s.streamId, a);
    const b1 = await viewerSocket(s.streamId, b);
    expect((await b1.next("managed_stream_status")).viewers).toBe(2);
    expect(await viewers(s.streamId, a)).toBe(2);

    // One of a's two sockets goes: a still watches.
    await closeAndWait(a1);
    expect(await viewers(s.streamId, a)).toBe(2);
    // Its last socket goes: b is told at once that one app is left.
    await closeAndWait(a2);
    expect(await viewers(s.streamId, a)).toBe(1);
    expect(b1.messages.at(-1)).toMatchObject({ type: "managed_stream_status", viewers: 1 });
    expect(await streamTimers(s.streamId)).not.toHaveProperty("grace");

    await closeAndWait(b1);
    expect(await viewers(s.streamId, a)).toBe(0);
    // b's join hold may still count it as present; once no hold is left either, grace arms.
    await runInDurableObject(env.STREAMS.getByName(s.streamId), (_i, state) => {
      state.storage.sql.exec("DELETE FROM join_holds");
    });
    const again = await viewerSocket(s.streamId, a);
    expect(await again.next("managed_stream_status")).toMatchObject({ viewers: 1 });
    await closeAndWait(again);
    expect(await viewers(s.streamId, a)).toBe(0);
    expect(await streamTimers(s.streamId)).toHaveProperty("grace");
  });

  it("are re-derived from the sockets on wake: only sockets still there count", async () => {
    const { a, b, s } = await sharedStream();
    const sa = await viewerSocket(s.streamId, a);
    const sb = await viewerSocket(s.streamId, b);
    await sb.next("managed_stream_status");
    expect(await viewers(s.streamId, a)).toBe(2);
    // a's socket is lost the way a crash loses it (no close ever runs); the new instance must not count it.
    await runInDurableObject(env.STREAMS.getByName(s.streamId), (_i, state) => {
      for (const ws of state.getWebSockets(`app:${a.packageName}`)) ws.serializeAttachment(null);
    });
    expect(await restart(s.streamId, a)).toBe(1);
    // The wake pushed the change to the viewer still there.
    expect(sb.messages.at(-1)).toMatchObject({ viewers: 1 });
    void sa;
  });

  it("after a wake each socket still there is counted once: closes uncount it exactly once", async () => {
    const app = await registerApp();
    const s = await startStream(app);
    const sockets = [await viewerSocket(s.streamId, app), await viewerSocket(s.streamId, app)];
    await sockets[1]!.next("managed_stream_status");
    expect(await restart(s.streamId, app)).toBe(1);
    await closeAndWait(sockets[0]!);
    // Counted once each after the re-derivation: one close leaves the app watching.
    expect(await viewers(s.streamId, app)).toBe(1);
    await closeAndWait(sockets[1]!);
    expect(await viewers(s.streamId, app)).toBe(0);
  });
});

describe("one push, each distinct message once", () => {
  it("refuses permessage-deflate, which every client offers: a push is one serialization, never N deflate runs", async () => {
    const app = await registerApp();
    const s = await startStream(app);
    const res = await SELF.fetch(`http://coordinator.test/api/streams/${s.streamId}/ws`, {
      headers: { upgrade: "websocket", "sec-websocket-extensions": "permessage-deflate; client_max_window_bits", ...app.headers },
    });
    expect(res.status).toBe(101);
    // No extension accepted (compat flag no_web_socket_compression in wrangler.jsonc).
    expect(res.headers.get("sec-websocket-extensions")).toBeNull();
    res.webSocket!.accept();
    res.webSocket!.close(1000);
  });

  it("masks stream keys per app: owners see their own keys, everybody else shares one masked message", async () => {
    const [a, b, c] = [await registerApp(), await registerApp(), await registerApp()];
    const userId = newUserId();
    const s = await startStream(a, userId);
    await startStream(b, userId);
    await startStream(c, userId);
    const [sa, sb] = [await viewerSocket(s.streamId, a), await viewerSocket(s.streamId, b)];
    const addA = await call("POST", `/api/streams/${s.streamId}/outputs`, { url: "rtmp://a.rtmp.youtube.com/live2/key-of-a" }, a.headers);
    expect(addA.status).toBeLessThan(300);
    const addB = await call("POST", `/api/streams/${s.streamId}/outputs`, { url: "rtmp://live.twitch.tv/app/key-of-b" }, b.headers);
    expect(addB.status).toBeLessThan(300);
    // c connects last: that one push (viewer count 2 → 3) carries both outputs to everyone.
    const sc = await viewerSocket(s.streamId, c);
    const last = async (socket: TestSocket) => {
      for (;;) {
        const m = await socket.next("managed_stream_status");
        if (m.viewers === 3 && m.outputs.length === 2) return m;
      }
    };
    const [ma, mb, mc] = [await last(sa), await last(sb), await last(sc)];
    const urls = (m: { outputs: Array<{ url: string }> }) => m.outputs.map((o) => o.url).sort();
    expect(urls(ma)).toContain("rtmp://a.rtmp.youtube.com/live2/key-of-a");
    expect(JSON.stringify(ma)).not.toContain("key-of-b");
    expect(urls(mb)).toContain("rtmp://live.twitch.tv/app/key-of-b");
    expect(JSON.stringify(mb)).not.toContain("key-of-a");
    expect(JSON.stringify(mc)).not.toContain("key-of-a");
    expect(JSON.stringify(mc)).not.toContain("key-of-b");
    // One push, one timestamp for the sockets it reached. c was sent its status directly on connect (a
    // separate build, so its timestamp may differ by a millisecond); every other unmasked field is the same.
    expect(ma.timestamp).toBe(mb.timestamp);
    const { outputs: _a, timestamp: _ta, ...restA } = ma;
    const { outputs: _c, timestamp: _tc, ...restC } = mc;
    expect(restA).toEqual(restC);
  });

  it("a viewer that reconnects gets the status at once, even when nothing changed since the last push", async () => {
    const app = await registerApp();
    const s = await startStream(app);
    const keep = await viewerSocket(s.streamId, app);
    await keep.next("managed_stream_status");
    for (let i = 0; i < 3; i++) {
      const socket = await viewerSocket(s.streamId, app);
      expect(await socket.next("managed_stream_status", 1_000)).toMatchObject({ streamId: s.streamId, viewers: 1 });
      await closeAndWait(socket);
    }
    expect(await viewers(s.streamId, app)).toBe(1);
  });
});
