// SRT ingest (Node only), as Cloudflare serves it: one SRT address for every live input, the input chosen by
// the publisher's `streamid` and checked with its `passphrase`. libsrt is reached through ffmpeg (Debian's is
// built with it); an ffmpeg SRT listener takes one caller and knows nothing of stream ids, so a small UDP
// front answers the handshake's first step itself, reads the stream id from the caller's conclusion, starts an
// ffmpeg listener for that input (with its passphrase: libsrt does the encryption and refuses a wrong secret)
// and from then on relays datagrams both ways, rewriting only the SYN cookie of the handshake. That ffmpeg
// republishes the stream, copied, to the local RTMP ingest under the input's stream key, so an SRT publish
// goes through the same pipeline as RTMP: connected status and webhooks, relays, playback.
//
// SRT handshake (draft-sharabayko-srt, "Handshake"): a control packet (type 0) with a 48-byte body after the
// 16-byte header: version, encryption, extension flags, ISN, MTU, flow window, handshake type (1 induction,
// -1 conclusion, ≥ 1000 rejection), socket id, SYN cookie, peer IP; then extensions (type, length in 32-bit
// words, content). The stream id is extension 5, its text stored as little-endian 32-bit words.

import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import dgram from "node:dgram";
import { kill } from "./ffmpeg-relay.ts";

const HS_INDUCTION = 1;
const HS_CONCLUSION = -1;
const SRT_MAGIC = 0x4a17;
const EXT_SID = 5;
/** Rejection reasons as libsrt reports them (SRT_REJC_PREDEFINED + HTTP-like code). */
const REJECT_FORBIDDEN = 1403;
const REJECT_NOT_FOUND = 1404;
/** How long an ffmpeg listener may take to answer before the publish is given up. */
const BACKEND_START_MS = 5000;
/** A caller silent this long is gone (libsrt's own peer idle timeout is 5 s). */
const IDLE_MS = 10_000;

export interface SrtPublisher {
  uid: string;
  /** The RTMP stream key the SRT publish is republished under. */
  streamKey: string;
  passphrase: string;
  enabled: boolean;
}

export interface SrtSessionView {
  inputUid: string;
  peer: string;
  state: "starting" | "connected";
  since: string;
}

export interface SrtIngest {
  /** The address publishers call: the live inputs' `srt.url`. */
  url: string;
  port: number;
  sessions(): SrtSessionView[];
  close(): Promise<void>;
}

interface Session {
  peer: string;
  address: string;
  port: number;
  inputUid: string;
  backend: dgram.Socket;
  backendPort: number;
  backendCookie: number | null;
  /** The caller's induction, replayed to the ffmpeg listener to get its cookie. */
  induction: Buffer;
  /** The caller's latest conclusion, held until the ffmpeg listener's cookie is known. */
  conclusion: Buffer;
  child: ChildProcess;
  connected: boolean;
  since: number;
  lastSeen: number;
  timer: ReturnType<typeof setInterval>;
}

