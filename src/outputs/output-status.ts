/**
 * Output status. Cloudflare exposes no per-output connection state (BRIEF §1), so it is derived:
 *
 * | condition (first match wins)                                        | seed 002 status | SDK (WebSocket) |
 * |---------------------------------------------------------------------|-----------------|-----------------|
 * | create/enable failed, missing at Cloudflare, input errored,         | error           | error           |
 * |   or the emulator's relay reports an error (with its message)       |                 |                 |
 * | no successful sync for three poll intervals                          | unknown         | stopped         |
 * | disabled by its owner                                               | unknown         | stopped         |
 * | enabled, input connected and stable for the debounce period         | active          | active          |
 * | enabled, input not connected (or not yet stable), or being created  | connecting      | stopped         |
 *
 * The SDK's `outputs[].status` knows only `active | error | stopped`: anything not streaming and not
 * failed is `stopped` there.
 */
export type OutputStatus = "active" | "connecting" | "error" | "unknown";
export type SdkOutputStatus = "active" | "error" | "stopped";

export interface OutputFacts {
  pending: boolean;
  enabled: boolean;
  error: string | null;
  /** Ingest connected and stable (debounced) at Cloudflare. */
  ingestStable: boolean;
  /** Our knowledge of Cloudflare is stale (no successful sync for three intervals). */
  stale: boolean;
}

export function deriveOutputStatus(f: OutputFacts): { status: OutputStatus; error: string | null } {
  if (f.error) return { status: "error", error: f.error };
  if (f.stale) return { status: "unknown", error: null };
  if (f.pending) return { status: "connecting", error: null };
  if (!f.enabled) return { status: "unknown", error: null };
  return { status: f.ingestStable ? "active" : "connecting", error: null };
}

export function toSdkOutputStatus(status: OutputStatus): SdkOutputStatus {
  return status === "active" || status === "error" ? status : "stopped";
}
