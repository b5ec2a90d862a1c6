// The playback routes in the workerd host: it has no RTMP ingest and no ffmpeg, so media requests get a
// clear 503 JSON; routing, CORS and the other answers are the ones the Node host gives (real media there is
// tested in test/e2e/playback.test.mjs).
import { beforeEach, describe, expect, it } from "vitest";
import { BASE, INPUTS, api, control, createInput, reset } from "./helpers.ts";

beforeEach(() => reset());

const get = async (url: string, init: RequestInit = {}) => {
  const res = await fetch(url, init);
  const text = await res.text();
  return { status: res.status, headers: res.headers, text, body: res.headers.get("content-type")?.startsWith("application/json") ? JSON.parse(text) : null };
};

describe("playback routes (workerd host)", () => {
  it("answers 503 JSON for the input's own playback URLs, with CORS, and logs no API call", async () => {
    const li = await createInput();
    await control("DELETE", "calls");
    const host = `${BASE}/playback/${li.uid}`;
    // The input names its URLs on the configured public host; the routes are the same under any host.
    expect(li.playback.hls).toBe(`http://127.0.0.1:8788/playback/${li.uid}/manifest/video.m3u8`);
    for (const path of ["manifest/video.m3u8", "manifest/video.mpd", "thumbnails/thumbnail.jpg", "manifest/abc-00001.ts"]) {
      const r = await get(`${host}/${path}`);
      expect(r.status, path).toBe(503);
      expect(r.body.error).toBe("PLAYBACK_UNAVAILABLE");
      expect(r.body.message).toMatch(/workerd.*ffmpeg/);
      expect(r.headers.get("access-control-allow-origin")).toBe("*");
      expect(r.headers.get("cache-control")).toBe("no-store");
    }
    expect((await control("GET", "calls")).body.calls).toEqual([]);
  });

  it("404 JSON for an unknown input or resource; 405 for other methods; preflight 204", async () => {
    const li = await createInput();
    const unknown = await get(`${BASE}/playback/${"0".repeat(32)}/manifest/video.m3u8`);
    expect(unknown.status).toBe(404);
    expect(unknown.body).toEqual({ error: "NOT_FOUND", message: expect.stringContaining("No live input") });
    const resource = await get(`${BASE}/playback/${li.uid}/manifest/../secret`);
    expect(resource.status).toBe(404);
    const traversal = await get(`${BASE}/playback/${li.uid}/manifest/%2e%2e%2fvideo.ts`);
    expect(traversal.status).toBe(404);
    // WHIP/WHEP take an SDP offer by POST (webrtc-http.ts); a GET is a 405.
    expect((await get(`${BASE}/playback/${li.uid}/webRTC/play`)).status).toBe(405);
    expect((await get(li.webRTC.url.replace("http://127.0.0.1:8788", BASE))).status).toBe(405);
    const post = await get(`${BASE}/playback/${li.uid}/manifest/video.m3u8`, { method: "POST", body: "x" });
    expect(post.status).toBe(405);
    const preflight = await fetch(`${BASE}/playback/${li.uid}/manifest/video.m3u8`, { method: "OPTIONS" });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get("access-control-allow-origin")).toBe("*");
    expect(preflight.headers.get("access-control-allow-methods")).toContain("GET");
  });

  it("serves the previewUrl page (iframe) for a known input", async () => {
    const li = await createInput();
    const page = await get(`${BASE}/playback/${li.uid}/iframe`);
    expect(page.status).toBe(200);
    expect(page.headers.get("content-type")).toMatch(/^text\/html/);
    expect(page.text).toContain("manifest/video.m3u8");
  });

  it("a video's playback URLs (its recording) are routed too: 503 for media here, the watch page, 404 for other resources", async () => {
    const li = await createInput({ recording: { mode: "automatic", timeoutSeconds: 5 } });
    expect((await control("POST", `live_inputs/${li.uid}/connect`)).status).toBe(200);
    const [video] = (await api("GET", `${BASE}/client/v4/accounts/local-account/stream?live_input_id=${li.uid}`)).body.result;
    const host = `${BASE}/playback/${video.uid}`;
    expect(video.playback.hls).toBe(`http://127.0.0.1:8788/playback/${video.uid}/manifest/video.m3u8`);
    for (const path of ["manifest/video.m3u8", "manifest/video.mpd", "thumbnails/thumbnail.jpg", "manifest/rec-abc-00001.ts"]) {
      const r = await get(`${host}/${path}`);
      expect(r.status, path).toBe(503);
      expect(r.body.error).toBe("PLAYBACK_UNAVAILABLE");
    }
    const watch = await get(`${host}/watch`);
    expect(watch.status).toBe(200);
    expect(watch.text).toContain(`Video ${video.uid}`);
    expect((await get(`${host}/manifest/../x`)).status).toBe(404);
  });

  it("a deleted input's playback URLs are 404", async () => {
    const li = await createInput();
    expect((await api("DELETE", `${INPUTS}/${li.uid}`)).status).toBe(200);
    const r = await get(`${BASE}/playback/${li.uid}/manifest/video.m3u8`);
    expect(r.status).toBe(404);
    expect(r.body.error).toBe("NOT_FOUND");
  });
});

