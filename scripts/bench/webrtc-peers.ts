/**
 * The WebRTC bench's peers (werift in the bench's own process, no browser): a WHIP publisher whose frames carry
 * the time they were handed to WebRTC, and WHEP viewers that read it back from each frame they receive.
 *
 * The timestamp is written into each frame's H.264 access unit, not its pixels: an SEI `user_data_unregistered`
 * NAL unit (which decoders ignore) sent just before the frame's first packet, with the frame's RTP timestamp.
 * Reading pixels back would need one decoder process per viewer (20 ffmpeg decoders on this shared 2-core
 * machine), whose CPU would compete with the forwarder under test and drown the few milliseconds measured; a
 * forwarder (ours, and the floor) never looks into payloads, so the tag travels exactly as the picture does, in
 * the same packets through the same path. Encode and decode are the same on both paths (nothing is transcoded)
 * and are left out: glass-to-glass here is "handed to the publisher's peer → last packet of the frame at a
 * viewer" (SRTP, the forwarder, SRTP again).
 */
import { spawn } from "node:child_process";
import dgram from "node:dgram";
import { MediaStreamTrack, RtpHeader, RtpPacket } from "werift";
import { isH264KeyframeStart, signal, type SignalledSession } from "../../emulator/webrtc/clients.ts";
import { clientPeer } from "../../emulator/webrtc/session.ts";

/** The SEI's 16-byte UUID: ASCII, so no 00 00 in the NAL needs emulation prevention. */
const TAG_UUID = Buffer.from("StreamCoordBench");
/** Microsecond clock shared by the publisher and the viewers (one process). */
export const nowMs = () => performance.timeOrigin + performance.now();

/** An H.264 SEI NAL: user data unregistered (payload type 5) carrying `t=<ms>` in ASCII. */
export function timestampSei(atMs: number): Buffer {
  const text = Buffer.from(`t=${atMs.toFixed(3)}`);
  return Buffer.concat([Buffer.from([0x06, 0x05, TAG_UUID.length + text.length]), TAG_UUID, text, Buffer.from([0x80])]);
}

/** The time in a bench SEI NAL, or null when the payload is not one. */
export function readTimestampSei(payload: Buffer): number | null {
  if (payload.length < 3 + TAG_UUID.length || payload[0] !== 0x06 || payload[1] !== 0x05) return null;
  if (!payload.subarray(3, 3 + TAG_UUID.length).equals(TAG_UUID)) return null;
  const m = /^t=([\d.]+)/.exec(payload.subarray(3 + TAG_UUID.length, payload.length - 1).toString());
  return m ? Number(m[1]) : null;
}

export interface TimedPublisher extends SignalledSession {
  /** Frames tagged so far; PLIs (keyframe requests) that reached the publisher. */
  stats(): { frames: number; keyframeRequests: number };
}

/**
 * Publishes ffmpeg's H.264 test pattern (640×360, 30 fps, a keyframe each second, Constrained Baseline) to a
 * WHIP URL, each frame tagged with an SEI timestamp. Packets are renumbered, as the tags are extra packets.
 */
