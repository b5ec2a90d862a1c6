// WHIP and WHEP clients without a browser (Node only), for the e2e tests and the benchmark: a WHIP publisher
// fed by ffmpeg over plain RTP (Debian's ffmpeg 5.1 has no WHIP muxer), and a WHEP viewer that counts what it
// receives. Both speak to any WHIP/WHEP endpoint (the emulator's, or Cloudflare's).

import { spawn, type ChildProcess } from "node:child_process";
import dgram from "node:dgram";
import { MediaStreamTrack, type RTCPeerConnection, type RtpPacket } from "werift";
import { clientPeer, offer } from "./session.ts";

export interface SignalledSession {
  pc: RTCPeerConnection;
  /** The session resource (Location), absolute. */
  resource: string;
  /** DELETE the resource and close the peer. */
  close(): Promise<void>;
}

/** POSTs an offer as WHIP/WHEP do; throws with the status and body on a refusal. */
export async function signal(url: string, pc: RTCPeerConnection): Promise<SignalledSession> {
  const res = await fetch(url, { method: "POST", headers: { "content-type": "application/sdp" }, body: await offer(pc) });
  const body = await res.text();
  if (res.status !== 201) {
    await pc.close();
    throw Object.assign(new Error(`${url}: HTTP ${res.status} ${body}`), { status: res.status, body });
  }
  await pc.setRemoteDescription({ type: "answer", sdp: body });
  const resource = new URL(res.headers.get("location") ?? "", url).href;
  let closed = false;
  return {
    pc,
    resource,
    async close() {
      if (closed) return;
      closed = true;
      await fetch(resource, { method: "DELETE" }).catch(() => undefined);
      await pc.close().catch(() => undefined);
    },
  };
}

export interface WhipPublisher extends SignalledSession {
  ffmpeg: ChildProcess;
  /** PLIs the endpoint sent (keyframe requests relayed from viewers). */
  keyframeRequests(): number;
  /** Stops ffmpeg without a DELETE, as a vanished device would (the peer stays open but silent). */
  vanish(): void;
}

/** Publishes ffmpeg's H.264 test pattern (Constrained Baseline, 30 fps) to a WHIP URL. */
export async function publishTestPatternOverWhip(whipUrl: string, opts: { seconds?: number; gop?: number } = {}): Promise<WhipPublisher> {
  const pc = clientPeer({ video: "video/H264" });
  const track = new MediaStreamTrack({ kind: "video" });
  const transceiver = pc.addTransceiver(track, { direction: "sendonly" });
  let plis = 0;
  transceiver.sender.onPictureLossIndication.subscribe(() => plis++);
  const session = await signal(whipUrl, pc);
  const udp = dgram.createSocket("udp4");
  await new Promise<void>((resolve) => udp.bind(0, "127.0.0.1", () => resolve()));
  udp.on("message", (packet) => track.writeRtp(packet));
  const ffmpeg = spawn(
    "ffmpeg",
    ["-nostdin", "-loglevel", "error", "-re", "-f", "lavfi", "-i", "testsrc=size=640x360:rate=30", "-t", String(opts.seconds ?? 60),
      "-c:v", "libx264", "-profile:v", "baseline", "-level", "3.1", "-preset", "ultrafast", "-tune", "zerolatency", "-g", String(opts.gop ?? 30),
      "-pix_fmt", "yuv420p", "-an", "-f", "rtp", "-payload_type", "96", `rtp://127.0.0.1:${udp.address().port}?pkt_size=1200`],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  const stopFfmpeg = () => {
    if (ffmpeg.exitCode === null && ffmpeg.signalCode === null) ffmpeg.kill("SIGKILL");
    udp.close();
  };
  return {
    ...session,
    ffmpeg,
    keyframeRequests: () => plis,
    vanish: stopFfmpeg,
    async close() {
      stopFfmpeg();
      await session.close();
    },
  };
}

export interface WhepViewer extends SignalledSession {
  /** RTP packets received, and how many carried the start of an H.264 IDR (keyframe). */
  stats(): { packets: number; keyframes: number; firstPacketAt: number | null };
}

/** Watches a WHEP URL: receive-only video (and audio), counting what arrives. */
export async function watchOverWhep(whepUrl: string, opts: { audio?: boolean } = {}): Promise<WhepViewer> {
  const pc = clientPeer();
  pc.addTransceiver("video", { direction: "recvonly" });
  if (opts.audio) pc.addTransceiver("audio", { direction: "recvonly" });
  let packets = 0;
  let keyframes = 0;
  let firstPacketAt: number | null = null;
  pc.ontrack = ({ track }) => {
    track.onReceiveRtp.subscribe((rtp: RtpPacket) => {
      packets++;
      firstPacketAt ??= Date.now();
      if (track.kind === "video" && isH264KeyframeStart(rtp.payload)) keyframes++;
    });
  };
  const session = await signal(whepUrl, pc);
  return { ...session, stats: () => ({ packets, keyframes, firstPacketAt }) };
}

/** An RTP payload that starts an H.264 IDR: a NAL of type 5, alone, in a STAP-A, or the first FU-A fragment. */
export function isH264KeyframeStart(payload: Buffer): boolean {
  if (payload.length < 2) return false;
  const type = payload[0]! & 0x1f;
  if (type === 5) return true;
  if (type === 28) return (payload[1]! & 0x80) !== 0 && (payload[1]! & 0x1f) === 5;
  if (type === 24) {
    for (let at = 1; at + 2 < payload.length; ) {
      const size = payload.readUInt16BE(at);
      if ((payload[at + 2]! & 0x1f) === 5) return true;
      at += 2 + size;
    }
  }
  return false;
}
