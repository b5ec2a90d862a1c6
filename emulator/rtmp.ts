// RTMP ingest with node-media-server v4: publishing to rtmp://host:port/live/<streamKey> connects the
// matching live input; unknown keys and disabled inputs are refused by closing the connection.
// Only NMS's RTMP listener is started (no HTTP-FLV, store, recorder or relay), so nothing touches disk.

import { createRequire } from "node:module";
import type { Server, Socket } from "node:net";
import type { StreamEmulator } from "./core.ts";

const require = createRequire(import.meta.url);

interface NmsSession {
  id: string;
  streamApp: string;
  streamName: string;
  socket?: Socket;
  /** Codec ids from the publisher's onMetaData (0 until it arrives). */
  videoCodec?: unknown;
  audioCodec?: unknown;
  broadcast?: NmsBroadcast;
  close(): void;
}

/** NMS's per-path broadcast (node-media-server/src/server/broadcast_server.js), the parts we touch. */
interface NmsBroadcast {
  publisher: NmsSession | null;
  subscribers?: Map<string, NmsSession>;
  /** What a joining player is sent first: the messages since the last keyframe (null before the first one). */
  flvGopCache?: Set<Buffer> | null;
  rtmpGopCache?: Set<Buffer> | null;
  broadcastMessage?: (packet: { flags: number }) => void;
  /** Ours: until when (epoch ms) the caches keep everything since the publish began. */
  keepStartUntil?: number;
}

/**
 * How long after a publish begins a joining player still gets all of it. NMS sends a new player only the
 * current GOP; the packager (and relays) connect 0.5–2 s into a publish, so without this the recording would
 * miss its first GOP or two, where Cloudflare records from the first frame.
 */
const KEEP_START_MS = 5000;

/** From now, the broadcast's caches start afresh with this publish and keep all of its first KEEP_START_MS. */
function keepPublishStart(broadcast: NmsBroadcast): void {
  // NMS keeps the previous publish's last GOP through its reconnect grace: not part of this one.
  broadcast.flvGopCache = null;
  broadcast.rtmpGopCache = null;
  broadcast.keepStartUntil = Date.now() + KEEP_START_MS;
  const original = broadcast.broadcastMessage;
  if (!original || (original as { keepsStart?: boolean }).keepsStart) return;
  const wrapped = (packet: { flags: number }) => {
    // flags 3: a keyframe, at which NMS replaces the caches with a new GOP; within the window, append it instead.
    const keep = packet.flags === 3 && Date.now() < (broadcast.keepStartUntil ?? 0);
    // Copies: NMS clears the old sets in place.
    const [flv, rtmp] = keep ? [[...(broadcast.flvGopCache ?? [])], [...(broadcast.rtmpGopCache ?? [])]] : [null, null];
    original(packet);
    if (flv && broadcast.flvGopCache) broadcast.flvGopCache = new Set([...flv, ...broadcast.flvGopCache]);
    if (rtmp && broadcast.rtmpGopCache) broadcast.rtmpGopCache = new Set([...rtmp, ...broadcast.rtmpGopCache]);
  };
  broadcast.broadcastMessage = Object.assign(wrapped, { keepsStart: true });
}

interface NodeMediaServer {
  rtmpServer: { run(): void; stop(): void; tcpServer?: Server };
}

interface NmsContext {
  eventEmitter: { on(e: string, l: (s: NmsSession) => void): void; off(e: string, l: (s: NmsSession) => void): void };
}

export type RtmpLogLevel = "silent" | "error" | "info";

// node-media-server keeps its state in module singletons (one RTMP server per process).
let started = false;

/** Routes NMS logs through our level: NMS forces "debug" and prints every session. */
function quietNms(level: RtmpLogLevel): void {
  const logger = require("node-media-server/src/core/logger.js") as { log: (message: string, level?: string) => void };
  const rank: Record<string, number> = { trace: 0, debug: 1, info: 2, warn: 3, error: 4 };
  const min = level === "silent" ? Infinity : level === "error" ? rank.error! : rank.info!;
  logger.log = (message: string, logLevel = "info") => {
    if ((rank[logLevel] ?? 2) >= min) console.log(`[rtmp] [${logLevel}] ${message}`);
  };
}

