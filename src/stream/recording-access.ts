import { fail, type Failure, type Result } from "../http/errors";
import { streamNotFound } from "./failures";
import type { StreamParts } from "./parts";
import type { RecordingView } from "./recording-store";

/**
 * Who may list a stream's recordings (the apps that took part) and delete them (the app that started the
 * stream); the admin (packageName null) may do both. Answered from the stream's row while it lives, from the
 * recordings' compact record once it is purged.
 */
export class RecordingAccess {
  constructor(private readonly p: StreamParts) {}

  list(packageName: string | null): Result<{ recordings: RecordingView[] }> {
    const denied = this.refusal(packageName, false);
    if (denied) return denied;
    return { ok: true, recordings: this.p.recordings.list() };
  }

  async delete(packageName: string | null, recordingId: string): Promise<Result<{ pending: boolean }>> {
    const denied = this.refusal(packageName, true);
    if (denied) return denied;
    const result = await this.p.recordings.delete(recordingId);
    if (!result.found) return fail(404, "RECORDING_NOT_FOUND", "No such recording of this stream");
    return { ok: true, pending: result.pending };
  }

  /** Null: allowed. */
  private refusal(packageName: string | null, toDelete: boolean): Failure | null {
    const { s, recordings } = this.p;
    const record = s.store.get();
    const owner = recordings.owner();
    if (!record && !owner) return streamNotFound();
    if (packageName === null) return null;
    const participant = record ? s.store.isParticipant(packageName) : owner!.participants.includes(packageName);
    if (!participant) return streamNotFound();
    const createdBy = record?.createdBy ?? owner!.createdBy;
    if (toDelete && packageName !== createdBy) return fail(403, "FORBIDDEN", "Only the app that started the stream may delete its recordings");
    return null;
  }
}
