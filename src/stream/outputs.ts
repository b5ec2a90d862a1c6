import { nanoid } from "nanoid";
import { MAX_OUTPUTS_PER_APP } from "../apps/output-ledger";
import { clock } from "../clock";
import { CloudflareCallError, toCloudflareError, type RemoteOutput } from "../cloudflare/stream-api";
import { fail, type Failure, type Result } from "../http/errors";
import { viewOutput, type OutputView } from "../outputs/output-view";
import type { ParsedRtmpUrl } from "../outputs/rtmp-url";
import type { StreamContext } from "./context";
import { IdempotentAdds } from "./idempotent-adds";
import { outputsRefusal } from "./ingest-choice";
import { LedgerOutbox } from "./ledger-outbox";
import { streamNotFound } from "./failures";
import { OutputStore } from "./output-store";
import { outputKey, type Tombstones } from "./tombstones";

/**
 * Restream outputs of one stream (seed 002). Every check-and-reserve happens synchronously inside the
 * object before any await, so interleaved requests cannot overshoot a cap or add a duplicate. Every
 * Cloudflare answer that is lost is settled by reading Cloudflare back before the caller is answered;
 * what cannot be settled then is marked and settled by the reconcile timer within RECONCILE_SECONDS.
 */
export const MAX_OUTPUTS_PER_STREAM = 10;
export const OUTPUT_RECONCILE_TIMER = "outputs-reconcile";

import type { OutputRow } from "./output-store";

export type { OutputView } from "../outputs/output-view";

export interface AddedOutput {
  outputId: string;
}

/** A removal Cloudflare has not confirmed yet: accepted, finished by the reconcile timer. */
export interface Removal {
  pending: boolean;
}

export class Outputs {
  /** The `outputs` table (output-store.ts). */
  readonly store: OutputStore;
  private readonly idempotent: IdempotentAdds<AddedOutput>;
  readonly ledger: LedgerOutbox;
  /** Output ids whose Cloudflare call is in flight: reconciliation leaves them alone. */
  private readonly inflight = new Set<string>();
  /**
   * Enabled-flag changes of ours, counted when each starts and again when it ends: a listing of
   * Cloudflare's outputs read across one of them may carry the flag from before it, so it must not
   * overwrite the flag that change just wrote (flagsSettledSince). In memory: an eviction ends every
   * change in flight with it.
   */
  private flagChanges = 0;

  constructor(
    private readonly s: StreamContext,
    private readonly tombstones: Tombstones,
    private readonly isPresent: (packageName: string) => boolean,
  ) {
    this.store = new OutputStore(s.sql);
    this.idempotent = new IdempotentAdds(s.sql);
    this.ledger = new LedgerOutbox(s);
  }

  hasOutput(outputId: string): "yes" | "no" | "pending" {
    const row = this.store.get(outputId);
    return !row || row.state === "deleting" ? "no" : row.state === "pending" ? "pending" : "yes";
  }

  /** Rows a crash or a lost answer left unsettled: the reconcile timer should look soon. */
  hasUnsettled(): boolean {
    return this.store.all().some((r) => r.state !== "ready" && !this.inflight.has(r.output_id));
  }

  /** How an output looks to `viewer` (see outputs/output-view). */
  view(row: OutputRow, viewer: string | null, ingestStable: boolean, stale: boolean, inputError: string | null): OutputView {
    return viewOutput(row, viewer, { ingestStable, stale, inputError });
  }

  // ── Add ──────────────────────────────────────────────────────────────────────────────────────

  addIdempotent(packageName: string, url: ParsedRtmpUrl, name: string | null, idempotencyKey: string | null): Promise<Result<AddedOutput>> {
    if (!idempotencyKey) return this.add(packageName, url, name);
    const request = JSON.stringify([url.normalized, name]);
    return this.idempotent.run(packageName, idempotencyKey, request, () => this.add(packageName, url, name), (outputId) => ({ outputId }));
  }

