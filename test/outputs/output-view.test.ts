import { describe, expect, it } from "vitest";
import { maskSecrets, viewOutput, type OutputFacts } from "../../src/outputs/output-view";

const OWNER = "com.example.owner";
const OTHER = "com.example.other";
const row: OutputFacts = {
  output_id: "out-1",
  added_by: OWNER,
  url: "rtmp://user:pass@live.example.com/app/secret-key",
  masked_url: "rtmp://live.example.com/app/****",
  stream_key: "secret-key",
  name: "My channel",
  state: "created",
  enabled: 1,
  error: null,
};
const live = { ingestStable: true, stale: false, inputError: null };

describe("how an output looks to each viewer", () => {
  it("the app that added it sees its URL as given; every other viewer (and no viewer) sees it masked", () => {
    expect(viewOutput(row, OWNER, live)).toEqual({
      outputId: "out-1",
      url: row.url,
      name: "My channel",
      addedBy: OWNER,
      status: "active",
      error: null,
      enabled: true,
    });
    expect(viewOutput(row, OTHER, live).url).toBe(row.masked_url);
    expect(viewOutput(row, null, live).url).toBe(row.masked_url);
  });

  it("a disabled output shows enabled false and status unknown; a pending one connecting", () => {
    expect(viewOutput({ ...row, enabled: 0 }, OWNER, live)).toMatchObject({ enabled: false, status: "unknown" });
    expect(viewOutput({ ...row, state: "pending" }, OWNER, live)).toMatchObject({ enabled: true, status: "connecting" });
  });

  it("its status follows the stream: connecting while ingest is not stable, unknown while knowledge is stale", () => {
    expect(viewOutput(row, OWNER, { ...live, ingestStable: false }).status).toBe("connecting");
    expect(viewOutput(row, OWNER, { ...live, stale: true }).status).toBe("unknown");
  });

  it("an errored input errors every output; the output's own error wins over the input's", () => {
    expect(viewOutput(row, OWNER, { ...live, inputError: "input errored" })).toMatchObject({ status: "error", error: "input errored" });
    expect(viewOutput({ ...row, error: "relay refused" }, OWNER, { ...live, inputError: "input errored" })).toMatchObject({
      status: "error",
      error: "relay refused",
    });
  });

  it("an error quoting the destination is shown whole to the owner, with every secret masked to others", () => {
    const quoting = { ...row, error: `connect to ${row.url} failed (key secret-key, user user:pass)` };
    expect(viewOutput(quoting, OWNER, live).error).toBe(quoting.error);
    const seen = viewOutput(quoting, OTHER, live).error!;
    expect(seen).toBe("connect to rtmp://live.example.com/app/**** failed (key ****, user ****)");
    expect(seen).not.toContain("secret-key");
    expect(seen).not.toContain("pass");
  });
});

describe("masking secrets in text other apps see", () => {
  it("replaces every occurrence of the URL, then of the stream key", () => {
    const plain = { url: "rtmp://h.example/app/k123", masked_url: "rtmp://h.example/app/****", stream_key: "k123" };
    expect(maskSecrets("a rtmp://h.example/app/k123 b rtmp://h.example/app/k123", plain)).toBe("a rtmp://h.example/app/**** b rtmp://h.example/app/****");
    expect(maskSecrets("k123 and k123", plain)).toBe("**** and ****");
    expect(maskSecrets("nothing secret", plain)).toBe("nothing secret");
  });

  it("masks the user-info of rtmp and rtmps URLs, whatever the scheme's case", () => {
    const creds = (url: string) => ({ url, masked_url: "x", stream_key: "" });
    expect(maskSecrets("login as bob:hunter2 refused", creds("rtmps://bob:hunter2@h.example/app/k"))).toBe("login as **** refused");
    expect(maskSecrets("login as bob:hunter2 refused", creds("RTMP://bob:hunter2@h.example/app/k"))).toBe("login as **** refused");
  });

  it("an empty stream key masks nothing, and a URL without user-info leaves the rest of the text as it is", () => {
    const noKey = { url: "rtmp://h.example/app/k", masked_url: "rtmp://h.example/app/****", stream_key: "" };
    expect(maskSecrets("abc", noKey)).toBe("abc");
    // The user-info is what precedes '@' in the authority only: an '@' in the path is no user-info.
    const atInPath = { url: "rtmp://h.example/app/k@x", masked_url: "m", stream_key: "zz" };
    expect(maskSecrets("rtmp: h.example/app/k", atInPath)).toBe("rtmp: h.example/app/k");
  });
});
