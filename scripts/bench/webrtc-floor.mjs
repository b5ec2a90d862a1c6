// The floor of the bench's WebRTC section: a bare werift forwarder in its own Node process, as the emulator is,
// with nothing of the emulator or the coordinator in it (and in its own session, as the emulator: see webrtc.ts). One publisher (POST /whip) and any number of viewers
// (POST /whep), SDP in and out, DELETE /session/<id>. It does only what forwarding on this machine cannot do
// without (BRIEF §6): a loopback candidate, no RTP header extensions (stripped too), and viewers' keyframe
// requests (PLI) relayed to the publisher. Same werift settings as the emulator's peers (ICE lite, H.264
// Constrained Baseline), so what differs from our path is only what the emulator adds on top.
// Run by scripts/bench/webrtc.ts: `node scripts/bench/webrtc-floor.mjs` prints `listening <port>`.
import http from "node:http";
import { randomBytes } from "node:crypto";
import { MediaStreamTrack, RTCPeerConnection, RTCRtpCodecParameters } from "werift";

const H264 = () =>
  new RTCRtpCodecParameters({
    mimeType: "video/H264",
    clockRate: 90000,
    rtcpFeedback: [{ type: "nack" }, { type: "nack", parameter: "pli" }],
    parameters: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f",
  });
const peer = () =>
  new RTCPeerConnection({
    iceAdditionalHostAddresses: ["127.0.0.1"],
    iceUseIpv6: false,
    iceLite: true,
    codecs: { video: [H264()], audio: [] },
    headerExtensions: { video: [], audio: [] },
  });

/** The publisher's receiving side, or null before the first publish. */
let source = null;
const viewers = new Set();
const sessions = new Map();

async function answer(pc, sdp) {
  await pc.setRemoteDescription({ type: "offer", sdp });
  await pc.setLocalDescription(await pc.createAnswer());
  if (pc.iceGatheringState !== "complete") {
    await new Promise((resolve) => {
      const timer = setTimeout(resolve, 3_000);
      pc.iceGatheringStateChange.subscribe((s) => s === "complete" && (clearTimeout(timer), resolve()));
    });
  }
  return pc.localDescription.sdp;
}

function pli() {
  if (source?.track.ssrc !== undefined) source.receiver.sendRtcpPLI(source.track.ssrc).catch(() => undefined);
}

async function publish(sdp) {
  const pc = peer();
  pc.ontrack = ({ track, transceiver }) => {
    source = { track, receiver: transceiver.receiver };
    track.onReceiveRtp.subscribe((rtp) => {
      rtp.header.extensions = [];
      rtp.header.extension = false;
      for (const out of viewers) out.writeRtp(rtp.clone());
    });
  };
  return { pc, sdp: await answer(pc, sdp), end: () => undefined };
}

async function play(sdp) {
  const pc = peer();
  const track = new MediaStreamTrack({ kind: "video" });
  const transceiver = pc.addTransceiver(track, { direction: "sendonly" });
  transceiver.sender.onPictureLossIndication.subscribe(pli);
  transceiver.sender.onReady.subscribe(pli);
  viewers.add(track);
  return { pc, sdp: await answer(pc, sdp), end: () => viewers.delete(track) };
}

const server = http.createServer(async (req, res) => {
  const chunks = [];
  for await (const c of req) chunks.push(c);
  try {
    const session = /^\/session\/(\w+)$/.exec(req.url ?? "")?.[1];
    if (req.method === "DELETE" && session) {
      const s = sessions.get(session);
      sessions.delete(session);
      s?.end();
      await s?.pc.close().catch(() => undefined);
      res.writeHead(s ? 200 : 404).end();
      return;
    }
    if (req.method !== "POST" || (req.url !== "/whip" && req.url !== "/whep")) return void res.writeHead(404).end();
    if (req.url === "/whep" && !source) return void res.writeHead(409).end("nothing published");
    const s = await (req.url === "/whip" ? publish : play)(Buffer.concat(chunks).toString());
    const id = randomBytes(8).toString("hex");
    sessions.set(id, s);
    res.writeHead(201, { "content-type": "application/sdp", location: `/session/${id}` }).end(s.sdp);
  } catch (e) {
    res.writeHead(400).end(String(e));
  }
});

server.listen(0, "127.0.0.1", () => console.log(`listening ${server.address().port}`));
// Ends with its parent (the bench): stdin closes when the bench exits, even if it was killed.
process.stdin.on("end", () => process.exit(0));
process.stdin.resume();
process.on("SIGTERM", () => process.exit(0));
