import type { IngestProtocol } from "../cloudflare/playback";
import type { CreatedLiveInput, RecordingSettings } from "../cloudflare/stream-api";
import { toCloudflareError, type CloudflareCallError } from "../cloudflare/stream-api";
import { recordInputStream } from "../cloudflare/live-input-index";
import { clock } from "../clock";
import { fail, type Failure } from "../http/errors";
import type { StreamContext } from "./context";
import type { Tombstones } from "./tombstones";
import { cloudflareDeleteAfterDays } from "./recordings";

/**
 * Creating the stream's live input so that nothing is left behind and the caller hears the truth.
 * A create whose answer is lost (timeout, dropped connection, 5xx) may still have happened, or may
 * still happen: we read Cloudflare back (our inputs carry the streamId in their meta) and adopt what
 * is there; if nothing is there yet we try once more with the same Idempotency-Key. Whatever the
 * outcome, an ambiguous create leaves a tombstone that deletes any input that turns up late and that
 * the stream does not use.
 */
export const CLEANUP_TIMER = "cleanup";
export const CREATE_WATCHDOG_TIMER = "create-watchdog";

export interface CreateInput {
  streamId: string;
  userId: string;
  packageName: string;
  ingestProtocol: IngestProtocol;
  recording: RecordingSettings;
  deleteRecordingAfterDays: number | null;
  /** The user's watch link, shown as the SDK's `previewUrl` (UserStreams passes it). */
  watchUrl?: string | null;
}

export class Lifecycle {
  constructor(
    private readonly s: StreamContext,
    private readonly tombstones: Tombstones,
  ) {}

  /** Creates (or adopts) the live input and records it; returns the failure the caller should see. */
  async createLiveInput(input: CreateInput): Promise<Failure | null> {
    const outcome = await this.createSettled(input);
    if (!outcome.ok) return outcome.failure;
    try {
      // The webhook index first: a webhook for this input must find its stream from the start.
      await recordInputStream(this.s.env, outcome.created.uid, input.streamId, this.s.store.get()?.createdAt ?? clock.now());
    } catch {
      // The input exists but could not be indexed: give it up; the tombstone deletes it.
      this.tombstones.add({ kind: "live_input", streamId: input.streamId });
      return fail(503, "SERVICE_UNAVAILABLE", "Could not record the stream's live input; retry shortly", 1);
    }
    this.s.store.update({ liveInputUid: outcome.created.uid, ingest: outcome.created.ingest, phase: "running" });
    return null;
  }

  private async createSettled(input: CreateInput): Promise<{ ok: true; created: CreatedLiveInput } | { ok: false; failure: Failure }> {
    let last: CloudflareCallError | null = null;
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const created = await this.s.api.createLiveInput({
          streamId: input.streamId,
          ingestProtocol: input.ingestProtocol,
          recording: input.recording,
          deleteRecordingAfterDays: cloudflareDeleteAfterDays(input.deleteRecordingAfterDays, this.s.config.recordingRetentionDays),
        });
        // An earlier attempt may still land as a second input: the tombstone keeps the one we use.
        if (last) this.tombstones.add({ kind: "live_input", streamId: input.streamId });
        return { ok: true, created };
      } catch (error) {
        last = toCloudflareError(error);
        if (last.definitelyNotApplied && attempt === 0) return { ok: false, failure: last.toFailure() };
        if (last.definitelyNotApplied) break;
        const adopted = await this.findCreated(input.streamId).catch(() => null);
        if (adopted) {
          this.tombstones.add({ kind: "live_input", streamId: input.streamId });
          return { ok: true, created: adopted };
        }
      }
    }
    // Given up after an ambiguous answer: whatever turns up later is deleted by the tombstone.
    this.tombstones.add({ kind: "live_input", streamId: input.streamId });
    return { ok: false, failure: last!.toFailure() };
  }

  /** The input Cloudflare made for this stream despite a lost answer, with its credentials. */
  private async findCreated(streamId: string): Promise<CreatedLiveInput | null> {
    const ours = (await this.s.api.listOurLiveInputs()).filter((i) => i.streamId === streamId);
    ours.sort((a, b) => (a.created ?? "").localeCompare(b.created ?? ""));
    return ours[0] ? this.s.api.getLiveInput(ours[0].uid) : null;
  }
}
