import { beforeEach, describe, expect, it } from "vitest";
import {
  call,
  cloudflareDirect,
  deviceToken,
  inputFor,
  newUserId,
  openSocket,
  postStream,
  registerApp,
  resetEmulator,
  startStream,
  type Json,
  type TestApp,
  type TestSocket,
  expireTimer,
} from "../helpers";

/** The stream's ingest protocol (src/stream/ingest-choice.ts): what each choice gives, refuses and hands the glasses. */
beforeEach(resetEmulator);

const CUSTOMER = "https://customer-testcode.cloudflarestream.com";
const yt = (key: string) => `rtmp://a.rtmp.youtube.com/live2/${key}`;

async function deviceStart(userId: string): Promise<Json> {
  const res = await call("GET", "/api/device/stream", undefined, { authorization: `Bearer ${await deviceToken(userId)}` });
  expect(res.status).toBe(200);
  return res.body.start;
}

async function deviceSocketStart(streamId: string, userId: string): Promise<Json> {
  const device = await openSocket(streamId, { headers: { authorization: `Bearer ${await deviceToken(userId)}` } });
  const start = await device.next("start_rtmp_stream");
  device.ws.close();
  return start;
}

async function answerOf(socket: TestSocket): Promise<Json> {
  for (;;) {
    const message = await socket.next("managed_stream_status");
    if (message.restreamResults) return message;
  }
}

describe("ingest rtmp (the default: today's clients unchanged)", () => {
  it("a start without `ingest` is RTMP: HLS/DASH for viewers, the RTMPS URL alone for the glasses", async () => {
    const app = await registerApp();
    const userId = newUserId();
    const s = await startStream(app, userId);
    const input = await inputFor(s.streamId);
    expect(s).toMatchObject({ ingestProtocol: "rtmp", hlsUrl: `${CUSTOMER}/${input.uid}/manifest/video.m3u8`, webrtcUrl: null });
    expect(input.meta.ingest).toBe("rtmp");
    const start = await deviceStart(userId);
    expect(start).toMatchObject({ ingest: "rtmp", rtmpUrl: `${input.rtmps.url}${input.rtmps.streamKey}` });
    expect(start).not.toHaveProperty("srt");
    expect(start).not.toHaveProperty("whipUrl");
  });

  it("recording defaults to automatic, 30 s after the input goes idle", async () => {
    const app = await registerApp();
    const res = await postStream(app, { userId: newUserId(), ingest: "rtmp" });
    expect(res.status).toBe(201);
    expect((await inputFor(res.body.streamId)).recording).toMatchObject({ mode: "automatic", timeoutSeconds: 30 });
  });
});

describe("ingest srt", () => {
  it("the glasses get the input's SRT url, streamId and passphrase (and RTMPS to fall back on); viewers get HLS/DASH", async () => {
    const app = await registerApp();
    const userId = newUserId();
    const s = await startStream(app, userId, { ingest: "srt" });
    const input = await inputFor(s.streamId);
    expect(s).toMatchObject({ ingestProtocol: "srt", hlsUrl: `${CUSTOMER}/${input.uid}/manifest/video.m3u8`, dashUrl: `${CUSTOMER}/${input.uid}/manifest/video.mpd`, webrtcUrl: null });
    for (const start of [await deviceStart(userId), await deviceSocketStart(s.streamId, userId)]) {
      expect(start).toMatchObject({ ingest: "srt", srt: { url: input.srt.url, streamId: input.srt.streamId, passphrase: input.srt.passphrase } });
      expect(start.rtmpUrl).toBe(`${input.rtmps.url}${input.rtmps.streamKey}`);
      expect(start).not.toHaveProperty("whipUrl");
    }
  });

  it("keeps restream outputs and recording", async () => {
    const app = await registerApp();
    const res = await postStream(app, { userId: newUserId(), ingest: "srt", restreamDestinations: [{ url: yt("srt-key") }] });
    expect(res.status).toBe(201);
    expect(res.body.restreamResults).toEqual([{ url: yt("srt-key"), success: true, outputId: expect.any(String) }]);
    const input = await inputFor(res.body.streamId);
    expect(input.recording.mode).toBe("automatic");
    expect(await cloudflareDirect("GET", `/${input.uid}/outputs`)).toHaveLength(1);
  });
});

