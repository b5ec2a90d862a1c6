import { env, runInDurableObject } from "cloudflare:test";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { resetClock, shiftClock } from "../../src/clock";
import { loadConfig } from "../../src/config";
import {
  call,
  cloudflareDirect,
  deviceToken,
  emulatorInputs,
  expireTimer,
  inputFor,
  newUserId,
  openSocket,
  registerApp,
  resetEmulator,
  startStream,
  streamTimers,
  waitFor,
  restartStreamObject,
} from "../helpers";

/**
 * What a crash, an eviction or a deploy takes away — sockets closed without a close event, a create in
 * flight — is re-derived from durable state when the object starts again, and audited while it runs.
 */
beforeEach(resetEmulator);
afterEach(resetClock);
const TEST_CONFIG = loadConfig(env);


/** Erases the sockets' trace the way a crash does: they are gone, and no close ever ran. */
async function forgetSocketsAsACrashWould(streamId: string): Promise<void> {
  await runInDurableObject(env.STREAMS.getByName(streamId), (_i, state) => {
    for (const ws of state.getWebSockets()) ws.serializeAttachment(null);
    state.storage.sql.exec("DELETE FROM join_holds");
    state.storage.sql.exec("DELETE FROM schedule WHERE name = 'grace' OR name LIKE 'hold:%'");
  });
}

const status = async (streamId: string, headers: Record<string, string>) => (await call("GET", `/api/streams/${streamId}`, undefined, headers)).body;

describe("presence is re-derived on wake", () => {
  it("a stream whose viewers vanished in a crash arms its grace timer when it starts again, then stops", async () => {
    const app = await registerApp();
    const s = await startStream(app);
    // The app's join hold ran out long ago; nothing is connected any more, and no close was ever seen.
    await forgetSocketsAsACrashWould(s.streamId);
    expect(await streamTimers(s.streamId)).not.toHaveProperty("grace");

    await restartStreamObject(s.streamId);
    const timers = await streamTimers(s.streamId);
    expect(timers.grace).toBeDefined();
    expect(timers.grace! - Date.now()).toBeLessThanOrEqual(TEST_CONFIG.viewerGraceSeconds * 1000);

    await expireTimer(s.streamId, "grace");
    expect((await status(s.streamId, app.headers)).status).toBe("stopped");
    expect(await emulatorInputs()).toEqual([]);
  });

  it("a viewer still connected keeps the stream through a wake", async () => {
    const app = await registerApp();
    const s = await startStream(app);
    const socket = await openSocket(s.streamId, { headers: app.headers });
    await socket.next("managed_stream_status");
    await restartStreamObject(s.streamId);
    expect(await streamTimers(s.streamId)).not.toHaveProperty("grace");
    expect((await status(s.streamId, app.headers)).viewers).toBe(1);
  });

  it("a create that died with the previous instance is settled at once: its input is deleted, the stream given up", async () => {
    const app = await registerApp();
    const s = await startStream(app);
    // As if the object died between Cloudflare making the input and recording it.
    await runInDurableObject(env.STREAMS.getByName(s.streamId), (_i, state) => {
      state.storage.sql.exec("UPDATE stream SET phase = 'initializing', live_input_uid = NULL");
    });
    await restartStreamObject(s.streamId);
    // Due now, not a minute later: the alarm runs it by itself.
    await waitFor(async () => (await emulatorInputs()).length === 0, 5_000, "the input deleted");
    expect((await call("GET", `/api/streams/${s.streamId}`, undefined, app.headers)).status).toBe(404);
  });

  it("keep-alives run exactly while the glasses are connected", async () => {
    const app = await registerApp();
    const userId = newUserId();
    const s = await startStream(app, userId);
    const device = await openSocket(s.streamId, { headers: { authorization: `Bearer ${await deviceToken(userId)}` } });
    await device.next("start_rtmp_stream");
    expect(await streamTimers(s.streamId)).toHaveProperty("device-keepalive");
    device.ws.close(1000, "bye");
    await device.closed;
    // The close may never arrive (a crash): a wake finds no device socket and stops the keep-alives.
    await runInDurableObject(env.STREAMS.getByName(s.streamId), (_i, state) => {
      state.storage.sql.exec("INSERT OR REPLACE INTO schedule (name, due_at) VALUES ('device-keepalive', ?)", Date.now() + 15_000);
    });
    await restartStreamObject(s.streamId);
    expect(await streamTimers(s.streamId)).not.toHaveProperty("device-keepalive");
  });
});

