import { env } from "cloudflare:test";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ENDED_RETENTION_MS } from "../../src/apps/app-streams";
import { freezeClock, resetClock, shiftClock } from "../../src/clock";
import { registerApp, resetEmulator } from "../helpers";

beforeEach(resetEmulator);
afterEach(resetClock);

/** The index of the streams an app takes part in (src/apps/app-streams.ts), through its AppAccount object. */
async function account() {
  return env.APPS.getByName((await registerApp()).packageName);
}
const entry = (streamId: string, joinedAt: number, endedAt: number | null = null) => ({ streamId, userId: `user-of-${streamId}`, joinedAt, endedAt });
const ids = (page: { entries: { streamId: string }[] }) => page.entries.map((e) => e.streamId);

describe("the streams an app takes part in", () => {
  it("a join reported twice keeps the first join time; an end, once known, stays when a later report has none", async () => {
    const app = await account();
    const t0 = freezeClock();
    await app.recordStreams([entry("s1", t0 + 500)]);
    await app.recordStreams([entry("s1", t0)]);
    await app.recordStreams([entry("s1", t0 + 900)]);
    expect((await app.listStreams(null, 10)).entries).toEqual([entry("s1", t0)]);
    await app.recordStreams([entry("s1", t0, t0 + 1_000)]);
    await app.recordStreams([entry("s1", t0 + 2_000)]);
    expect((await app.listStreams(null, 10)).entries).toEqual([entry("s1", t0, t0 + 1_000)]);
  });

  it("an ended stream is listed for 24 hours after its end, and dropped from then on; a running one is never dropped", async () => {
    const app = await account();
    const t0 = freezeClock();
    await app.recordStreams([entry("ended", t0, t0 + 1_000), entry("running", t0 - 1)]);
    shiftClock(1_000 + ENDED_RETENTION_MS);
    expect(ids(await app.listStreams(null, 10))).toEqual(["ended", "running"]);
    shiftClock(1);
    expect(ids(await app.listStreams(null, 10))).toEqual(["running"]);
    shiftClock(30 * ENDED_RETENTION_MS);
    expect(ids(await app.listStreams(null, 10))).toEqual(["running"]);
    expect(ENDED_RETENTION_MS).toBe(24 * 3_600_000);
  });

  it("pages are newest join first, ties by stream id, and together list every stream once", async () => {
    const app = await account();
    const t0 = freezeClock();
    await app.recordStreams([entry("a", t0), entry("c", t0), entry("b", t0), entry("old", t0 - 5), entry("new", t0 + 5)]);
    const first = await app.listStreams(null, 2);
    expect(first).toMatchObject({ more: true });
    expect(ids(first)).toEqual(["new", "c"]);
    const second = await app.listStreams({ at: t0, streamId: "c" }, 2);
    expect(ids(second)).toEqual(["b", "a"]);
    expect(second.more).toBe(true);
    const last = await app.listStreams({ at: t0, streamId: "a" }, 2);
    expect(ids(last)).toEqual(["old"]);
    expect(last.more).toBe(false);
  });

  it("a page holding exactly the rest says no more follow", async () => {
    const app = await account();
    const t0 = freezeClock();
    await app.recordStreams([entry("a", t0), entry("b", t0 + 1)]);
    expect(await app.listStreams(null, 2)).toMatchObject({ more: false });
    expect(ids(await app.listStreams(null, 1))).toEqual(["b"]);
    expect(await app.listStreams(null, 1)).toMatchObject({ more: true });
  });

  it("a stream found gone is forgotten, and only that one", async () => {
    const app = await account();
    const t0 = freezeClock();
    await app.recordStreams([entry("a", t0), entry("b", t0 + 1), entry("c", t0 + 2)]);
    await app.forgetStreams(["a", "c"]);
    expect(ids(await app.listStreams(null, 10))).toEqual(["b"]);
  });
});