describe("ingest webrtc", () => {
  async function webrtcStream(app: TestApp, userId = newUserId()) {
    const s = await startStream(app, userId, { ingest: "webrtc" });
    return { s, userId, input: await inputFor(s.streamId) };
  }

  it("viewers get the WHEP URL and no HLS/DASH, over REST and on their socket; the WHIP URL goes to the glasses only", async () => {
    const app = await registerApp();
    const { s, userId, input } = await webrtcStream(app);
    const whep = `${CUSTOMER}/${input.uid}/webRTC/play`;
    expect(s).toMatchObject({ ingestProtocol: "webrtc", webrtcUrl: whep, hlsUrl: null, dashUrl: null });
    const v = await openSocket(s.streamId, { headers: app.headers });
    const status = await v.next("managed_stream_status");
    expect(status.webrtcUrl).toBe(whep);
    expect(status).not.toHaveProperty("hlsUrl");
    expect(status).not.toHaveProperty("dashUrl");
    v.ws.send(JSON.stringify({ type: "stream_status_check" }));
    const check = await v.next("stream_status_check_response");
    expect(check.streamInfo).toMatchObject({ webrtcUrl: whep });
    expect(check.streamInfo).not.toHaveProperty("hlsUrl");

    for (const start of [await deviceStart(userId), await deviceSocketStart(s.streamId, userId)]) {
      expect(start).toMatchObject({ ingest: "webrtc", whipUrl: input.webRTC.url });
      expect(start).not.toHaveProperty("rtmpUrl");
      expect(start).not.toHaveProperty("srt");
    }
    // The WHIP URL is the credential: no app ever sees it (nor the RTMPS key).
    const seen = JSON.stringify([s, v.messages, (await call("GET", `/api/streams/${s.streamId}`, undefined, app.headers)).body]);
    expect(seen).not.toContain(input.webRTC.url);
    expect(seen).not.toContain(input.rtmps.streamKey);
  });

  it("its live input is created without recording (Cloudflare records no WHIP input)", async () => {
    const app = await registerApp();
    const res = await postStream(app, { userId: newUserId(), ingest: "webrtc" });
    expect(res.status).toBe(201);
    const input = await inputFor(res.body.streamId);
    expect(input.recording.mode).toBe("off");
    expect(input.meta.ingest).toBe("webrtc");
  });

  it("asking to record a webrtc stream is a 400 that creates nothing", async () => {
    const app = await registerApp();
    const userId = newUserId();
    const res = await postStream(app, { userId, ingest: "webrtc", recording: { mode: "automatic" } });
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ error: "INVALID_REQUEST", message: expect.stringContaining("WebRTC cannot be recorded") });
    expect(await cloudflareDirect("GET", "")).toMatchObject({ liveInputs: [] });
    // Nothing half-written: the user has no stream.
    const device = await call("GET", "/api/device/stream", undefined, { authorization: `Bearer ${await deviceToken(userId)}` });
    expect(device.body.error).toBe("NO_ACTIVE_STREAM");
  });

  it("an unknown ingest is a 400 naming the field", async () => {
    const app = await registerApp();
    const res = await postStream(app, { userId: newUserId(), ingest: "hls" });
    expect(res.status).toBe(400);
    expect(res.body.error).toBe("INVALID_REQUEST");
    expect(res.body.message).toContain("ingest");
  });

  it("adding an output is refused with 409 OUTPUTS_UNSUPPORTED, and nothing reaches Cloudflare", async () => {
    const app = await registerApp();
    const { s, input } = await webrtcStream(app);
    const res = await call("POST", `/api/streams/${s.streamId}/outputs`, { url: yt("k") }, app.headers);
    expect(res.status).toBe(409);
    expect(res.body).toMatchObject({ error: "OUTPUTS_UNSUPPORTED", message: expect.stringContaining("WebRTC") });
    // Also with an Idempotency-Key (a refusal is not remembered: it would be refused again anyway).
    const keyed = await call("POST", `/api/streams/${s.streamId}/outputs`, { url: yt("k") }, { ...app.headers, "idempotency-key": "k1" });
    expect(keyed.body.error).toBe("OUTPUTS_UNSUPPORTED");
    expect(await cloudflareDirect("GET", `/${input.uid}/outputs`)).toEqual([]);
    expect((await call("GET", `/api/streams/${s.streamId}/outputs`, undefined, app.headers)).body.outputs).toEqual([]);
  });

  it("a non-viewer still gets NOT_A_VIEWER first (validation order)", async () => {
    const owner = await registerApp();
    const other = await registerApp();
    const { s } = await webrtcStream(owner);
    const res = await call("POST", `/api/streams/${s.streamId}/outputs`, { url: yt("k") }, other.headers);
    expect(res.status).toBe(403);
  });

  it("restream destinations of a start are refused one by one, and the stream still starts", async () => {
    const app = await registerApp();
    const res = await postStream(app, { userId: newUserId(), ingest: "webrtc", restreamDestinations: [{ url: yt("a") }, { url: yt("b") }] });
    expect(res.status).toBe(201);
    expect(res.body.restreamResults).toEqual([
      { url: yt("a"), success: false, error: "OUTPUTS_UNSUPPORTED", message: expect.any(String) },
      { url: yt("b"), success: false, error: "OUTPUTS_UNSUPPORTED", message: expect.any(String) },
    ]);
    expect(await cloudflareDirect("GET", `/${(await inputFor(res.body.streamId)).uid}/outputs`)).toEqual([]);
  });

  it("restream destinations of a managed_stream_request are refused one by one", async () => {
    const app = await registerApp();
    const { s } = await webrtcStream(app);
    const v = await openSocket(s.streamId, { headers: app.headers });
    await v.next("managed_stream_status");
    v.ws.send(JSON.stringify({ type: "managed_stream_request", ingest: "webrtc", restreamDestinations: [{ url: yt("x") }] }));
    const answer = await answerOf(v);
    expect(answer.restreamResults).toEqual([{ url: yt("x"), success: false, error: "OUTPUTS_UNSUPPORTED", message: expect.any(String) }]);
    expect(answer.outputs).toEqual([]);
  });
});

