// The account's live inputs: the API's create (with Idempotency-Key), list, read, update, key rotation and
// delete, and the ingest side — a broadcast connecting and disconnecting (RTMP, SRT or WHIP), each change
// in the input's status history and told to the webhooks.

import { ApiError, ErrorCode, ok, readJsonObject } from "./envelope.ts";
import type { Outputs } from "./outputs.ts";
import { applyPatch, newLiveInput, parseLiveInputBody, renderListItem, renderLiveInput, rotateKeys } from "./state.ts";
import type { EmulatorConfig, LiveInputRecord } from "./types.ts";
import type { VideoLibrary } from "./videos.ts";
import type { InputError, LiveInputEvent } from "./webhooks.ts";

export const MAX_STATUS_HISTORY = 50;
const IDEMPOTENCY_TTL_MS = 6 * 3600 * 1000; // Cloudflare keeps keys six hours

export interface LiveInputsDeps {
  config: EmulatorConfig;
  now: () => number;
  changed: () => void;
  notify: (uid: string, event: LiveInputEvent, error?: InputError) => void;
  videos: VideoLibrary;
  outputs: Outputs;
  /** Ends the host's ingest session of this stream key (a disabled input, rotated keys, a delete). */
  kickIngest: ((streamKey: string) => void) | undefined;
}

export class LiveInputs {
  records = new Map<string, LiveInputRecord>();
  byStreamKey = new Map<string, string>();
  idempotency = new Map<string, { uid: string; expiresAt: number }>();
  /** Inputs whose current broadcast came over WHIP (not persisted: no broadcast survives a restart). */
  private whipConnected = new Set<string>();

  constructor(private readonly deps: LiveInputsDeps) {}

  get(uid: string): LiveInputRecord | undefined {
    return this.records.get(uid);
  }

  overWhip(uid: string): boolean {
    return this.whipConnected.has(uid);
  }

  require(id: string): LiveInputRecord {
    const input = this.records.get(id);
    if (!input) throw new ApiError(404, ErrorCode.NotFound, `Live input not found: ${id}`);
    return input;
  }

  render(input: LiveInputRecord): Record<string, unknown> {
    const last = input.statusHistory[input.statusHistory.length - 1];
    if (input.connected && last) last.statusLastSeen = this.iso();
    return renderLiveInput(input, this.deps.config);
  }

  async create(request: Request): Promise<Response> {
    const { config, now } = this.deps;
    const key = request.headers.get("idempotency-key");
    const patch = parseLiveInputBody(await readJsonObject(request));
    if (key !== null) {
      if (new TextEncoder().encode(key).length > 255) throw new ApiError(400, ErrorCode.Validation, "Idempotency-Key must be at most 255 bytes");
      const seen = this.idempotency.get(key);
      if (seen && seen.expiresAt > now()) {
        const existing = this.records.get(seen.uid);
        if (!existing) throw new ApiError(409, ErrorCode.IdempotencyConflict, "Idempotency-Key was used for a live input that has been deleted");
        return ok(this.render(existing));
      }
    }
    if (this.records.size >= config.maxLiveInputs) {
      throw new ApiError(400, ErrorCode.Limit, `Live input limit reached: an account may have at most ${config.maxLiveInputs} live inputs`);
    }
    const input = newLiveInput(patch, this.iso());
    this.records.set(input.uid, input);
    this.byStreamKey.set(input.streamKey, input.uid);
    if (key !== null) this.idempotency.set(key, { uid: input.uid, expiresAt: now() + IDEMPOTENCY_TTL_MS });
    this.deps.changed();
    return ok(this.render(input));
  }

  list(): Response {
    const items = [...this.records.values()].map(renderListItem);
    return ok({ liveInputs: items, range: items.length, total: items.length });
  }

  async update(id: string, request: Request): Promise<Response> {
    const input = this.require(id);
    const patch = parseLiveInputBody(await readJsonObject(request));
    applyPatch(input, patch, this.iso());
    // A disabled input refuses broadcasts, so an ongoing one ends.
    if (!input.enabled && input.connected) this.endBroadcast(input);
    this.deps.changed();
    return ok(this.render(input));
  }

  /**
   * POST .../rotate_keys: new RTMPS stream key, SRT passphrase and WebRTC secret; the old ones stop working
   * at once, and a broadcast using them is ended (Cloudflare: "shortly after rotation").
   */
  rotateKeys(id: string): Response {
    const input = this.require(id);
    if (input.connected) this.endBroadcast(input);
    const oldKey = rotateKeys(input, this.iso());
    this.byStreamKey.delete(oldKey);
    this.byStreamKey.set(input.streamKey, input.uid);
    this.deps.changed();
    return ok(this.render(input));
  }

