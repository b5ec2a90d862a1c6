// The delivery host's `/views` and `/lifecycle` (Cloudflare: `https://customer-<CODE>.cloudflarestream.com/<uid>/…`),
// in the workerd host, under `/playback/` and under the delivery host's own name. Real manifest clients
// being counted is tested with ffmpeg and players in test/e2e/watch.test.mjs.
import { beforeEach, describe, expect, it } from "vitest";
import { LiveViewers, VIEWER_WINDOW_MS } from "../../emulator/live-viewers.ts";
import { BASE, control, createInput, reset } from "./helpers.ts";

beforeEach(() => reset());

const getJson = async (url: string) => {
  const res = await fetch(url);
  return { status: res.status, headers: res.headers, body: (await res.json()) as Record<string, unknown> };
};

describe("delivery host: /views and /lifecycle", () => {
  it("lifecycle: an input, its current video while it records, and whether it is live", async () => {
    const li = await createInput({ recording: { mode: "automatic" } });
    const idle = await getJson(`${BASE}/playback/${li.uid}/lifecycle`);
    expect(idle.body).toEqual({ isInput: true, videoUID: null, live: false });
    expect(idle.headers.get("cache-control")).toBe("no-store");
    expect(idle.headers.get("access-control-allow-origin")).toBe("*");
    await control("POST", `live_inputs/${li.uid}/connect`);
    const live = await getJson(`https://customer-abc123.cloudflarestream.com/${li.uid}/lifecycle`);
    expect(live.body).toMatchObject({ isInput: true, live: true });
    expect(live.body.videoUID).toMatch(/^[0-9a-f]{32}$/);
    expect((await getJson(`${BASE}/playback/${"0".repeat(32)}/lifecycle`)).status).toBe(404);
  });

  it("views: 0 while not live; a pinned count while live; back to counting clients when unpinned", async () => {
    const li = await createInput();
    expect((await getJson(`${BASE}/playback/${li.uid}/views`)).body).toEqual({ liveViewers: 0 });
    await control("POST", `live_inputs/${li.uid}/views`, { liveViewers: 5 });
    expect((await getJson(`${BASE}/playback/${li.uid}/views`)).body).toEqual({ liveViewers: 0 });
    await control("POST", `live_inputs/${li.uid}/connect`);
    expect((await getJson(`https://customer-abc123.cloudflarestream.com/${li.uid}/views`)).body).toEqual({ liveViewers: 5 });
    await control("POST", `live_inputs/${li.uid}/views`, { liveViewers: null });
    expect((await getJson(`${BASE}/playback/${li.uid}/views`)).body).toEqual({ liveViewers: 0 });
    expect((await control("POST", `live_inputs/${li.uid}/views`, { liveViewers: -1 })).status).toBe(400);
    expect((await control("POST", `live_inputs/${"0".repeat(32)}/views`, { liveViewers: 1 })).status).toBe(404);
  });

  it("counts distinct clients (address + User-Agent) that fetched the live manifest within the window", () => {
    const viewers = new LiveViewers();
    const req = (address: string, ua: string) => new Request("http://x/", { headers: { "x-emulator-client": address, "user-agent": ua } });
    viewers.fetched("u", req("10.0.0.1", "hls.js"), 0);
    viewers.fetched("u", req("10.0.0.1", "hls.js"), 1_000);
    viewers.fetched("u", req("10.0.0.2", "hls.js"), 2_000);
    viewers.fetched("u", req("10.0.0.2", "dash.js"), 3_000);
    expect(viewers.count("u", 3_000)).toBe(3);
    expect(viewers.count("u", 1_000 + VIEWER_WINDOW_MS + 1)).toBe(2);
    expect(viewers.count("u", 3_000 + VIEWER_WINDOW_MS + 1)).toBe(0);
    expect(viewers.count("other", 0)).toBe(0);
  });
});
