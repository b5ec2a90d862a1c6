// Node 20 entry: the StreamEmulator over node:http, plus RTMP ingest (node-media-server), real ffmpeg
// relays and real playback (HLS, DASH, thumbnail at /playback/<uid>/…) when ffmpeg is on PATH. Run: `npx tsx emulator/server.ts`, or embed startEmulatorServer().

import { realpathSync } from "node:fs";
import http from "node:http";
import net from "node:net";
import { fileURLToPath } from "node:url";
import { DroppedConnectionError, StreamEmulator } from "./core.ts";
import { FfmpegRelayDriver, ffmpegAvailable } from "./ffmpeg-relay.ts";
import { FfmpegPlayback } from "./playback.ts";
import type { RecordingWriter } from "./recording-writer.ts";
import { PLAYBACK_PREFIX } from "./playback-http.ts";
import { startRtmpIngest, type RtmpIngest, type RtmpLogLevel } from "./rtmp.ts";
import { startSrtIngest, type SrtIngest } from "./srt.ts";
import { weriftMedia } from "./realtime/werift-media.ts";
import { WeriftWebRtc } from "./webrtc-ingest.ts";
import { StateFile, type LoadResult } from "./state-file.ts";
import type { EmulatorOptions } from "./types.ts";

export interface EmulatorServerOptions extends Omit<EmulatorOptions, "relay" | "kickIngest"> {
  /** Bind address for HTTP and RTMP. Default 127.0.0.1. */
  host?: string;
  /** HTTP port; 0 picks a free one. Default 8788. */
  port?: number;
  /** RTMP port; 0 picks a free one; null disables RTMP ingest. Default 1935. */
  rtmpPort?: number | null;
  /** SRT (UDP) port; 0 picks a free one; null disables SRT ingest. Default 8890, or a free one if that is taken. Needs RTMP and ffmpeg (srt.ts republishes into RTMP). */
  srtPort?: number | null;
  /** Real relays and playback with ffmpeg: "auto" (default) uses it when on PATH; false simulates relays and serves no media. */
  ffmpeg?: boolean | "auto";
  /** node-media-server log verbosity. Default "error". */
  logLevel?: RtmpLogLevel;
  /** Directory to keep state in across restarts (state-file.ts); unset: in memory only. */
  stateDir?: string;
  /** Where state-file and playback problems are logged. Default console.error. */
  log?: (line: string) => void;
  /** Parent of the playback temp directory (HLS/DASH/thumbnail files). Default `<os tmpdir>/stream-emulator-playback`. */
  playbackRoot?: string;
}

/** How long restart announcements (live_input.disconnected) are retried while the receiver starts. */
const ANNOUNCE_RETRY_MS = 120_000;

export interface EmulatorServer {
  /** HTTP base URL, e.g. http://127.0.0.1:8788 (API at `${url}/client/v4`). */
  url: string;
  /** RTMP ingest base (live inputs' rtmps.url), or null without RTMP. */
  rtmpUrl: string | null;
  /** SRT ingest address (live inputs' srt.url), or null without SRT. */
  srtUrl: string | null;
  emulator: StreamEmulator;
  /** What was restored from `stateDir` (null without one). */
  restored: LoadResult | null;
  /** Real playback (ffmpeg) or null, with the reason it is off. */
  playback: FfmpegPlayback | null;
  playbackOff: string | null;
  close(): Promise<void>;
}

const RTMP_APP = "live";
const DEFAULT_SRT_PORT = 8890;

