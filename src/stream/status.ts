/**
 * The stream's state machine. Our status is derived from facts (lifecycle phase, ingest state at
 * Cloudflare, what the glasses report) rather than set ad hoc, so it can never claim `active` while
 * the glasses are gone or the input is down.
 *
 *   initializing ─▶ preparing ─▶ active ⇄ reconnecting
 *        │              │          │          │
 *        └──────────────┴──────────┴──────────┴──▶ stopping ─▶ stopped
 *   any running state ⇄ error (device- or Cloudflare-reported; recovers when the fault clears)
 *
 * Each state maps to one of the six values the MentraOS SDK understands.
 */
export const STREAM_STATUSES = ["initializing", "preparing", "active", "reconnecting", "stopping", "stopped", "error"] as const;
export type StreamStatus = (typeof STREAM_STATUSES)[number];

export type SdkStatus = "initializing" | "preparing" | "active" | "stopping" | "stopped" | "error";

export function toSdkStatus(status: StreamStatus): SdkStatus {
  // The SDK has no "reconnecting": the stream is waiting for video again, which it calls preparing.
  return status === "reconnecting" ? "preparing" : status;
}

export type Phase = "initializing" | "running" | "stopping" | "stopped";
export type IngestState = "connected" | "disconnected" | "idle";
/**
 * What we know of the glasses: `lost` = 3 keep-alives unanswered; `error`, `stopped` and `reconnecting`
 * (their link to the ingest server dropped and they are retrying) = reported by them.
 */
export type DeviceCondition = "ok" | "lost" | "error" | "stopped" | "reconnecting";

export interface StatusFacts {
  phase: Phase;
  ingestState: IngestState;
  /** Whether ingest has ever connected in this stream (distinguishes preparing from reconnecting). */
  everConnected: boolean;
  device: DeviceCondition;
  deviceDetail: string | null;
  /** A Cloudflare-side input error (live_input.errored), cleared by the next connect. */
  inputError: string | null;
}

export interface DerivedStatus {
  status: StreamStatus;
  message: string;
}

export function deriveStatus(f: StatusFacts): DerivedStatus {
  if (f.phase === "initializing") return { status: "initializing", message: "Creating the live input" };
  if (f.phase === "stopping") return { status: "stopping", message: "Stream is stopping" };
  if (f.phase === "stopped") return { status: "stopped", message: "Stream stopped" };
  if (f.inputError) return { status: "error", message: `Cloudflare reported an ingest error: ${f.inputError}` };
  if (f.device === "error") return { status: "error", message: `Glasses reported an error${f.deviceDetail ? `: ${f.deviceDetail}` : ""}` };
  if (f.device === "lost") {
    return { status: f.everConnected ? "reconnecting" : "preparing", message: "Glasses stopped answering keep-alives" };
  }
  if (f.device === "stopped") {
    return { status: f.everConnected ? "reconnecting" : "preparing", message: "Glasses stopped streaming" };
  }
  if (f.device === "reconnecting") {
    const message = `Glasses are reconnecting to the ingest server${f.deviceDetail ? `: ${f.deviceDetail}` : ""}`;
    return { status: f.everConnected ? "reconnecting" : "preparing", message };
  }
  if (f.ingestState === "connected") return { status: "active", message: "Stream is live" };
  if (f.everConnected) return { status: "reconnecting", message: "Waiting for the glasses to reconnect" };
  return { status: "preparing", message: "Waiting for the glasses to start streaming" };
}
