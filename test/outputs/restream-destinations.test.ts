import { describe, expect, it } from "vitest";
import type { Result } from "../../src/http/errors";
import type { ParsedRtmpUrl } from "../../src/outputs/rtmp-url";
import { addRestreamDestinations } from "../../src/outputs/restream-destinations";

describe("the restream destinations of a start", () => {
  it("each destination gets its own result, in order; a refused one neither undoes nor stops the others", async () => {
    const added: { url: ParsedRtmpUrl; name: string | null }[] = [];
    const add = async (url: ParsedRtmpUrl, name: string | null): Promise<Result<{ outputId: string }>> => {
      added.push({ url, name });
      return url.streamKey === "full"
        ? { ok: false, status: 409, error: "OUTPUT_LIMIT_REACHED", message: "too many outputs" }
        : { ok: true, outputId: `out-${added.length}` };
    };
    const results = await addRestreamDestinations(
      [
        { url: "rtmp://a.example/live/one", name: "First" },
        { url: "not a url" },
        { url: "rtmp://b.example/live/full" },
        { url: 42 },
        {},
        { url: "RTMP://c.example/live/three" },
      ],
      add,
    );
    expect(results).toEqual([
      { url: "rtmp://a.example/live/one", success: true, outputId: "out-1" },
      { url: "not a url", success: false, error: "INVALID_URL", message: "url must start with rtmp:// or rtmps://" },
      { url: "rtmp://b.example/live/full", success: false, error: "OUTPUT_LIMIT_REACHED", message: "too many outputs" },
      { url: null, success: false, error: "INVALID_URL", message: "url must be a string" },
      { url: null, success: false, error: "INVALID_URL", message: "url is required" },
      { url: "RTMP://c.example/live/three", success: true, outputId: "out-3" },
    ]);
    // Only valid URLs reach the add, parsed, with the name given or null.
    expect(added.map((a) => [a.url.streamKey, a.name])).toEqual([
      ["one", "First"],
      ["full", null],
      ["three", null],
    ]);
  });

  it("no destinations: no results, nothing added", async () => {
    let calls = 0;
    expect(await addRestreamDestinations([], async () => ((calls += 1), { ok: true, outputId: "x" }))).toEqual([]);
    expect(calls).toBe(0);
  });
});