describe("live status from WHIP (the workerd emulator's WebRTC is signalling only)", () => {
  it("a WHIP publish to the glasses' whipUrl makes the stream active for viewers; its DELETE ends that", async () => {
    const app = await registerApp();
    const userId = newUserId();
    const s = await startStream(app, userId, { ingest: "webrtc" });
    const v = await openSocket(s.streamId, { headers: app.headers });
    await v.next("managed_stream_status");
    const { whipUrl } = await deviceStart(userId);
    const offer = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:0\r\n";
    const published = await fetch(whipUrl, { method: "POST", headers: { "content-type": "application/sdp" }, body: offer });
    expect(published.status).toBe(201);
    await expireTimer(s.streamId, "poll-input");
    for (;;) {
      const m = await v.next("managed_stream_status");
      if (m.status === "active") {
        expect(m.webrtcUrl).toBe(s.webrtcUrl);
        break;
      }
    }
    const resource = new URL(published.headers.get("location")!, whipUrl).href;
    expect((await fetch(resource, { method: "DELETE" })).status).toBe(200);
    await expireTimer(s.streamId, "poll-input");
    for (;;) {
      const m = await v.next("managed_stream_status");
      if (m.status !== "active") break;
    }
  });
});

describe("joining keeps the stream's own protocol", () => {
  it("a join asking for another ingest gets the running stream as it is, and says which", async () => {
    const a = await registerApp();
    const b = await registerApp();
    const userId = newUserId();
    const s = await startStream(a, userId, { ingest: "webrtc" });
    const joined = await postStream(b, { userId, ingest: "rtmp", restreamDestinations: [{ url: yt("j") }] });
    expect(joined.status).toBe(200);
    expect(joined.body).toMatchObject({ streamId: s.streamId, created: false, ingestProtocol: "webrtc", hlsUrl: null, webrtcUrl: s.webrtcUrl });
    expect(joined.body.restreamResults[0]).toMatchObject({ success: false, error: "OUTPUTS_UNSUPPORTED" });
  });
});