  /** Validation order (docs/api.md): stream → viewer → ingest allows outputs → per-stream cap → per-app cap → duplicate → Cloudflare. */
  async add(packageName: string, url: ParsedRtmpUrl, name: string | null): Promise<Result<AddedOutput>> {
    const record = this.s.store.get();
    if (!record || record.phase !== "running" || !record.liveInputUid) return streamNotFound();
    if (!this.isPresent(packageName)) return fail(403, "NOT_A_VIEWER", "App is not viewing the stream");
    const unsupported = outputsRefusal(record.ingestProtocol);
    if (unsupported) return unsupported;
    if (this.store.activeCount() >= MAX_OUTPUTS_PER_STREAM) {
      return fail(409, "MAX_OUTPUTS_REACHED", `Maximum outputs per stream reached (${MAX_OUTPUTS_PER_STREAM})`);
    }
    if (this.store.isDuplicate(url.normalized)) {
      // The per-app cap is checked before the duplicate, so ask the ledger which error applies.
      const count = await this.s.env.APPS.getByName(packageName).outputCount();
      return count >= MAX_OUTPUTS_PER_APP ? appCapReached() : duplicate();
    }

    // Reserve the stream slot and the URL now, before any await.
    const outputId = nanoid();
    this.store.reserve(outputId, packageName, url, name, clock.now());
    // If this object dies mid-create, the reconcile timer settles the pending row (adopt or delete).
    this.scheduleReconcile();
    await this.s.schedule.arm();
    this.inflight.add(outputId);
    try {
      return await this.createReserved(outputId, packageName, record.liveInputUid, url);
    } finally {
      this.inflight.delete(outputId);
    }
  }

  private async createReserved(outputId: string, packageName: string, liveInputUid: string, url: ParsedRtmpUrl): Promise<Result<AddedOutput>> {
    let reserved: boolean;
    try {
      reserved = await this.s.env.APPS.getByName(packageName).reserveOutput(this.s.store.get()!.streamId, outputId);
    } catch {
      this.store.delete(outputId);
      return fail(503, "SERVICE_UNAVAILABLE", "Could not reach the app's output ledger; retry shortly", 1);
    }
    if (!reserved) {
      this.store.delete(outputId);
      return appCapReached();
    }
    if (this.s.store.get()?.phase !== "running") return this.giveUp(outputId, packageName, streamNotFound());

    // Cloudflare allows 10 outputs per input, and a removal it has not confirmed may still hold one of
    // them: finish those first, so an accepted removal never refuses the add that takes its place.
    if (this.store.all().length > MAX_OUTPUTS_PER_STREAM) await this.finishRemovals(liveInputUid);
    const created = await this.createSettled(liveInputUid, url);
    if (!created.ok) return this.giveUp(outputId, packageName, created.failure.toFailure());

    if (this.s.store.get()?.phase !== "running") {
      // The stream stopped meanwhile and its cleanup may have listed outputs before ours existed.
      await this.s.api.deleteOutput(liveInputUid, created.output.uid).catch(() => undefined);
      return this.giveUp(outputId, packageName, streamNotFound());
    }
    this.store.created(outputId, created.output.uid, created.output.enabled);
    this.ledger.queue(outputId, packageName, "commit");
    await this.ledger.flush();
    return { ok: true, outputId };
  }