describe("WHIP/WHEP signalling (webrtc-http.ts; workerd has no UDP: webrtc-signalling.ts, no media)", () => {
  const offer = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:0\r\na=rtpmap:96 VP8/90000\r\n";
  const post = (url: string, body: string, type = "application/sdp") => get(url, { method: "POST", headers: { "content-type": type }, body });
  const connected = async (uid: string) => (await control("GET", "state")).body.inputs.find((i: { uid: string }) => i.uid === uid).connected;

  it("refuses bad requests as WHIP/WHEP servers do, and nothing connects", async () => {
    const li = await createInput();
    const whip = li.webRTC.url.replace("http://127.0.0.1:8788", BASE);
    const whep = `${BASE}/playback/${li.uid}/webRTC/play`;
    const wrongType = await post(whip, offer, "application/json");
    expect(wrongType.status).toBe(415);
    expect(wrongType.body.error).toBe("UNSUPPORTED_MEDIA_TYPE");
    expect((await post(whip, "hello")).status).toBe(400);
    expect((await post(whip.replace(/playback\/[^/]+\//, "playback/not-a-secret/"), offer)).status).toBe(404);
    const early = await post(whep, offer);
    expect(early.status).toBe(409);
    expect(early.body.error).toBe("NOT_LIVE_OVER_WHIP");
    expect((await post(`${BASE}/playback/${"0".repeat(32)}/webRTC/play`, offer)).status).toBe(404);
    expect((await get(`${whip}/abc123`, { method: "DELETE" })).status).toBe(404);
    const preflight = await fetch(whip, { method: "OPTIONS" });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get("access-control-allow-methods")).toContain("POST");
    expect(preflight.headers.get("access-control-expose-headers")).toContain("location");
    expect(await connected(li.uid)).toBe(false);
  });

  it("a WHIP publish connects the input (its outputs fail: no simulcast), WHEP plays it, and the DELETE disconnects it", async () => {
    const li = await createInput();
    await api("POST", `${INPUTS}/${li.uid}/outputs`, { url: "rtmp://example.test/live", streamKey: "k" });
    const whip = li.webRTC.url.replace("http://127.0.0.1:8788", BASE);
    const published = await post(whip, offer);
    expect(published.status).toBe(201);
    expect(published.headers.get("content-type")).toBe("application/sdp");
    expect(published.text).toMatch(/^v=0\r\n[\s\S]*m=video 9 UDP\/TLS\/RTP\/SAVPF 96\r\n[\s\S]*a=recvonly/);
    const resource = published.headers.get("location")!;
    expect(resource).toMatch(/\/webRTC\/publish\/[0-9a-f]+$/);
    expect(await connected(li.uid)).toBe(true);
    const state = (await control("GET", "state")).body.inputs.find((i: { uid: string }) => i.uid === li.uid);
    expect(state.outputs[0].relay).toMatchObject({ state: "error", lastError: expect.stringContaining("WebRTC") });
    expect((await post(whip, offer)).status).toBe(409);
    // A WHIP input plays over WHEP only.
    expect((await get(`${BASE}/playback/${li.uid}/manifest/video.m3u8`)).status).toBe(404);
    const played = await post(`${BASE}/playback/${li.uid}/webRTC/play`, offer);
    expect(played.status).toBe(201);
    expect(played.text).toContain("a=sendonly");
    expect((await get(`${BASE}${resource}`, { method: "DELETE" })).status).toBe(200);
    expect(await connected(li.uid)).toBe(false);
    expect((await get(`${BASE}${resource}`, { method: "DELETE" })).status).toBe(404);
  });
});