  delete(id: string): Response {
    const input = this.require(id);
    if (input.connected) this.endBroadcast(input);
    for (const oid of input.outputs) this.deps.outputs.remove(oid);
    this.records.delete(id);
    this.deps.videos.inputDeleted(id);
    this.byStreamKey.delete(input.streamKey);
    this.deps.changed();
    return ok(null);
  }

  // ---------------------------------------------------------------- ingest

  /** Marks a live input connected (RTMP publish started). False if unknown or disabled. */
  connect(uid: string, via: "rtmp" | "whip" = "rtmp"): boolean {
    const input = this.records.get(uid);
    if (!input || !input.enabled) return false;
    if (via === "whip") this.whipConnected.add(uid);
    else this.whipConnected.delete(uid);
    const nowIso = this.iso();
    if (input.connected) {
      const last = input.statusHistory[input.statusHistory.length - 1];
      if (last) last.statusLastSeen = nowIso;
      return true;
    }
    input.connected = true;
    this.pushStatus(input, { state: "connected", reason: null, statusEnteredAt: nowIso, statusLastSeen: nowIso });
    this.deps.changed();
    this.deps.notify(input.uid, "live_input.connected");
    this.deps.videos.connected(input);
    // A new broadcast restarts every enabled relay, clearing sticky errors.
    this.deps.outputs.inputChanged(input, true);
    return true;
  }

  /** Marks a live input disconnected. False if unknown; no-op (true) if not connected. */
  disconnect(uid: string, reason = "client_disconnect"): boolean {
    const input = this.records.get(uid);
    if (!input) return false;
    this.whipConnected.delete(uid);
    if (!input.connected) return true;
    input.connected = false;
    const nowIso = this.iso();
    this.pushStatus(input, { state: "disconnected", reason, statusEnteredAt: nowIso, statusLastSeen: nowIso });
    this.deps.outputs.inputChanged(input, false);
    this.deps.changed();
    this.deps.notify(input.uid, "live_input.disconnected");
    this.deps.videos.disconnected(input.uid);
    return true;
  }

  /** Returns the live input uid the publish was accepted for, or null (unknown key or disabled input). */
  connectByStreamKey(streamKey: string): string | null {
    const uid = this.byStreamKey.get(streamKey);
    return uid !== undefined && this.connect(uid) ? uid : null;
  }

  disconnectByStreamKey(streamKey: string): boolean {
    const uid = this.byStreamKey.get(streamKey);
    return uid !== undefined && this.disconnect(uid);
  }

  /** The input a WHIP publish to `<host>/<secret>/webRTC/publish` is for, or null for no such secret. */
  whipPublisher(secret: string): { uid: string; streamKey: string; enabled: boolean } | null {
    for (const input of this.records.values()) {
      if (input.webRtcSecret === secret) return { uid: input.uid, streamKey: input.streamKey, enabled: input.enabled };
    }
    return null;
  }

  /** Who an SRT publish with this `streamid` is for (Node SRT ingest), or null for none. */
  srtPublisher(srtStreamId: string): { uid: string; streamKey: string; passphrase: string; enabled: boolean } | null {
    for (const input of this.records.values()) {
      if (input.srtStreamId === srtStreamId) return { uid: input.uid, streamKey: input.streamKey, passphrase: input.srtPassphrase, enabled: input.enabled };
    }
    return null;
  }

  /** Ends every broadcast's ingest session and forgets every input (reset). */
  clear(): void {
    for (const input of this.records.values()) if (input.connected) this.deps.kickIngest?.(input.streamKey);
    this.records.clear();
    this.byStreamKey.clear();
    this.whipConnected.clear();
    this.idempotency.clear();
  }

  private endBroadcast(input: LiveInputRecord): void {
    this.disconnect(input.uid);
    this.deps.kickIngest?.(input.streamKey);
  }

  private pushStatus(input: LiveInputRecord, entry: LiveInputRecord["statusHistory"][number]): void {
    const prev = input.statusHistory[input.statusHistory.length - 1];
    if (prev) prev.statusLastSeen = entry.statusEnteredAt;
    input.statusHistory.push(entry);
    if (input.statusHistory.length > MAX_STATUS_HISTORY) input.statusHistory.shift();
  }

  private iso(): string {
    return new Date(this.deps.now()).toISOString();
  }
}