export async function startSrtIngest(opts: {
  host: string;
  /** UDP port; 0 picks a free one. */
  port: number;
  /** The local RTMP ingest base, e.g. rtmp://127.0.0.1:1935/live/ */
  rtmpBase: string;
  lookup: (srtStreamId: string) => SrtPublisher | null;
  binary?: string;
  log?: (line: string) => void;
}): Promise<SrtIngest> {
  const log = opts.log ?? (() => undefined);
  const binary = opts.binary ?? "ffmpeg";
  const front = dgram.createSocket("udp4");
  await new Promise<void>((resolve, reject) => {
    front.once("error", reject);
    front.bind(opts.port, opts.host, () => {
      front.off("error", reject);
      resolve();
    });
  });
  front.on("error", (e) => log(`stream emulator: SRT ingest socket error: ${e.message}`));
  const port = front.address().port;
  /** Cookies handed out in induction answers, per caller address. */
  const cookies = new Map<string, number>();
  const inductions = new Map<string, Buffer>();
  const sessions = new Map<string, Session>();
  let closed = false;

  const sendToCaller = (s: { address: string; port: number }, packet: Buffer) => {
    if (!closed) front.send(packet, s.port, s.address);
  };

  const end = (session: Session, why: string) => {
    if (sessions.get(session.peer) !== session) return;
    sessions.delete(session.peer);
    clearInterval(session.timer);
    kill(session.child);
    session.backend.close();
    log(`stream emulator: SRT publish from ${session.peer} for live input ${session.inputUid} ended (${why})`);
  };

  const forwardConclusion = (session: Session, packet: Buffer) => {
    if (session.backendCookie === null) {
      session.conclusion = packet;
      return;
    }
    const copy = Buffer.from(packet);
    copy.writeUInt32BE(session.backendCookie, 44);
    session.backend.send(copy, session.backendPort, "127.0.0.1");
  };

  const begin = (peer: string, address: string, callerPort: number, induction: Buffer, conclusion: Buffer) => {
    const sid = streamIdOf(conclusion);
    const publisher = sid === null ? null : opts.lookup(sid);
    if (!publisher || !publisher.enabled) {
      log(`stream emulator: SRT publish from ${peer} refused: ${publisher ? "live input disabled" : `no live input has streamid ${JSON.stringify(sid)}`}`);
      return sendToCaller({ address, port: callerPort }, rejection(conclusion, publisher ? REJECT_FORBIDDEN : REJECT_NOT_FOUND));
    }
    const backend = dgram.createSocket("udp4");
    backend.bind(0, "127.0.0.1", () => {
      if (closed) return backend.close();
      // The ffmpeg listener's port: a free one, briefly bound by this probe socket.
      const probe = dgram.createSocket("udp4");
      probe.bind(0, "127.0.0.1", () => {
        const backendPort = probe.address().port;
        probe.close(() => {
          if (closed) return backend.close();
          const child = spawn(
            binary,
            [
              "-nostdin",
              "-loglevel",
              "error",
              // A live source: probe 1 s of it (not ffmpeg's default 5 s) before republishing.
              "-analyzeduration",
              "1000000",
              "-i",
              `srt://127.0.0.1:${backendPort}?mode=listener&passphrase=${encodeURIComponent(publisher.passphrase)}&listen_timeout=${BACKEND_START_MS * 1000}`,
              "-c",
              "copy",
              "-f",
              "flv",
              `${opts.rtmpBase}${publisher.streamKey}`,
            ],
            { stdio: ["ignore", "ignore", "pipe"] },
          );
          let lastLine = "";
          child.stderr?.on("data", (chunk: Buffer) => {
            const lines = chunk.toString().split(/\r?\n/).filter((l) => l.trim());
            if (lines.length) lastLine = lines[lines.length - 1]!.trim();
          });
          const now = Date.now();
          const session: Session = {
            peer,
            address,
            port: callerPort,
            inputUid: publisher.uid,
            backend,
            backendPort,
            backendCookie: null,
            induction,
            conclusion,
            child,
            connected: false,
            since: now,
            lastSeen: now,
            timer: setInterval(() => {
              const t = Date.now();
              if (session.backendCookie === null) {
                if (t - session.since > BACKEND_START_MS) return end(session, "the SRT listener did not start");
                // Until the listener answers: ask it for a cookie (it may not be listening yet).
                backend.send(session.induction, backendPort, "127.0.0.1");
              } else if (t - session.lastSeen > IDLE_MS) {
                end(session, "publisher silent");
              }
            }, 100),
          };
          sessions.set(peer, session);
          child.on("error", (e) => {
            lastLine = e.message;
          });
          child.on("close", (code) => end(session, code === 0 ? "ffmpeg finished" : `ffmpeg exited: ${lastLine || code}`));
          backend.on("message", (packet) => {
            if (isHandshake(packet) && packet.readInt32BE(36) === HS_INDUCTION) {
              if (session.backendCookie === null) {
                session.backendCookie = packet.readUInt32BE(44);
                forwardConclusion(session, session.conclusion);
              }
              return;
            }
            if (isHandshake(packet) && packet.readInt32BE(36) === HS_CONCLUSION) session.connected = true;
            sendToCaller(session, packet);
          });
          backend.send(session.induction, backendPort, "127.0.0.1");
        });
      });
    });
  };

  front.on("message", (packet, from) => {
    if (packet.length < 16) return;
    const peer = `${from.address}:${from.port}`;
    const session = sessions.get(peer);
    if (session) {
      session.lastSeen = Date.now();
      if (isHandshake(packet) && packet.readInt32BE(36) === HS_CONCLUSION) return forwardConclusion(session, packet);
      if (isHandshake(packet) && packet.readInt32BE(36) === HS_INDUCTION) return; // a retransmission: already answered
      return void session.backend.send(packet, session.backendPort, "127.0.0.1");
    }
    if (!isHandshake(packet)) return;
    const type = packet.readInt32BE(36);
    if (type === HS_INDUCTION) {
      // Answer the first step ourselves (HSv5 induction response): the caller's packet with our cookie.
      const cookie = cookies.get(peer) ?? randomBytes(4).readUInt32BE(0);
      cookies.set(peer, cookie);
      inductions.set(peer, Buffer.from(packet.subarray(0, 64)));
      const answer = Buffer.from(packet.subarray(0, 64));
      answer.writeUInt32BE(5, 16);
      answer.writeUInt16BE(0, 20);
      answer.writeUInt16BE(SRT_MAGIC, 22);
      answer.writeUInt32BE(cookie, 44);
      answer.writeUInt32BE(packet.readUInt32BE(40), 12);
      return sendToCaller({ address: from.address, port: from.port }, answer);
    }
    if (type === HS_CONCLUSION) {
      const induction = inductions.get(peer);
      if (!induction || cookies.get(peer) !== packet.readUInt32BE(44)) return; // no induction from this caller: not a handshake of ours
      cookies.delete(peer);
      inductions.delete(peer);
      begin(peer, from.address, from.port, induction, Buffer.from(packet));
    }
  });

  return {
    url: `srt://${opts.host}:${port}`,
    port,
    sessions: () =>
      [...sessions.values()].map((s) => ({ inputUid: s.inputUid, peer: s.peer, state: s.connected ? "connected" : "starting", since: new Date(s.since).toISOString() })),
    async close() {
      closed = true;
      const children = [...sessions.values()].map((s) => s.child);
      for (const s of [...sessions.values()]) end(s, "emulator closing");
      await Promise.all(children.map((c) => (c.exitCode !== null || c.signalCode !== null ? null : new Promise((resolve) => c.once("close", resolve)))));
      await new Promise<void>((resolve) => front.close(() => resolve()));
    },
  };
}