  /**
   * Creates the output at Cloudflare and knows the outcome. A lost answer is settled by listing: an
   * output with our URL and key that no row claims is ours (adopted). If none is there, one more
   * create is sent; an ambiguous create always leaves a tombstone, so a first attempt that lands late
   * is deleted rather than restreaming twice.
   */
  private async createSettled(liveInputUid: string, url: ParsedRtmpUrl): Promise<{ ok: true; output: RemoteOutput } | { ok: false; failure: CloudflareCallError }> {
    let last: CloudflareCallError | null = null;
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        return { ok: true, output: await this.s.api.createOutput(liveInputUid, { url: url.server, streamKey: url.streamKey, enabled: true }) };
      } catch (error) {
        const firstLoss = last === null;
        last = toCloudflareError(error);
        if (last.definitelyNotApplied) break;
        // One tombstone per add: it watches for every late attempt with this URL and key.
        if (firstLoss) {
          this.tombstones.add({ kind: "output", liveInputUid, server: url.server, streamKey: url.streamKey });
          await this.s.schedule.arm();
        }
        const found = await this.findUnclaimed(liveInputUid, url.server, url.streamKey).catch(() => null);
        if (found) return { ok: true, output: found };
      }
    }
    return { ok: false, failure: last! };
  }

  private async finishRemovals(liveInputUid: string): Promise<void> {
    for (const row of this.store.all().filter((r) => r.state === "deleting" && !this.inflight.has(r.output_id))) {
      try {
        if (row.cf_uid) await this.s.api.deleteOutput(liveInputUid, row.cf_uid);
        this.store.delete(row.output_id);
        this.ledger.queue(row.output_id, row.added_by, "release");
      } catch {
        // Still unconfirmed: the reconcile timer goes on trying; Cloudflare may refuse the add (502).
      }
    }
  }

  private async findUnclaimed(liveInputUid: string, server: string, streamKey: string): Promise<RemoteOutput | null> {
    const remote = await this.s.api.listOutputs(liveInputUid, "user");
    const claimed = new Set(this.store.all().map((r) => r.cf_uid).filter(Boolean));
    return remote.find((o) => !claimed.has(o.uid) && o.url === server && o.streamKey === streamKey) ?? null;
  }

  private async giveUp(outputId: string, packageName: string, failure: Failure): Promise<Failure> {
    this.store.delete(outputId);
    this.ledger.queue(outputId, packageName, "release");
    await this.ledger.flush();
    return failure;
  }

  // ── Remove / enable ──────────────────────────────────────────────────────────────────────────

  async remove(packageName: string, outputId: string): Promise<Result<Removal>> {
    const record = this.s.store.get();
    if (!record) return streamNotFound();
    const row = this.store.get(outputId);
    if (!row || row.state !== "ready") return outputNotFound();
    if (row.added_by !== packageName) return fail(403, "NOT_AUTHORIZED", "App did not add this output");
    // Claimed synchronously, so a concurrent delete of the same output gets 404 instead of a double call;
    // the reconcile timer finishes the delete if this object dies during the Cloudflare call.
    this.store.markDeleting(row);
    this.scheduleReconcile();
    await this.s.schedule.arm();
    this.inflight.add(outputId);
    try {
      if (row.cf_uid && record.liveInputUid) await this.s.api.deleteOutput(record.liveInputUid, row.cf_uid);
    } catch (error) {
      const failure = toCloudflareError(error);
      if (failure.definitelyNotApplied) {
        // Cloudflare refused: the output is still there and still ours.
        // (Its URL back too, unless a concurrent add took it meanwhile.)
        this.store.deleteRefused(row);
        return failure.toFailure();
      }
      // Unconfirmed: the removal stands (the row holds no slot and no URL) and the reconcile timer finishes it.
      this.ledger.queue(outputId, packageName, "release");
      await this.ledger.flush();
      return { ok: true, pending: true };
    } finally {
      this.inflight.delete(outputId);
    }
    this.store.delete(outputId);
    this.ledger.queue(outputId, packageName, "release");
    await this.ledger.flush();
    return { ok: true, pending: false };
  }

  async setEnabled(packageName: string, outputId: string, enabled: boolean): Promise<Result<object>> {
    const record = this.s.store.get();
    if (!record) return streamNotFound();
    const row = this.store.get(outputId);
    if (!row || row.state !== "ready") return outputNotFound();
    if (row.added_by !== packageName) return fail(403, "NOT_AUTHORIZED", "App did not add this output");
    if (!row.cf_uid || !record.liveInputUid || record.phase !== "running") return outputNotFound();
    this.flagChanges += 1;
    try {
      await this.s.api.setOutputEnabled(record.liveInputUid, row.cf_uid, enabled);
    } catch (error) {
      const failure = toCloudflareError(error);
      // Unconfirmed: the flag may still change at Cloudflare; the reconcile timer reads it back soon.
      if (!failure.definitelyNotApplied) {
        this.scheduleReconcile();
        await this.s.schedule.arm();
      }
      return failure.toFailure();
    } finally {
      this.flagChanges += 1;
    }
    if (this.store.get(outputId)) this.store.setEnabled(outputId, enabled);
    return { ok: true };
  }

  /** Taken before a listing of Cloudflare's outputs is requested, for flagsSettledSince. */
  flagMark(): number {
    return this.flagChanges;
  }

  /**
   * Whether a listing requested at `mark` still speaks for the enabled flags: no flag change of ours
   * started or ended while it was on its way (else its flag may predate what that change wrote, and
   * the change's own answer, or the reconcile its lost answer schedules, settles the flag instead).
   */
  flagsSettledSince(mark: number): boolean {
    return this.flagChanges === mark;
  }

  // ── Reconcile ────────────────────────────────────────────────────────────────────────────────

  /**
   * Settles what a crash or a lost answer left behind, against Cloudflare's own list: `pending` rows
   * are adopted (Cloudflare has the output) or dropped; `deleting` rows are finished; enabled flags are
   * taken from Cloudflare; outputs at Cloudflare that no row claims are deleted.
   */
  async reconcile(): Promise<void> {
    const record = this.s.store.get();
    if (!record?.liveInputUid || record.phase !== "running") return;
    const liveInputUid = record.liveInputUid;
    const flagMark = this.flagMark();
    const remote = await this.listOutputsOfInput(liveInputUid);
    const claimed = new Set(this.store.all().map((r) => r.cf_uid).filter(Boolean));
    for (const row of this.store.all()) {
      if (this.inflight.has(row.output_id)) continue;
      if (row.state === "pending") {
        const match = remote.find((o) => !claimed.has(o.uid) && o.url === row.server && o.streamKey === row.stream_key);
        if (match) {
          claimed.add(match.uid);
          this.store.adopted(row.output_id, match.uid);
          this.ledger.queue(row.output_id, row.added_by, "commit");
        } else {
          this.store.delete(row.output_id);
          this.ledger.queue(row.output_id, row.added_by, "release");
        }
      } else if (row.state === "deleting") {
        if (row.cf_uid && remote.some((o) => o.uid === row.cf_uid)) await this.s.api.deleteOutput(liveInputUid, row.cf_uid, "cleanup");
        this.store.delete(row.output_id);
        this.ledger.queue(row.output_id, row.added_by, "release");
      } else {
        const found = remote.find((o) => o.uid === row.cf_uid);
        if (found && found.enabled !== (row.enabled === 1) && this.flagsSettledSince(flagMark)) this.store.setEnabled(row.output_id, found.enabled);
      }
    }
    if (this.inflight.size === 0) {
      const stillClaimed = new Set(this.store.all().map((r) => r.cf_uid).filter(Boolean));
      for (const orphan of remote.filter((o) => !stillClaimed.has(o.uid))) {
        await this.s.api.deleteOutput(liveInputUid, orphan.uid, "cleanup");
      }
    } else {
      // Work still in flight: look again later, so a crash during it is settled too.
      this.scheduleReconcile();
    }
    await this.ledger.flush();
  }

  /**
   * Cloudflare's outputs of the input. An input gone at Cloudflare (deleted behind our back) has none:
   * its 404 is an answer, so the rows settle against an empty list instead of the timer retrying forever.
   */
  private async listOutputsOfInput(liveInputUid: string): Promise<RemoteOutput[]> {
    try {
      return await this.s.api.listOutputs(liveInputUid, "cleanup");
    } catch (error) {
      if (error instanceof CloudflareCallError && error.upstreamStatus === 404) return [];
      throw error;
    }
  }

  /** Reconcile within one interval (the promise that an unsettled row is settled within RECONCILE_SECONDS). */
  scheduleReconcile(after = this.s.config.reconcileSeconds * 1000): void {
    this.s.schedule.setEarliest(OUTPUT_RECONCILE_TIMER, clock.now() + after);
  }

  /** What the tombstones must not touch: outputs our rows claim, and URLs with work in progress. */
  claims(): { outputUids: Set<string>; busyOutputs: Set<string> } {
    const rows = this.store.all();
    return {
      outputUids: new Set(rows.map((r) => r.cf_uid).filter((uid): uid is string => Boolean(uid))),
      busyOutputs: new Set(rows.filter((r) => r.state === "pending").map((r) => outputKey(r.server, r.stream_key))),
    };
  }

  // ── Sync hooks ───────────────────────────────────────────────────────────────────────────────

  /** At stop, after Cloudflare's outputs are gone: drop our rows and release every ledger slot. */
  async releaseAll(): Promise<void> {
    for (const row of this.store.all()) {
      this.store.delete(row.output_id);
      this.ledger.queue(row.output_id, row.added_by, "release");
    }
    await this.ledger.flush();
  }

  flushLedger(): Promise<void> {
    return this.ledger.flush();
  }
}

function outputNotFound(): Failure {
  return fail(404, "OUTPUT_NOT_FOUND", "Output ID not found");
}
function appCapReached(): Failure {
  return fail(409, "MAX_APP_OUTPUTS_REACHED", `Maximum outputs per app reached (${MAX_OUTPUTS_PER_APP})`);
}
function duplicate(): Failure {
  return fail(409, "DUPLICATE_URL", "URL already exists as output");
}