export async function publishTimestamped(whipUrl: string, seconds: number): Promise<TimedPublisher> {
  const pc = clientPeer({ video: "video/H264" });
  const track = new MediaStreamTrack({ kind: "video" });
  const transceiver = pc.addTransceiver(track, { direction: "sendonly" });
  let keyframeRequests = 0;
  transceiver.sender.onPictureLossIndication.subscribe(() => keyframeRequests++);
  const session = await signal(whipUrl, pc);
  const udp = dgram.createSocket("udp4");
  await new Promise<void>((resolve) => udp.bind(0, "127.0.0.1", () => resolve()));
  let seq = 0;
  let lastTimestamp: number | null = null;
  let frames = 0;
  udp.on("message", (bytes) => {
    const rtp = RtpPacket.deSerialize(bytes);
    if (rtp.header.timestamp !== lastTimestamp) {
      lastTimestamp = rtp.header.timestamp;
      frames++;
      const tag = new RtpHeader({ payloadType: rtp.header.payloadType, ssrc: rtp.header.ssrc, timestamp: rtp.header.timestamp, sequenceNumber: seq, marker: false });
      track.writeRtp(new RtpPacket(tag, timestampSei(nowMs())));
      seq = (seq + 1) & 0xffff;
    }
    rtp.header.sequenceNumber = seq;
    seq = (seq + 1) & 0xffff;
    track.writeRtp(rtp);
  });
  const ffmpeg = spawn(
    "ffmpeg",
    ["-nostdin", "-loglevel", "error", "-re", "-f", "lavfi", "-i", "testsrc=size=640x360:rate=30", "-t", String(seconds),
      "-c:v", "libx264", "-profile:v", "baseline", "-level", "3.1", "-preset", "ultrafast", "-tune", "zerolatency", "-g", "30",
      "-pix_fmt", "yuv420p", "-an", "-f", "rtp", "-payload_type", "96", `rtp://127.0.0.1:${(udp.address() as { port: number }).port}?pkt_size=1200`],
    { stdio: ["ignore", "ignore", "ignore"] },
  );
  let stopped = false;
  return {
    ...session,
    stats: () => ({ frames, keyframeRequests }),
    async close() {
      if (!stopped) {
        stopped = true;
        if (ffmpeg.exitCode === null && ffmpeg.signalCode === null) ffmpeg.kill("SIGKILL");
        udp.close();
      }
      await session.close();
    },
  };
}

export interface TimedViewer extends SignalledSession {
  /** ms from the start of the offer to the first complete frame / the first complete keyframe, or null. */
  firstFrameMs(): number | null;
  firstKeyframeMs(): number | null;
  /** ms from the start of the offer to the answer (offer made, POSTed, answered) and to the peer connected. */
  answeredMs: number;
  connectedMs(): number | null;
  /** Starts (or restarts) collecting glass-to-glass samples; returns those collected since. */
  collect(): void;
  samples(): number[];
}

/** A WHEP viewer (video only, H.264) reading each frame's SEI timestamp when the frame's last packet arrives. */
export async function watchTimed(whepUrl: string): Promise<TimedViewer> {
  const started = nowMs();
  const pc = clientPeer({ video: "video/H264" });
  pc.addTransceiver("video", { direction: "recvonly" });
  let firstFrame: number | null = null;
  let firstKeyframe: number | null = null;
  let collecting = false;
  let samples: number[] = [];
  // RTP timestamp of the frame being received → its tag, and whether it holds an IDR.
  const open = new Map<number, { sentAt: number | null; keyframe: boolean }>();
  pc.ontrack = ({ track }) => {
    track.onReceiveRtp.subscribe((rtp: RtpPacket) => {
      const ts = rtp.header.timestamp;
      let frame = open.get(ts);
      if (!frame) open.set(ts, (frame = { sentAt: null, keyframe: false }));
      frame.sentAt ??= readTimestampSei(rtp.payload);
      if (isH264KeyframeStart(rtp.payload)) frame.keyframe = true;
      if (!rtp.header.marker) return;
      const at = nowMs();
      open.delete(ts);
      // Frames whose start was lost (or came before the viewer joined) have no tag and are not timed.
      if (frame.sentAt === null) return;
      firstFrame ??= at - started;
      if (frame.keyframe) firstKeyframe ??= at - started;
      if (collecting) samples.push(at - frame.sentAt);
      // A frame whose marker was lost never completes: keep the map small.
      if (open.size > 30) open.clear();
    });
  };
  let connected: number | null = null;
  pc.connectionStateChange.subscribe((state) => {
    if (state === "connected") connected ??= nowMs() - started;
  });
  const session = await signal(whepUrl, pc);
  const answeredMs = nowMs() - started;
  return {
    ...session,
    answeredMs,
    connectedMs: () => connected,
    firstFrameMs: () => firstFrame,
    firstKeyframeMs: () => firstKeyframe,
    collect() {
      collecting = true;
      samples = [];
    },
    samples: () => samples,
  };
}
