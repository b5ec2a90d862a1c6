import { env } from "cloudflare:test";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { freezeClock, resetClock, shiftClock } from "../../src/clock";
import { appObjectUnreachable, fireAlarm, newUserId, registerApp, resetEmulator, startStream, streamTimers } from "../helpers";

beforeEach(resetEmulator);
afterEach(resetClock);

const listed = async (packageName: string) => (await env.APPS.getByName(packageName).listStreams(null, 10)).entries.map((e) => e.streamId);

describe("the user-index (app stream list) outbox", () => {
  it("a join the app's object did not take is retried 5 s later from the alarm, and then listed", async () => {
    const [owner, joiner] = [await registerApp(), await registerApp()];
    const userId = newUserId();
    const s = await startStream(owner, userId);
    const unreachable = await appObjectUnreachable(s.streamId, ["recordStreams"]);
    const now = freezeClock();
    const joined = await startStream(joiner, userId);
    expect(joined.streamId).toBe(s.streamId);
    expect(await listed(joiner.packageName)).toEqual([]);
    expect((await streamTimers(s.streamId))["participation-outbox"]).toBe(now + 5_000);
    await unreachable.restore();

    shiftClock(4_999);
    await fireAlarm(s.streamId);
    expect(await listed(joiner.packageName)).toEqual([]);
    shiftClock(1);
    await fireAlarm(s.streamId);
    expect(await listed(joiner.packageName)).toEqual([s.streamId]);
    expect(await streamTimers(s.streamId)).not.toHaveProperty("participation-outbox");
  });
});
