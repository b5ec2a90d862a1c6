import { env, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { forgetInputStream, recordInputStream, streamIdForInput } from "../../src/cloudflare/live-input-index";

describe("the live input → stream index", () => {
  it("records, finds and forgets an input in its shard, without an object per input", async () => {
    const uid = crypto.randomUUID().replaceAll("-", "");
    await recordInputStream(env, uid, "stream-a");
    expect(await streamIdForInput(env, uid)).toBe("stream-a");
    // Nothing was written to an object named by the uid.
    const perUid = await runInDurableObject(env.INPUT_INDEX.getByName(uid), (_i, state) => state.storage.sql.exec("SELECT COUNT(*) AS n FROM inputs").one().n);
    expect(perUid).toBe(0);
    await forgetInputStream(env, uid);
    expect(await streamIdForInput(env, uid)).toBeNull();
  });

  it("still finds an input indexed by an earlier version (one object per uid, key streamId)", async () => {
    const uid = crypto.randomUUID().replaceAll("-", "");
    await runInDurableObject(env.INPUT_INDEX.getByName(uid), (_i, state) => state.storage.put("streamId", "stream-old"));
    expect(await streamIdForInput(env, uid)).toBe("stream-old");
  });
});