describe("the presence audit", () => {
  it("runs every PRESENCE_AUDIT_SECONDS while the stream runs, and stops with it", async () => {
    const app = await registerApp();
    const s = await startStream(app);
    const audit = (await streamTimers(s.streamId))["presence-audit"];
    expect(audit).toBeDefined();
    expect(audit! - Date.now()).toBeGreaterThan((TEST_CONFIG.presenceAuditSeconds - 2) * 1000);
    expect(audit! - Date.now()).toBeLessThanOrEqual(TEST_CONFIG.presenceAuditSeconds * 1000);
    await call("POST", `/api/admin/streams/${s.streamId}/stop`, undefined, { authorization: `Bearer ${env.ADMIN_TOKEN}` });
    expect(await streamTimers(s.streamId)).not.toHaveProperty("presence-audit");
  });

  it("a stream with nobody left stops within grace + one audit interval, whatever was lost", async () => {
    const app = await registerApp();
    const s = await startStream(app);
    await forgetSocketsAsACrashWould(s.streamId);
    // Nothing woke the object: the audit is what notices.
    await expireTimer(s.streamId, "presence-audit");
    const timers = await streamTimers(s.streamId);
    expect(timers.grace).toBeDefined();
    expect(timers["presence-audit"]).toBeDefined();
    // Just before grace ends the stream still runs; just after, it has stopped.
    shiftClock(TEST_CONFIG.viewerGraceSeconds * 1000 - 1_000);
    await expireTimer(s.streamId, "presence-audit");
    expect((await status(s.streamId, app.headers)).status).not.toBe("stopped");
    await expireTimer(s.streamId, "grace");
    expect((await status(s.streamId, app.headers)).status).toBe("stopped");
    expect(await inputFor(s.streamId)).toBeUndefined();
  });

  it("the audit leaves a watched stream alone", async () => {
    const app = await registerApp();
    const s = await startStream(app);
    const socket = await openSocket(s.streamId, { headers: app.headers });
    await socket.next("managed_stream_status");
    await expireTimer(s.streamId, "presence-audit");
    expect(await streamTimers(s.streamId)).not.toHaveProperty("grace");
  });
});

describe("the leak sweep", () => {
  it("deletes an input of ours whose stream the coordinator does not know, past the safety age only", async () => {
    const { sweepLeakedInputs } = await import("../../src/sweep/leak-sweep");
    await cloudflareDirect("POST", "", { meta: { managedBy: "stream-coordinator", streamId: "Unknown-stream-id-000" } });
    expect((await sweepLeakedInputs(env)).deleted).toEqual([]);
    const later = Date.now() + (TEST_CONFIG.leakSweepMinutes * 60 + 1) * 1000;
    expect((await sweepLeakedInputs(env, later)).deleted).toHaveLength(1);
    expect(await emulatorInputs()).toEqual([]);
  });

  it("deletes a second input made for a running stream, and keeps the one the stream uses", async () => {
    const { sweepLeakedInputs } = await import("../../src/sweep/leak-sweep");
    const app = await registerApp();
    const s = await startStream(app);
    const used = await inputFor(s.streamId);
    await cloudflareDirect("POST", "", { meta: { managedBy: "stream-coordinator", streamId: s.streamId } });
    const later = Date.now() + (TEST_CONFIG.leakSweepMinutes * 60 + 1) * 1000;
    const report = await sweepLeakedInputs(env, later);
    expect(report.deleted).toHaveLength(1);
    expect(report.deleted).not.toContain(used.uid);
    expect((await emulatorInputs()).map((i) => i.uid)).toEqual([used.uid]);
  });
});
