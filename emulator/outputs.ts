// A live input's outputs (simulcast to RTMP/SRT destinations) and their relays: a relay runs exactly while
// its input is connected and it is enabled, through the host's relay driver (ffmpeg in Node) if any.

import { ApiError, ErrorCode, ok, readJsonObject } from "./envelope.ts";
import { uid as newUid } from "./ids.ts";
import { parseOutputCreate, parseOutputUpdate, renderOutput } from "./state.ts";
import type { LiveInputRecord, OutputRecord, RelayDriver, RelayState } from "./types.ts";

const MAX_OUTPUTS_PER_INPUT = 10;
/** What an output of a WHIP-connected input reports (Cloudflare does not simulcast WebRTC inputs). */
export const WHIP_NO_OUTPUTS = "Simulcast is not supported for WebRTC (WHIP) inputs: the output does not relay";
const RELAY_STATES: readonly RelayState[] = ["idle", "connecting", "active", "error"];

export interface OutputsDeps {
  relayDriver: RelayDriver | undefined;
  input: (uid: string) => LiveInputRecord | undefined;
  /** Whether the input's current broadcast came over WHIP. */
  overWhip: (uid: string) => boolean;
  changed: () => void;
}

export class Outputs {
  records = new Map<string, OutputRecord>();

  constructor(private readonly deps: OutputsDeps) {}

  get(uid: string): OutputRecord | undefined {
    return this.records.get(uid);
  }

  /** The output of this input (already found), or 404. */
  require(input: LiveInputRecord, outputId: string): OutputRecord {
    const output = this.records.get(outputId);
    if (!output || output.inputUid !== input.uid) throw new ApiError(404, ErrorCode.NotFound, `Output not found: ${outputId}`);
    return output;
  }

  /** The input's outputs as the API renders them. */
  rendered(input: LiveInputRecord): Record<string, unknown>[] {
    return input.outputs.map((o) => renderOutput(this.records.get(o)!));
  }

  async create(input: LiveInputRecord, request: Request): Promise<Response> {
    const body = parseOutputCreate(await readJsonObject(request));
    if (input.outputs.length >= MAX_OUTPUTS_PER_INPUT) {
      throw new ApiError(400, ErrorCode.Limit, `Output limit reached: a live input may have at most ${MAX_OUTPUTS_PER_INPUT} outputs`);
    }
    const output: OutputRecord = {
      uid: newUid(),
      inputUid: input.uid,
      url: body.url,
      streamKey: body.streamKey,
      enabled: body.enabled,
      relay: { state: "idle", lastError: null },
      relayGeneration: 0,
      driverRunning: false,
    };
    this.records.set(output.uid, output);
    input.outputs.push(output.uid);
    this.syncRelay(output, true);
    this.deps.changed();
    return ok(renderOutput(output));
  }

  async update(input: LiveInputRecord, outputId: string, request: Request): Promise<Response> {
    const output = this.require(input, outputId);
    const { enabled } = parseOutputUpdate(await readJsonObject(request));
    output.enabled = enabled;
    this.syncRelay(output, enabled);
    this.deps.changed();
    return ok(renderOutput(output));
  }

  delete(input: LiveInputRecord, outputId: string): Response {
    this.require(input, outputId);
    this.remove(outputId);
    input.outputs = input.outputs.filter((o) => o !== outputId);
    this.deps.changed();
    return ok(null);
  }

  /** Drops the output and stops its relay (its input's list is the caller's to update). */
  remove(outputId: string): void {
    const output = this.records.get(outputId);
    if (!output) return;
    this.stopDriverRelay(output);
    this.records.delete(outputId);
  }

  /** The input connected or disconnected: each of its outputs' relays follows. A connect clears sticky errors. */
  inputChanged(input: LiveInputRecord, connected: boolean): void {
    for (const oid of input.outputs) this.syncRelay(this.records.get(oid)!, connected);
  }

  /** Injects or reports a relay state. "idle"/"error" stop a running driver relay. False if unknown. */
  setRelayState(outputUid: string, state: RelayState, lastError: string | null = null): boolean {
    const output = this.records.get(outputUid);
    if (!output || !RELAY_STATES.includes(state)) return false;
    if (state === "idle" || state === "error") this.stopDriverRelay(output);
    output.relay = { state, lastError };
    return true;
  }

  /** Stops every driver relay (reset). */
  stopAll(): void {
    for (const output of this.records.values()) this.stopDriverRelay(output);
  }

  /** Brings an output's relay in line with (input connected && output enabled). */
  private syncRelay(output: OutputRecord, clearError: boolean): void {
    const input = this.deps.input(output.inputUid);
    if (!input?.connected || !output.enabled) {
      this.stopDriverRelay(output);
      if (output.relay.state !== "idle") output.relay = { state: "idle", lastError: output.relay.lastError };
      return;
    }
    const { state } = output.relay;
    if (state === "active" || state === "connecting") return;
    if (state === "error" && !clearError) return; // errors stick until the next connect/enable
    this.startRelay(input, output);
  }

  private startRelay(input: LiveInputRecord, output: OutputRecord): void {
    this.stopDriverRelay(output);
    if (this.deps.overWhip(input.uid)) {
      // Cloudflare: "Simulcast is not supported for WHIP inputs". The output exists and never relays.
      output.relay = { state: "error", lastError: WHIP_NO_OUTPUTS };
      return;
    }
    const driver = this.deps.relayDriver;
    if (!driver) {
      output.relay = { state: "active", lastError: null };
      return;
    }
    const generation = ++output.relayGeneration;
    output.relay = { state: "connecting", lastError: null };
    output.driverRunning = true;
    driver.start(
      { outputUid: output.uid, inputUid: input.uid, inputStreamKey: input.streamKey, url: output.url, streamKey: output.streamKey },
      (state, lastError) => {
        // Ignore reports from a relay that has since been stopped or restarted.
        if (output.relayGeneration !== generation || this.records.get(output.uid) !== output) return;
        if (state === "idle" || state === "error") output.driverRunning = false;
        output.relay = { state, lastError };
      },
    );
  }

  private stopDriverRelay(output: OutputRecord): void {
    output.relayGeneration++;
    if (!output.driverRunning) return;
    output.driverRunning = false;
    this.deps.relayDriver?.stop(output.uid);
  }
}