export async function startEmulatorServer(opts: EmulatorServerOptions = {}): Promise<EmulatorServer> {
  const host = opts.host ?? "127.0.0.1";
  const wantRtmp = opts.rtmpPort !== null;
  const rtmpPort = wantRtmp ? await freePort(host, opts.rtmpPort ?? 1935) : 0;
  const rtmpUrl = wantRtmp ? `rtmp://${host}:${rtmpPort}/${RTMP_APP}/` : null;

  const httpServer = http.createServer();
  // Node closes an idle keep-alive connection after 5 s; a client that picks that connection from its pool
  // just then (workerd's fetch, the SDK's) gets "Connection error" for a call that never arrived: under
  // load, a start stream answered 502 in the fault matrix. Idle connections are the client's to close.
  httpServer.keepAliveTimeout = 65_000;
  httpServer.headersTimeout = 66_000;
  await listen(httpServer, host, opts.port ?? 8788);
  const port = (httpServer.address() as net.AddressInfo).port;
  const url = `http://${host}:${port}`;

  const useFfmpeg = wantRtmp && opts.ffmpeg !== false && ffmpegAvailable();
  if (opts.ffmpeg === true && !useFfmpeg) throw new Error("ffmpeg requested but not available (or RTMP disabled)");
  const relay = useFfmpeg ? new FfmpegRelayDriver(rtmpUrl!) : undefined;
  const { host: _h, port: _p, rtmpPort: _r, srtPort: _s, ffmpeg: _f, logLevel: _l, stateDir, log, playbackRoot, ...emulatorOptions } = opts;
  const playbackOff = !wantRtmp
    ? "Playback is off: this emulator runs without RTMP ingest (rtmpPort: null), so there is no media to play."
    : opts.ffmpeg === false
      ? "Playback is off: this emulator was started with ffmpeg: false. It packages RTMP ingest into HLS, DASH and thumbnails with ffmpeg."
      : !useFfmpeg
        ? "Playback needs ffmpeg: the emulator packages RTMP ingest into HLS, DASH and thumbnails with ffmpeg, which is not on PATH. Install it (e.g. apt-get install ffmpeg) and restart the emulator."
        : null;
  let playback: FfmpegPlayback | null = null;
  try {
    if (!playbackOff) playback = new FfmpegPlayback({ root: playbackRoot, log: opts.logLevel === "silent" ? undefined : (log ?? console.error) });
  } catch (e) {
    httpServer.close();
    throw e;
  }

  let ingest: RtmpIngest | null = null;
  let srt: SrtIngest | null = null;
  let emulatorRef: StreamEmulator | null = null;
  // WHIP/WHEP with real media (werift, pure TypeScript: needs neither ffmpeg nor RTMP).
  const webrtc = new WeriftWebRtc(() => emulatorRef!, opts.logLevel === "silent" ? undefined : (log ?? console.error));
  try {
    if (useFfmpeg && opts.srtPort !== null) {
      const start = (port: number) =>
        startSrtIngest({
          host,
          port,
          rtmpBase: rtmpUrl!,
          lookup: (sid) => emulatorRef?.srtPublisher(sid) ?? null,
          log: opts.logLevel === "silent" ? undefined : (log ?? console.error),
        });
      // A port asked for must be free; the default, when taken (another emulator), gives way to a free one:
      // live inputs' srt.url always names the real address.
      srt = opts.srtPort !== undefined ? await start(opts.srtPort) : await start(DEFAULT_SRT_PORT).catch(() => start(0));
    }
  } catch (e) {
    httpServer.close();
    await playback?.close();
    throw new Error(`SRT port ${host}:${opts.srtPort ?? DEFAULT_SRT_PORT} is not available: ${(e as Error).message}`);
  }
  const emulator = new StreamEmulator({
    ...emulatorOptions,
    rtmpIngestUrl: opts.rtmpIngestUrl ?? rtmpUrl ?? undefined,
    // Live inputs carry the address publishers can really reach (a port of 0 became a real one).
    srtIngestUrl: opts.srtIngestUrl ?? srt?.url,
    // Cloudflare's customer host (WHIP/WHEP and playback URLs) is served under /playback.
    publicBaseUrl: opts.publicBaseUrl ?? `${url}${PLAYBACK_PREFIX}`,
    relay,
    playback: playback ?? undefined,
    playbackUnavailable: playbackOff ?? undefined,
    // An SRT publish is republished into RTMP under the input's key: kicking that ends the SRT session too.
    // The Realtime SFU forwards real media here (werift, UDP on loopback); workerd has only its signalling.
    realtime: { ...opts.realtime, media: opts.realtime?.media ?? weriftMedia() },
    kickIngest: (key) => {
      ingest?.kick(key);
      webrtc.kick(key);
    },
    webrtc,
    ingestSessions: () => ({ srt: srt?.sessions() ?? [], ...webrtc.sessions() }),
  });
  emulatorRef = emulator;

  let stateFile: StateFile | null = null;
  let restored: LoadResult | null = null;
  try {
    if (stateDir) {
      stateFile = new StateFile(stateDir, emulator, log);
      restored = stateFile.load();
      emulator.observer = stateFile;
    }
  } catch (e) {
    httpServer.close();
    await srt?.close();
    await playback?.close();
    throw e;
  }
  httpServer.on("request", (req, res) => void handle(emulator, url, req, res, () => stateFile?.flush()));
  try {
    if (wantRtmp) {
      ingest = await startRtmpIngest({
        host,
        port: rtmpPort,
        app: RTMP_APP,
        emulator: () => emulator,
        logLevel: opts.logLevel ?? "error",
        onPublish: (s) => playback?.start({ inputUid: s.inputUid, owner: s.id, source: `${rtmpUrl}${s.streamKey}`, codecs: s.codecs }),
        onUnpublish: (s) => playback?.stop(s.inputUid, s.id),
      });
    }
  } catch (e) {
    httpServer.close();
    await srt?.close();
    await playback?.close();
    throw e;
  }
  // Ingest sessions did not survive the restart: say so, as a real disconnect would.
  if (restored) emulator.announceDisconnected(restored.disconnected, ANNOUNCE_RETRY_MS);
  const unfollow = playback ? recordVideos(emulator, playback.recordings) : () => undefined;

  // Videos end, become ready (with their webhook) and are deleted on time even when nobody calls.
  const ticker = setInterval(() => emulator.tick(), 500);
  ticker.unref();

  let closing: Promise<void> | null = null;
  return {
    url,
    rtmpUrl,
    srtUrl: srt?.url ?? null,
    emulator,
    restored,
    playback,
    playbackOff,
    close: () =>
      (closing ??= (async () => {
        clearInterval(ticker);
        unfollow();
        relay?.stopAll();
        emulator.realtime.reset();
        emulator.webhooks.close();
        await srt?.close();
        await webrtc.close();
        await ingest?.close();
        await playback?.close();
        const closed = new Promise<void>((resolve) => httpServer.close(() => resolve()));
        httpServer.closeAllConnections();
        await closed;
        stateFile?.flush();
        emulator.observer = null;
      })()),
  };
}

