import { nanoid } from "nanoid";
import {
  MANAGED_STREAM_APP_ID,
  type DeviceMessage,
  type DeviceStreamStatus,
  type KeepRtmpStreamAlive,
  type StartRtmpStream,
  type StopRtmpStream,
} from "../schemas/protocol";
import type { StreamContext } from "./context";
import { StreamMeta } from "./context";
import { DEVICE_TAG, send } from "./sockets";
import type { DeviceCondition } from "./status";
import type { StreamRecord } from "./store";

/**
 * The glasses channel: ingest credentials go to the device only, keep-alives every 15 s, and three
 * unanswered keep-alives mark the device `lost` (reported truthfully, never as active).
 */
export const KEEPALIVE_TIMER = "device-keepalive";
export const KEEPALIVE_INTERVAL_MS = 15_000;
export const MAX_MISSED_ACKS = 3;

export class DeviceChannel {
  private readonly meta: StreamMeta;

  constructor(private readonly s: StreamContext) {
    this.meta = new StreamMeta(s.sql);
  }

  sockets(excluding?: WebSocket): WebSocket[] {
    return this.s.ctx.getWebSockets(DEVICE_TAG).filter((ws) => ws !== excluding && ws.readyState === WebSocket.OPEN);
  }

  isConnected(excluding?: WebSocket): boolean {
    return this.sockets(excluding).length > 0;
  }

  /** On (re)connect: hand over the ingest credentials and start keep-alives. */
  onConnect(ws: WebSocket, record: StreamRecord, now: number): void {
    if (record.phase === "running" && record.ingest) send(ws, startMessage(record));
    this.meta.set("pendingAck", null);
    this.meta.set("missedAcks", "0");
    this.s.schedule.set(KEEPALIVE_TIMER, now + KEEPALIVE_INTERVAL_MS);
  }

  /** On wake: keep-alives run exactly while a device socket is open (a crash may have taken it). */
  reconcile(now: number): void {
    if (!this.isConnected()) this.s.schedule.cancel(KEEPALIVE_TIMER);
    else this.s.schedule.setEarliest(KEEPALIVE_TIMER, now + KEEPALIVE_INTERVAL_MS);
  }

  onDisconnect(excluding: WebSocket): void {
    if (!this.isConnected(excluding)) this.s.schedule.cancel(KEEPALIVE_TIMER);
  }

  /** Keep-alive tick. Returns the device condition change it implies, if any. */
  tick(record: StreamRecord, now: number): DeviceCondition | null {
    if (record.phase !== "running" || !this.isConnected()) return null;
    let missed = Number(this.meta.get("missedAcks") ?? "0");
    if (this.meta.get("pendingAck") !== null) missed += 1;
    const ackId = nanoid(12);
    this.meta.set("pendingAck", ackId);
    this.meta.set("missedAcks", String(missed));
    for (const ws of this.sockets()) send(ws, { type: "keep_rtmp_stream_alive", streamId: record.streamId, ackId } satisfies KeepRtmpStreamAlive);
    this.s.schedule.set(KEEPALIVE_TIMER, now + KEEPALIVE_INTERVAL_MS);
    return missed >= MAX_MISSED_ACKS && record.device !== "lost" ? "lost" : null;
  }

  /** Applies a device message; returns the new device condition and detail when it changes. */
  onMessage(message: DeviceMessage, record: StreamRecord): { device: DeviceCondition; detail: string | null } | null {
    if (message.type === "keep_alive_ack") {
      if (message.ackId !== this.meta.get("pendingAck")) return null;
      this.meta.set("pendingAck", null);
      this.meta.set("missedAcks", "0");
      return record.device === "lost" ? { device: "ok", detail: null } : null;
    }
    const reported = deviceConditionFor(message.status);
    if (reported === "ok") return record.device === "ok" ? null : { device: "ok", detail: null };
    return { device: reported, detail: message.errorDetails ?? DEFAULT_DETAIL[message.status] ?? null };
  }

  sendStop(streamId: string): void {
    const stop: StopRtmpStream = { type: "stop_rtmp_stream", appId: MANAGED_STREAM_APP_ID, streamId };
    for (const ws of this.sockets()) send(ws, stop);
    this.s.schedule.cancel(KEEPALIVE_TIMER);
  }
}

/**
 * What each glasses report means for the stream (docs/websocket-protocol.md, "Device reports"). Every
 * value of the SDK's `RtmpStreamStatus` is accepted; none of them stops the stream (only presence does).
 */
export function deviceConditionFor(status: DeviceStreamStatus): DeviceCondition {
  switch (status) {
    case "error":
    case "reconnect_failed":
      return "error";
    case "timeout":
      return "lost";
    case "stopped":
    case "stopping":
      return "stopped";
    case "reconnecting":
    case "disconnected":
      return "reconnecting";
    case "initializing":
    case "connecting":
    case "streaming":
    case "active":
    case "reconnected":
      return "ok";
  }
}

/** Said when the glasses give no `errorDetails` and their status alone explains more than the condition. */
const DEFAULT_DETAIL: Partial<Record<DeviceStreamStatus, string>> = {
  reconnect_failed: "could not reconnect to the ingest server",
  disconnected: "their connection dropped",
};

/** The start frame with the credentials of the stream's own protocol only (docs/websocket-protocol.md). */
export function startMessage(record: StreamRecord): StartRtmpStream {
  const ingest = record.ingest!;
  const protocol = record.ingestProtocol;
  const srt = protocol === "srt" && ingest.srtUrl
    ? { url: ingest.srtUrl, ...(ingest.srtStreamId ? { streamId: ingest.srtStreamId } : {}), ...(ingest.srtPassphrase ? { passphrase: ingest.srtPassphrase } : {}) }
    : null;
  return {
    type: "start_rtmp_stream",
    appId: MANAGED_STREAM_APP_ID,
    streamId: record.streamId,
    ingest: protocol,
    // RTMPS publishes to a WHIP stream's input would play over neither WHEP nor (for its viewers) at all.
    ...(protocol !== "webrtc" ? { rtmpUrl: joinIngestUrl(ingest.rtmpsUrl, ingest.rtmpsStreamKey) } : {}),
    ...(srt ? { srt } : {}),
    ...(protocol === "webrtc" && ingest.whipUrl ? { whipUrl: ingest.whipUrl } : {}),
    video: { width: 1280, height: 720, bitrate: 2_000_000, frameRate: 30 },
    audio: { bitrate: 128_000, sampleRate: 48_000 },
    stream: {},
  };
}

/** Cloudflare's RTMPS url ends with `/live/`; the device wants one URL with the key appended. */
export function joinIngestUrl(url: string, key: string): string {
  return url.endsWith("/") ? `${url}${key}` : `${url}/${key}`;
}
