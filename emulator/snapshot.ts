// What of the emulator survives a restart (Node server with EMULATOR_STATE_DIR; see state-file.ts):
// live inputs, outputs, idempotency keys, Notifications destinations and policies, the call log and
// control-API config overrides. Ingest sessions,
// relays, faults, rate-limit counters and the webhook log are runtime state and start afresh.
// Web APIs only, like core.ts.

import { emptyAlerting, type AlertingState, type PolicyRecord, type WebhookDestinationRecord } from "./alerting.ts";
import type { CallRecord, EmulatorConfig, LiveInputRecord, OutputRecord, StatusEntry } from "./types.ts";
import type { VideoLibrary, VideoRecord, VideoWebhookRecord } from "./videos.ts";

export const SNAPSHOT_VERSION = 1;

/** Reason recorded in an input's status history when the emulator restarts under a connected input. */
export const RESTART_DISCONNECT_REASON = "emulator_restart";

/** Config keys POST /__emulator/config can change; only these carry over a restart (as overrides). */
export const OVERRIDABLE_CONFIG_KEYS = [
  "webhookUrl",
  "webhookSecret",
  "rateLimitRequests",
  "rateLimitWindowSeconds",
  "rateLimitBlockSeconds",
  "maxLiveInputs",
  "statusShape",
  "verifyWebhookDestinations",
  "videoReadyDelaySeconds",
  "defaultRecordingTimeoutSeconds",
  "storageMinutesLimit",
] as const satisfies readonly (keyof EmulatorConfig)[];

export type PersistedOutput = Pick<OutputRecord, "uid" | "inputUid" | "url" | "streamKey" | "enabled">;

export interface Snapshot {
  version: typeof SNAPSHOT_VERSION;
  savedAt: string;
  /** Config in force, and the startup config of that run: keys that differ were set over the control API. */
  config: EmulatorConfig;
  startupConfig: EmulatorConfig;
  inputs: LiveInputRecord[];
  outputs: PersistedOutput[];
  idempotency: { key: string; uid: string; expiresAt: number }[];
  /** Absent in files written before the Notifications API existed in the emulator. */
  alerting?: { destinations: WebhookDestinationRecord[]; policies: PolicyRecord[] };
  /** Absent in files written before the emulator kept videos. */
  videos?: VideoRecord[];
  videoWebhook?: VideoWebhookRecord | null;
}

/** The emulator's durable parts; serialize it at once (records are shared, not copied). */
export interface DurableParts {
  config: EmulatorConfig;
  startupConfig: EmulatorConfig;
  inputs: Map<string, LiveInputRecord>;
  outputs: Map<string, OutputRecord>;
  idempotency: Map<string, { uid: string; expiresAt: number }>;
  alerting: AlertingState;
  videos: VideoLibrary;
}

export function takeSnapshot(parts: DurableParts, nowIso: string): Snapshot {
  return {
    version: SNAPSHOT_VERSION,
    savedAt: nowIso,
    config: parts.config,
    startupConfig: parts.startupConfig,
    inputs: [...parts.inputs.values()],
    outputs: [...parts.outputs.values()].map(({ uid, inputUid, url, streamKey, enabled }) => ({ uid, inputUid, url, streamKey, enabled })),
    idempotency: [...parts.idempotency].map(([key, v]) => ({ key, uid: v.uid, expiresAt: v.expiresAt })),
    alerting: { destinations: [...parts.alerting.destinations.values()], policies: [...parts.alerting.policies.values()] },
    videos: [...parts.videos.videos.values()],
    videoWebhook: parts.videos.webhook,
  };
}

export interface Restored {
  inputs: Map<string, LiveInputRecord>;
  outputs: Map<string, OutputRecord>;
  byStreamKey: Map<string, string>;
  idempotency: Map<string, { uid: string; expiresAt: number }>;
  alerting: AlertingState;
  /** Config overrides to apply over this run's startup config. */
  overrides: Partial<EmulatorConfig>;
  /** Inputs that were connected when the snapshot was taken: now disconnected (their ingest is gone). */
  disconnected: string[];
  calls: CallRecord[];
  videos: VideoRecord[];
  videoWebhook: VideoWebhookRecord | null;
}

/**
 * Rebuilds the emulator's maps from a snapshot taken by an earlier process. Connected inputs come back
 * disconnected (with a status history entry), relays idle, expired idempotency keys dropped, and
 * dangling references (an output of a missing input) dropped.
 */
export function restoreSnapshot(snapshot: Snapshot, calls: CallRecord[], nowIso: string, nowMs: number, maxHistory: number): Restored {
  const inputs = new Map<string, LiveInputRecord>();
  const byStreamKey = new Map<string, string>();
  const disconnected: string[] = [];
  for (const input of snapshot.inputs) {
    if (input.connected) {
      input.connected = false;
      const entry: StatusEntry = { state: "disconnected", reason: RESTART_DISCONNECT_REASON, statusEnteredAt: nowIso, statusLastSeen: nowIso };
      input.statusHistory.push(entry);
      if (input.statusHistory.length > maxHistory) input.statusHistory.shift();
      disconnected.push(input.uid);
    }
    input.outputs = [];
    inputs.set(input.uid, input);
    byStreamKey.set(input.streamKey, input.uid);
  }
  const outputs = new Map<string, OutputRecord>();
  for (const o of snapshot.outputs) {
    const input = inputs.get(o.inputUid);
    if (!input) continue;
    outputs.set(o.uid, { ...o, relay: { state: "idle", lastError: null }, relayGeneration: 0, driverRunning: false });
    input.outputs.push(o.uid);
  }
  const idempotency = new Map<string, { uid: string; expiresAt: number }>();
  for (const { key, uid, expiresAt } of snapshot.idempotency) if (expiresAt > nowMs) idempotency.set(key, { uid, expiresAt });
  const overrides: Partial<EmulatorConfig> = {};
  for (const key of OVERRIDABLE_CONFIG_KEYS) {
    if (snapshot.config[key] !== snapshot.startupConfig[key]) Object.assign(overrides, { [key]: snapshot.config[key] });
  }
  const alerting = emptyAlerting();
  for (const d of snapshot.alerting?.destinations ?? []) alerting.destinations.set(d.id, d);
  // A policy's reference to a destination that is gone is dropped, as the API does on delete.
  for (const p of snapshot.alerting?.policies ?? []) {
    const webhooks = p.mechanisms.webhooks?.filter((w) => alerting.destinations.has(w.id));
    alerting.policies.set(p.id, webhooks ? { ...p, mechanisms: { ...p.mechanisms, webhooks } } : p);
  }
  return { inputs, outputs, byStreamKey, idempotency, alerting, overrides, disconnected, calls, videos: snapshot.videos ?? [], videoWebhook: snapshot.videoWebhook ?? null };
}