/**
 * The real recordings follow the video model: the packager writes the video a connect started or continued,
 * its end makes the playlist final, and what that measured becomes the video's duration, size and input size.
 */
function recordVideos(emulator: StreamEmulator, writer: RecordingWriter): () => void {
  return emulator.videos.onEvent((event) => {
    if (event.type === "started") writer.started(event.inputUid, event.videoUid);
    else if (event.type === "continued") writer.continued(event.inputUid, event.videoUid);
    else if (event.type === "deleted") void writer.deleted(event.videoUid);
    else if (event.type === "ended") {
      // Ready means playable: the video waits for the playlist's end, DASH and the thumbnail.
      emulator.videos.holdReady(event.videoUid);
      void writer.ended(event.videoUid).then(({ durationSeconds, sizeBytes, width, height }) => {
        // Nothing recorded (a control-API connect): the sessions' length stands.
        const media = durationSeconds === null ? {} : { durationSeconds, ...(sizeBytes !== null ? { sizeBytes } : {}), ...(width !== null && height !== null ? { width, height } : {}) };
        emulator.videos.reportMedia(event.videoUid, media, { final: true });
      });
    }
  });
}

/** Adapts a Node request to the emulator's fetch(); a dropped-connection fault destroys the socket. */
async function handle(emulator: StreamEmulator, base: string, req: http.IncomingMessage, res: http.ServerResponse, persist: () => void): Promise<void> {
  try {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const headers = new Headers();
    for (const [name, value] of Object.entries(req.headers)) {
      if (value !== undefined) headers.set(name, Array.isArray(value) ? value.join(", ") : value);
    }
    // Who is asking, from the socket (never the caller's say): the delivery host's `/views` counts clients by it.
    headers.set("x-emulator-client", req.socket.remoteAddress ?? "");
    const method = req.method ?? "GET";
    const hasBody = method !== "GET" && method !== "HEAD" && chunks.length > 0;
    const request = new Request(new URL(req.url ?? "/", base), { method, headers, body: hasBody ? Buffer.concat(chunks) : undefined });
    let response: Response;
    try {
      response = await emulator.fetch(request);
    } finally {
      // Durable before answered (also when a fault drops the answer after the effect).
      persist();
    }
    const body = Buffer.from(await response.arrayBuffer());
    res.writeHead(response.status, Object.fromEntries(response.headers));
    res.end(body);
  } catch (e) {
    if (e instanceof DroppedConnectionError) {
      req.socket.destroy();
      return;
    }
    const message = e instanceof Error ? e.message : String(e);
    if (!res.headersSent) res.writeHead(500, { "content-type": "application/json" });
    res.end(JSON.stringify({ success: false, errors: [{ code: 10002, message: `Emulator error: ${message}` }], messages: [], result: null }));
  }
}