function isHandshake(packet: Buffer): boolean {
  return packet.length >= 64 && (packet[0]! & 0x80) !== 0 && (packet.readUInt16BE(0) & 0x7fff) === 0;
}

/** The stream id (handshake extension 5) of a conclusion, or null without one. */
export function streamIdOf(conclusion: Buffer): string | null {
  let at = 64;
  while (at + 4 <= conclusion.length) {
    const type = conclusion.readUInt16BE(at);
    const bytes = conclusion.readUInt16BE(at + 2) * 4;
    const content = conclusion.subarray(at + 4, at + 4 + bytes);
    if (type === EXT_SID) {
      const text = Buffer.alloc(content.length);
      for (let i = 0; i + 4 <= content.length; i += 4) {
        for (let j = 0; j < 4; j++) text[i + j] = content[i + 3 - j]!;
      }
      return text.toString("utf8").replace(/\0+$/, "");
    }
    at += 4 + bytes;
  }
  return null;
}

/** A handshake answer refusing the caller (it reports "Connection rejected" with this reason). */
function rejection(conclusion: Buffer, reason: number): Buffer {
  const answer = Buffer.from(conclusion.subarray(0, 64));
  answer.writeUInt32BE(conclusion.readUInt32BE(40), 12);
  answer.writeUInt16BE(0, 22);
  answer.writeInt32BE(reason, 36);
  return answer;
}
