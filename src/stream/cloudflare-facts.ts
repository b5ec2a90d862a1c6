import { clock } from "../clock";
import type { IngestState, RemoteOutput } from "../cloudflare/stream-api";
import { outputsCheckAfterConnectDelay, phaseOf, type PollSituation } from "../sync/poll-policy";
import type { StreamContext } from "./context";
import type { DeviceChannel } from "./device";
import type { Outputs } from "./outputs";
import type { Presence } from "./presence";
import type { Recordings } from "./recordings";
import type { StatusPublisher } from "./publisher";
import { OUTPUTS_POLL_TIMER, type StatusSync } from "./status-sync";

export interface WebhookEvent {
  type: "live_input.connected" | "live_input.disconnected" | "live_input.errored";
  liveInputUid: string;
  eventAt: number;
  error: string | null;
}

/**
 * What Cloudflare tells us about this stream — a poll's reading or a webhook — applied to its state:
 * ingest state, output facts only Cloudflare knows, and the situation the poll policy plans from.
 * StatusSync and the publisher are reached through getters: they and this module need each other.
 */
export class CloudflareFacts {
  constructor(
    private readonly s: StreamContext,
    private readonly parts: {
      outputs: Outputs;
      presence: Presence;
      device: DeviceChannel;
      recordings: Recordings;
      sync: () => StatusSync;
      publisher: () => StatusPublisher;
    },
  ) {}

  /** Applies an ingest state observed at Cloudflare (poll or webhook). */
  applyIngest(state: IngestState): void {
    const record = this.s.store.get();
    if (!record || record.phase !== "running") return;
    if (record.ingestState === state) return this.parts.publisher().pushIfChanged();
    const connected = state === "connected";
    this.s.store.update({
      ingestState: state,
      everConnected: record.everConnected || connected,
      ...(connected ? { inputError: null } : {}),
    });
    // Each connect may start a new recording: its uid is learned shortly (durable timer, same write).
    if (connected) this.parts.recordings.scheduleCapture(clock.now());
    const sync = this.parts.sync();
    sync.ingestChanged(state, clock.now());
    sync.reschedule(clock.now());
    const check = connected ? outputsCheckAfterConnectDelay(this.situation(clock.now())) : null;
    if (check !== null) this.s.schedule.setEarliest(OUTPUTS_POLL_TIMER, clock.now() + check);
    this.parts.publisher().refresh();
  }

  /**
   * Output facts only Cloudflare knows: an output gone missing, or (emulator) a relay error, and the
   * enabled flags, unless one of ours changed while the listing was read (`flagMark`, Outputs.flagMark()).
   */
  applyRemoteOutputs(remote: RemoteOutput[], flagMark: number): void {
    const byUid = new Map(remote.map((o) => [o.uid, o]));
    const outputs = this.parts.outputs;
    for (const row of outputs.store.all()) {
      if (row.state !== "ready" || !row.cf_uid) continue;
      const found = byUid.get(row.cf_uid);
      const error = !found
        ? "Output no longer exists at Cloudflare"
        : found.relay?.state === "error"
          ? `Relay error: ${found.relay.lastError ?? "unknown error"}`
          : null;
      outputs.store.setError(row.output_id, error);
      // Cloudflare's enabled flag is the truth (two PATCHes may have crossed on the way), as of a read
      // that no PATCH of ours crossed.
      if (found && found.enabled !== (row.enabled === 1) && outputs.flagsSettledSince(flagMark)) outputs.store.setEnabled(row.output_id, found.enabled);
    }
    this.parts.publisher().pushIfChanged();
  }

  /** A failed read may have made our knowledge stale: tell viewers if what they see changed. */
  readFailed(): void {
    this.parts.publisher().pushIfChanged();
  }

  /** A Cloudflare Notifications webhook for this stream's live input (already authenticated). */
  async applyWebhook(event: WebhookEvent): Promise<{ applied: boolean; reason?: string }> {
    const record = this.s.store.get();
    if (!record || record.liveInputUid !== event.liveInputUid) return { applied: false, reason: "unknown live input" };
    if (record.phase !== "running") return { applied: false, reason: `stream is ${record.phase}` };
    const sync = this.parts.sync();
    if (!sync.acceptWebhook(event.eventAt, clock.now())) return { applied: false, reason: "older than an event already applied" };
    if (event.type === "live_input.errored") {
      this.s.store.update({ inputError: event.error ?? "unknown error" });
      this.parts.publisher().refresh();
    } else {
      this.applyIngest(event.type === "live_input.connected" ? "connected" : "disconnected");
    }
    sync.reschedule(clock.now());
    await this.s.schedule.arm();
    return { applied: true };
  }

  /** What the poll policy plans from. Counted viewers and the glasses: no walk over the sockets. */
  situation(now: number): PollSituation {
    const record = this.s.store.get();
    return {
      now,
      createdAt: record?.createdAt ?? now,
      everConnected: record?.everConnected ?? false,
      ingestConnected: record?.ingestState === "connected",
      hasClients: this.parts.presence.viewerCount() > 0 || this.parts.device.isConnected(),
      hasOutputs: this.parts.outputs.store.visible().length > 0,
      webhooksConfigured: Boolean(this.s.config.webhookSecret),
      webhooksSeen: this.parts.sync().webhooksSeen(),
      readsFailing: this.parts.sync().readsFailing(),
      slowPollMs: this.s.config.pollSlowSeconds * 1000,
      outputsPollMs: this.s.config.outputsPollSeconds * 1000,
      phase: phaseOf(record?.streamId ?? ""),
    };
  }
}