function listen(server: http.Server | net.Server, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
}

/** Checks the port is free (NMS exits the process on EADDRINUSE) and resolves 0 to a free port. */
async function freePort(host: string, port: number): Promise<number> {
  const probe = net.createServer();
  try {
    await listen(probe, host, port);
  } catch (e) {
    throw new Error(`RTMP port ${host}:${port} is not available: ${(e as Error).message}`);
  }
  const actual = (probe.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return actual;
}

function envInt(name: string): number | undefined {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return undefined;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${name} must be a non-negative integer, got ${raw}`);
  return n;
}

async function main(): Promise<void> {
  const env = process.env;
  const requests = envInt("EMULATOR_RATE_LIMIT");
  const windowSeconds = envInt("EMULATOR_RATE_WINDOW_SECONDS");
  const server = await startEmulatorServer({
    port: envInt("STREAM_EMULATOR_PORT") ?? 8788,
    rtmpPort: envInt("RTMP_PORT") ?? 1935,
    srtPort: envInt("SRT_PORT"),
    apiToken: env.CLOUDFLARE_API_TOKEN || undefined,
    accountId: env.CLOUDFLARE_ACCOUNT_ID || undefined,
    webhook: env.STREAM_WEBHOOK_URL ? { url: env.STREAM_WEBHOOK_URL, secret: env.STREAM_WEBHOOK_SECRET ?? "" } : null,
    rateLimit: requests || windowSeconds ? { requests: requests ?? 1200, windowSeconds: windowSeconds ?? 300 } : undefined,
    logLevel: (env.EMULATOR_LOG_LEVEL as RtmpLogLevel | undefined) ?? "error",
    stateDir: env.EMULATOR_STATE_DIR || undefined,
    playbackRoot: env.EMULATOR_PLAYBACK_DIR || undefined,
    realtime: {
      appId: env.REALTIME_APP_ID || undefined,
      appSecret: env.REALTIME_APP_SECRET || undefined,
      turnKeyId: env.TURN_KEY_ID || undefined,
      turnKeyToken: env.TURN_KEY_API_TOKEN || undefined,
    },
  });
  const relays = server.rtmpUrl && ffmpegAvailable() ? "ffmpeg" : "simulated";
  const playback = server.playback ? `${server.url}${PLAYBACK_PREFIX}/<uid>/manifest/video.m3u8 (HLS, DASH, thumbnail)` : "off (needs ffmpeg)";
  console.log(`stream emulator: api ${server.url}/client/v4  rtmp ${server.rtmpUrl ?? "off"}  srt ${server.srtUrl ?? "off"}  relays ${relays}  playback ${playback}`);
  if (server.restored) {
    const { inputs, outputs, disconnected } = server.restored;
    console.log(
      `stream emulator: state in ${env.EMULATOR_STATE_DIR}: restored ${inputs} live inputs, ${outputs} outputs` +
        (disconnected.length ? `; ${disconnected.length} were connected and are now disconnected (ingest did not survive the restart)` : ""),
    );
  }
  const stop = (signal: string) => {
    console.log(`stream emulator: ${signal}, shutting down`);
    server.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once("SIGINT", () => stop("SIGINT"));
  process.once("SIGTERM", () => stop("SIGTERM"));
}

function isMain(): boolean {
  const entry = process.argv[1];
  if (!entry) return false;
  try {
    return realpathSync(entry) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isMain()) {
  main().catch((e: unknown) => {
    console.error(`stream emulator failed to start: ${e instanceof Error ? e.message : String(e)}`);
    process.exit(1);
  });
}
