import type { RecordingSettings } from "../cloudflare/stream-api";
import { toCloudflareError } from "../cloudflare/stream-api";
import type { Failure } from "../http/errors";
import type { StreamContext } from "./context";

/**
 * Creating and tearing down the stream's Cloudflare resources. Both directions leave nothing behind:
 * a failed create deletes whatever Cloudflare may have made (found by the streamId in its meta), and
 * a stop deletes every output and the live input, retrying from the alarm until Cloudflare confirms.
 */
export const CLEANUP_TIMER = "cleanup";
export const CREATE_WATCHDOG_TIMER = "create-watchdog";

export interface CreateInput {
  streamId: string;
  userId: string;
  packageName: string;
  recording: RecordingSettings;
  deleteRecordingAfterDays: number | null;
}

export class Lifecycle {
  constructor(private readonly s: StreamContext) {}

  /**
   * Creates the live input. On failure it removes any input Cloudflare made despite the error
   * (a timeout or dropped response can hide a success) and returns the failure.
   */
  async createLiveInput(input: CreateInput): Promise<Failure | null> {
    try {
      const created = await this.s.api.createLiveInput({
        streamId: input.streamId,
        recording: input.recording,
        deleteRecordingAfterDays: input.deleteRecordingAfterDays,
      });
      // The webhook index first: a webhook for this input must find its stream from the start.
      await this.s.env.INPUT_INDEX.getByName(created.uid).set(input.streamId);
      this.s.store.update({ liveInputUid: created.uid, ingest: created.ingest, phase: "running" });
      return null;
    } catch (error) {
      const failure = toCloudflareError(error);
      if (failure.definitelyNotApplied) return failure.toFailure();
      await this.deleteInputsOf(input.streamId).catch((cleanupError) => {
        // The leak sweep finds it later by its meta marker.
        console.error("cleanup after failed create failed", cleanupError instanceof Error ? cleanupError.message : cleanupError);
      });
      return failure.toFailure();
    }
  }

  /** Deletes every live input Cloudflare holds for this stream (by meta), with its outputs. */
  async deleteInputsOf(streamId: string): Promise<void> {
    const inputs = await this.s.api.listOurLiveInputs();
    for (const input of inputs.filter((i) => i.streamId === streamId)) {
      await this.s.api.deleteLiveInputWithOutputs(input.uid);
    }
  }
}