/** An accepted publish, for what runs while it lasts (playback packaging). */
export interface IngestSession {
  inputUid: string;
  streamKey: string;
  /** NMS's session id: tells this publish apart from a later one of the same input. */
  id: string;
  codecs(): { video: unknown; audio: unknown };
}

export interface RtmpIngest {
  /** Closes the publisher of this stream key, if any. */
  kick(streamKey: string): void;
  close(): Promise<void>;
}

export async function startRtmpIngest(opts: {
  host: string;
  port: number;
  app: string;
  emulator: () => StreamEmulator;
  logLevel: RtmpLogLevel;
  /** A publish was accepted (after the emulator connected its input). */
  onPublish?: (session: IngestSession) => void;
  /** That publish ended: its socket closed, or the emulator kicked it. Called once per publish. */
  onUnpublish?: (session: IngestSession) => void;
}): Promise<RtmpIngest> {
  if (started) throw new Error("node-media-server supports one RTMP ingest per process");
  started = true;
  quietNms(opts.logLevel);
  const NodeMediaServer = require("node-media-server") as new (config: unknown) => NodeMediaServer;
  const nms = new NodeMediaServer({ bind: opts.host, rtmp: { port: opts.port } });
  const publishers = new Map<string, NmsSession>(); // stream key → accepted publisher
  const live = new Map<NmsSession, IngestSession>(); // accepted publishes not yet reported ended
  const ended = (session: NmsSession) => {
    const info = live.get(session);
    if (!info) return;
    live.delete(session);
    opts.onUnpublish?.(info);
  };

  const context = require("node-media-server/src/core/context.js") as NmsContext;
  const onPostPublish = (session: NmsSession) => {
    const key = session.streamName;
    // NMS refuses a second publisher on a path after this event; don't treat it as a connect.
    const current = session.broadcast?.publisher;
    if (current && current !== session) return;
    const uid = session.streamApp === opts.app ? opts.emulator().connectByStreamKey(key) : null;
    if (uid === null) {
      session.close();
      return;
    }
    if (session.broadcast) keepPublishStart(session.broadcast);
    publishers.set(key, session);
    const info: IngestSession = { inputUid: uid, streamKey: key, id: session.id, codecs: () => ({ video: session.videoCodec, audio: session.audioCodec }) };
    live.set(session, info);
    opts.onPublish?.(info);
    // React to the socket itself: NMS delays donePublish by a 30 s reconnect grace window.
    session.socket?.once("close", () => {
      ended(session);
      if (publishers.get(key) === session) {
        publishers.delete(key);
        opts.emulator().disconnectByStreamKey(key);
      }
      endPlayers(session);
    });
  };
  // The players of an ended publish (the packager, relays) get the end of their stream now, not after NMS's 30 s
  // reconnect grace: an ffmpeg reading it then drains what it has and writes its trailers instead of waiting.
  const endPlayers = (session: NmsSession) => {
    for (const player of session.broadcast?.subscribers?.values() ?? []) player.close();
  };
  // NodeMediaServer.on() is a thin wrapper over this emitter; using it directly lets close() unsubscribe.
  context.eventEmitter.on("postPublish", onPostPublish);

  const tcp = nms.rtmpServer.tcpServer;
  if (!tcp) throw new Error("node-media-server did not create an RTMP listener");
  const listening = new Promise<void>((resolve) => tcp.once("listening", resolve));
  nms.rtmpServer.run();
  await listening;

  return {
    kick(streamKey) {
      const session = publishers.get(streamKey);
      if (!session) return;
      publishers.delete(streamKey);
      ended(session);
      session.close();
    },
    async close() {
      for (const s of publishers.values()) {
        ended(s);
        s.socket?.destroy();
      }
      publishers.clear();
      context.eventEmitter.off("postPublish", onPostPublish);
      const closed = new Promise<void>((resolve) => tcp.once("close", () => resolve()));
      nms.rtmpServer.stop();
      await closed;
      (require("node-media-server/src/core/rate_sampler.js") as { rateSampler: { stop(): void } }).rateSampler.stop();
      started = false;
    },
  };
}
