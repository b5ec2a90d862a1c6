// werift peers for the Realtime SFU end-to-end tests: the glasses' role (ffmpeg test pattern → RTP over
// loopback UDP → a werift sending track) and an app viewer's role (a werift receiver counting RTP).
// Both speak the SFU's protocol through `call(method, path, body)`: our proxy, or the emulator itself.

import { spawn } from "node:child_process";
import dgram from "node:dgram";
import { MediaStreamTrack, RTCPeerConnection, useOPUS, useVP8 } from "werift";

const CONFIG = {
  iceAdditionalHostAddresses: ["127.0.0.1"],
  iceUseIpv6: false,
  codecs: { video: [useVP8({ payloadType: 96 })], audio: [useOPUS({ payloadType: 111 })] },
};

async function gatheredDescription(pc, description) {
  await pc.setLocalDescription(description);
  if (pc.iceGatheringState !== "complete") {
    await new Promise((resolve) => {
      const timer = setTimeout(resolve, 3_000);
      pc.iceGatheringStateChange.subscribe((state) => {
        if (state === "complete") {
          clearTimeout(timer);
          resolve();
        }
      });
    });
  }
  return pc.localDescription.sdp;
}

function expectOk(res, what) {
  if (res.status < 200 || res.status >= 300) throw new Error(`${what}: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body;
}

/**
 * The glasses: a VP8 test pattern from ffmpeg (RTP to a loopback UDP port), written into a werift track
 * published as `trackName`. Returns the session id and a stop().
 */
export async function publishTestPattern(call, { trackName = "cam" } = {}) {
  const socket = dgram.createSocket("udp4");
  await new Promise((resolve) => socket.bind(0, "127.0.0.1", resolve));
  const port = socket.address().port;
  const track = new MediaStreamTrack({ kind: "video" });
  let written = 0;
  socket.on("message", (packet) => {
    track.writeRtp(packet);
    written++;
  });
  const ffmpeg = spawn(
    "ffmpeg",
    ["-nostdin", "-loglevel", "error", "-re", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=15", "-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "300k", "-g", "15", "-an", "-payload_type", "96", "-f", "rtp", `rtp://127.0.0.1:${port}?pkt_size=1200`],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  let stderr = "";
  ffmpeg.stderr.on("data", (d) => (stderr += d));
  const pc = new RTCPeerConnection(CONFIG);
  const transceiver = pc.addTransceiver(track, { direction: "sendonly" });
  const sdp = await gatheredDescription(pc, await pc.createOffer());
  const { sessionId } = expectOk(await call("POST", "sessions/new"), "publisher sessions/new");
  const pushed = expectOk(
    await call("POST", `sessions/${sessionId}/tracks/new`, {
      sessionDescription: { type: "offer", sdp },
      tracks: [{ location: "local", mid: transceiver.mid, trackName }],
    }),
    "publisher tracks/new",
  );
  await pc.setRemoteDescription(pushed.sessionDescription);
  return {
    sessionId,
    pc,
    written: () => written,
    ffmpegErrors: () => stderr,
    async stop() {
      ffmpeg.kill("SIGKILL");
      socket.close();
      await pc.close().catch(() => undefined);
    },
  };
}

/**
 * An app viewer: opens a session, pulls the publisher's track, answers the SFU's offer and counts the
 * RTP packets that arrive. Returns the session id, the pulled mid, a packet counter and a stop().
 */
export async function pullTrack(call, publisherSessionId, trackName = "cam") {
  const pc = new RTCPeerConnection(CONFIG);
  let packets = 0;
  let firstPacketAt = null;
  pc.onTrack.subscribe((track) => {
    track.onReceiveRtp.subscribe(() => {
      packets++;
      firstPacketAt ??= Date.now();
    });
  });
  const { sessionId } = expectOk(await call("POST", "sessions/new"), "viewer sessions/new");
  const started = Date.now();
  const pulled = expectOk(
    await call("POST", `sessions/${sessionId}/tracks/new`, { tracks: [{ location: "remote", sessionId: publisherSessionId, trackName }] }),
    "viewer tracks/new",
  );
  await pc.setRemoteDescription(pulled.sessionDescription);
  const sdp = await gatheredDescription(pc, await pc.createAnswer());
  expectOk(await call("PUT", `sessions/${sessionId}/renegotiate`, { sessionDescription: { type: "answer", sdp } }), "viewer renegotiate");
  return {
    sessionId,
    mid: pulled.tracks[0].mid,
    pc,
    packets: () => packets,
    /** ms from the pull to the first RTP packet, or null. */
    firstPacketMs: () => (firstPacketAt === null ? null : firstPacketAt - started),
    async stop() {
      await pc.close().catch(() => undefined);
    },
  };
}

export async function until(probe, timeoutMs, what) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
