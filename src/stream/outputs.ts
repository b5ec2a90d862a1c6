import { nanoid } from "nanoid";
import { MAX_OUTPUTS_PER_APP } from "../apps/output-ledger";
import { toCloudflareError, type RemoteOutput } from "../cloudflare/stream-api";
import { fail, type Failure, type Result } from "../http/errors";
import { deriveOutputStatus, type OutputStatus } from "../outputs/output-status";
import type { ParsedRtmpUrl } from "../outputs/rtmp-url";
import type { StreamContext } from "./context";
import { clock } from "../clock";

/**
 * Restream outputs of one stream (seed 002). Every check-and-reserve happens synchronously inside the
 * object before any await, so interleaved requests cannot overshoot a cap or add a duplicate; every
 * Cloudflare failure is reconciled against Cloudflare's own list so nothing is left behind.
 */
export const MAX_OUTPUTS_PER_STREAM = 10;
export const OUTPUT_RECONCILE_TIMER = "outputs-reconcile";
export const LEDGER_OUTBOX_TIMER = "ledger-outbox";
const RECONCILE_AFTER_MS = 60_000;
const IDEMPOTENCY_TTL_MS = 24 * 3_600_000;

export interface OutputRow {
  output_id: string;
  added_by: string;
  url: string;
  normalized_url: string;
  masked_url: string;
  server: string;
  stream_key: string;
  name: string | null;
  cf_uid: string | null;
  state: "pending" | "ready" | "deleting";
  enabled: number;
  error: string | null;
  created_at: number;
}

export interface OutputView {
  outputId: string;
  url: string;
  name: string | null;
  addedBy: string;
  status: OutputStatus;
  error: string | null;
  enabled: boolean;
}

export interface AddedOutput {
  outputId: string;
}

export class Outputs {
  /** Requests in flight per idempotency key, so a concurrent retry waits for the original. */
  private readonly inflightKeys = new Map<string, { request: string; reply: Promise<Result<AddedOutput>> }>();
  /** Output ids whose Cloudflare call is in flight: reconciliation leaves them alone. */
  private readonly inflight = new Set<string>();

  constructor(
    private readonly s: StreamContext,
    private readonly isPresent: (packageName: string) => boolean,
  ) {
    s.sql.run(`CREATE TABLE IF NOT EXISTS outputs (
      output_id TEXT PRIMARY KEY,
      added_by TEXT NOT NULL,
      url TEXT NOT NULL,
      normalized_url TEXT NOT NULL UNIQUE,
      masked_url TEXT NOT NULL,
      server TEXT NOT NULL,
      stream_key TEXT NOT NULL,
      name TEXT,
      cf_uid TEXT,
      state TEXT NOT NULL,
      enabled INTEGER NOT NULL DEFAULT 1,
      error TEXT,
      created_at INTEGER NOT NULL
    )`);
    // Transactional outbox for the per-app ledger: written with the output change, delivered after.
    s.sql.run(`CREATE TABLE IF NOT EXISTS ledger_outbox (
      output_id TEXT PRIMARY KEY,
      package_name TEXT NOT NULL,
      op TEXT NOT NULL
    )`);
    // Replies to requests made with an Idempotency-Key: successes only, with what was asked.
    s.sql.run(`CREATE TABLE IF NOT EXISTS idempotent_adds (
      package_name TEXT NOT NULL,
      key TEXT NOT NULL,
      request TEXT NOT NULL,
      output_id TEXT NOT NULL,
      created_at INTEGER NOT NULL,
      PRIMARY KEY (package_name, key)
    )`);
  }

  rows(): OutputRow[] {
    return this.s.sql.all<OutputRow>(`SELECT * FROM outputs ORDER BY created_at, output_id`);
  }

  row(outputId: string): OutputRow | null {
    return this.s.sql.one<OutputRow>(`SELECT * FROM outputs WHERE output_id = ?`, outputId);
  }

  hasOutput(outputId: string): "yes" | "no" | "pending" {
    const row = this.row(outputId);
    return !row ? "no" : row.state === "pending" ? "pending" : "yes";
  }

  /** How an output looks to `viewer`: the stream key is shown to the app that added it only. */
  view(row: OutputRow, viewer: string | null, ingestStable: boolean, stale: boolean, inputError: string | null): OutputView {
    const { status, error } = deriveOutputStatus({
      pending: row.state === "pending",
      enabled: row.enabled === 1,
      error: row.error ?? inputError,
      ingestStable,
      stale,
    });
    const owner = viewer === row.added_by;
    return {
      outputId: row.output_id,
      url: owner ? row.url : row.masked_url,
      name: row.name,
      addedBy: row.added_by,
      status,
      // Upstream error text (e.g. a relay's last log line) may quote the destination: mask it for others.
      error: error && !owner ? maskSecrets(error, row) : error,
      enabled: row.enabled === 1,
    };
  }

  // ── Add ──────────────────────────────────────────────────────────────────────────────────────

  /**
   * Adds an output; with an idempotency key, a retry of a *successful* add returns the original
   * outputId and creates nothing (failures are not remembered: fixing the cause and retrying works).
   * The same key with a different URL or name is refused.
   */
  async addIdempotent(
    packageName: string,
    url: ParsedRtmpUrl,
    name: string | null,
    idempotencyKey: string | null,
  ): Promise<Result<AddedOutput>> {
    if (!idempotencyKey) return this.add(packageName, url, name);
    const request = JSON.stringify([url.normalized, name]);
    const mapKey = `${packageName}\n${idempotencyKey}`;
    const running = this.inflightKeys.get(mapKey);
    if (running) {
      if (running.request !== request) return keyReused();
      return running.reply;
    }
    const stored = this.s.sql.one<{ request: string; output_id: string }>(
      `SELECT request, output_id FROM idempotent_adds WHERE package_name = ? AND key = ? AND created_at > ?`,
      packageName,
      idempotencyKey,
      clock.now() - IDEMPOTENCY_TTL_MS,
    );
    if (stored) return stored.request === request ? { ok: true, outputId: stored.output_id } : keyReused();

    const reply = this.add(packageName, url, name).then((result) => {
      if (result.ok) {
        this.s.sql.run(`DELETE FROM idempotent_adds WHERE created_at <= ?`, clock.now() - IDEMPOTENCY_TTL_MS);
        this.s.sql.run(
          `INSERT OR REPLACE INTO idempotent_adds (package_name, key, request, output_id, created_at) VALUES (?, ?, ?, ?, ?)`,
          packageName,
          idempotencyKey,
          request,
          result.outputId,
          clock.now(),
        );
      }
      return result;
    });
    this.inflightKeys.set(mapKey, { request, reply });
    try {
      return await reply;
    } finally {
      this.inflightKeys.delete(mapKey);
    }
  }

  /** Validation order (docs/api.md): stream → viewer → per-stream cap → per-app cap → duplicate → Cloudflare. */
  async add(packageName: string, url: ParsedRtmpUrl, name: string | null): Promise<Result<AddedOutput>> {
    const record = this.s.store.get();
    if (!record || record.phase !== "running" || !record.liveInputUid) return streamNotFound();
    if (!this.isPresent(packageName)) return fail(403, "NOT_A_VIEWER", "App is not viewing the stream");
    if (this.activeCount() >= MAX_OUTPUTS_PER_STREAM) {
      return fail(409, "MAX_OUTPUTS_REACHED", `Maximum outputs per stream reached (${MAX_OUTPUTS_PER_STREAM})`);
    }
    const app = this.s.env.APPS.getByName(packageName);
    if (this.isDuplicate(url.normalized)) {
      // The per-app cap is checked before the duplicate, so ask the ledger which error applies.
      const count = await app.outputCount();
      return count >= MAX_OUTPUTS_PER_APP ? appCapReached() : duplicate();
    }

    // Reserve the stream slot and the URL now, before any await.
    const outputId = nanoid();
    this.s.sql.run(
      `INSERT INTO outputs (output_id, added_by, url, normalized_url, masked_url, server, stream_key, name, state, created_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?)`,
      outputId,
      packageName,
      url.original,
      url.normalized,
      url.masked,
      url.server,
      url.streamKey,
      name,
      clock.now(),
    );
    // If this object dies mid-create, the reconcile timer settles the pending row (adopt or delete).
    this.s.schedule.setEarliest(OUTPUT_RECONCILE_TIMER, clock.now() + RECONCILE_AFTER_MS);
    await this.s.schedule.arm();
    this.inflight.add(outputId);
    try {
      return await this.createReserved(outputId, packageName, record.liveInputUid, url);
    } finally {
      this.inflight.delete(outputId);
    }
  }

  private async createReserved(outputId: string, packageName: string, liveInputUid: string, url: ParsedRtmpUrl): Promise<Result<AddedOutput>> {
    const app = this.s.env.APPS.getByName(packageName);
    let reserved: boolean;
    try {
      reserved = await app.reserveOutput(this.streamId(), outputId);
    } catch {
      this.deleteRow(outputId);
      return fail(503, "SERVICE_UNAVAILABLE", "Could not reach the app's output ledger; retry shortly");
    }
    if (!reserved) {
      this.deleteRow(outputId);
      return appCapReached();
    }
    // Check-and-set: the stream may have stopped while we awaited the ledger.
    if (this.s.store.get()?.phase !== "running") {
      this.deleteRow(outputId);
      this.queueLedger(outputId, packageName, "release");
      await this.flushLedger();
      return streamNotFound();
    }

    let created: RemoteOutput;
    try {
      created = await this.s.api.createOutput(liveInputUid, { url: url.server, streamKey: url.streamKey, enabled: true });
    } catch (error) {
      const failure = toCloudflareError(error);
      await this.abandonCreate(outputId, packageName, liveInputUid, url, failure.definitelyNotApplied);
      return failure.toFailure();
    }

    if (this.s.store.get()?.phase !== "running") {
      // The stream stopped meanwhile and its cleanup may have listed outputs before ours existed.
      await this.s.api.deleteOutput(liveInputUid, created.uid).catch(() => undefined);
      this.deleteRow(outputId);
      this.queueLedger(outputId, packageName, "release");
      await this.flushLedger();
      return streamNotFound();
    }
    this.s.sql.run(`UPDATE outputs SET cf_uid = ?, state = 'ready', error = NULL WHERE output_id = ?`, created.uid, outputId);
    this.queueLedger(outputId, packageName, "commit");
    await this.flushLedger();
    return { ok: true, outputId };
  }

  /**
   * After a failed create, Cloudflare may still have made the output (timeout, dropped response).
   * Delete any output of ours that no row claims; if even that fails, keep the row pending and let
   * the reconcile timer settle it.
   */
  private async abandonCreate(
    outputId: string,
    packageName: string,
    liveInputUid: string,
    url: ParsedRtmpUrl,
    definitelyNotApplied: boolean,
  ): Promise<void> {
    try {
      if (!definitelyNotApplied) await this.deleteUnclaimed(liveInputUid, url);
      this.deleteRow(outputId);
      this.queueLedger(outputId, packageName, "release");
      await this.flushLedger();
    } catch {
      this.s.schedule.setEarliest(OUTPUT_RECONCILE_TIMER, clock.now() + RECONCILE_AFTER_MS);
      await this.s.schedule.arm();
    }
  }

  private async deleteUnclaimed(liveInputUid: string, url: ParsedRtmpUrl): Promise<void> {
    const remote = await this.s.api.listOutputs(liveInputUid);
    const claimed = new Set(this.rows().map((r) => r.cf_uid).filter(Boolean));
    for (const output of remote) {
      if (!claimed.has(output.uid) && output.url === url.server && output.streamKey === url.streamKey) {
        await this.s.api.deleteOutput(liveInputUid, output.uid);
      }
    }
  }

  /**
   * Settles what a crash or an ambiguous failure left behind, against Cloudflare's own list:
   * `pending` rows are adopted (Cloudflare has the output) or dropped; `deleting` rows are finished;
   * outputs at Cloudflare that no row claims (a create that landed after we gave up) are deleted.
   */
  async reconcilePending(): Promise<void> {
    const record = this.s.store.get();
    if (!record?.liveInputUid || record.phase !== "running") return;
    const liveInputUid = record.liveInputUid;
    const remote = await this.s.api.listOutputs(liveInputUid, "cleanup");
    const claimed = new Set(this.rows().map((r) => r.cf_uid).filter(Boolean));
    for (const row of this.rows()) {
      if (this.inflight.has(row.output_id)) continue;
      if (row.state === "pending") {
        const match = remote.find((o) => !claimed.has(o.uid) && o.url === row.server && o.streamKey === row.stream_key);
        if (match) {
          claimed.add(match.uid);
          this.s.sql.run(`UPDATE outputs SET cf_uid = ?, state = 'ready' WHERE output_id = ?`, match.uid, row.output_id);
          this.queueLedger(row.output_id, row.added_by, "commit");
        } else {
          this.deleteRow(row.output_id);
          this.queueLedger(row.output_id, row.added_by, "release");
        }
      } else if (row.state === "deleting") {
        if (row.cf_uid && remote.some((o) => o.uid === row.cf_uid)) await this.s.api.deleteOutput(liveInputUid, row.cf_uid, "cleanup");
        this.deleteRow(row.output_id);
        this.queueLedger(row.output_id, row.added_by, "release");
      }
    }
    if (this.inflight.size === 0) {
      const stillClaimed = new Set(this.rows().map((r) => r.cf_uid).filter(Boolean));
      for (const orphan of remote.filter((o) => !stillClaimed.has(o.uid))) {
        await this.s.api.deleteOutput(liveInputUid, orphan.uid, "cleanup");
      }
    } else {
      // Work still in flight: look again later, so a crash during it is settled too.
      this.s.schedule.set(OUTPUT_RECONCILE_TIMER, clock.now() + RECONCILE_AFTER_MS);
    }
    await this.flushLedger();
  }

  // ── Remove / enable ──────────────────────────────────────────────────────────────────────────

  async remove(packageName: string, outputId: string): Promise<Result<object>> {
    const record = this.s.store.get();
    if (!record) return streamNotFound();
    const row = this.row(outputId);
    if (!row || row.state !== "ready") return outputNotFound();
    if (row.added_by !== packageName) return fail(403, "NOT_AUTHORIZED", "App did not add this output");
    // Claimed synchronously, so a concurrent delete of the same output gets 404 instead of a double call;
    // the reconcile timer finishes the delete if this object dies during the Cloudflare call.
    this.s.sql.run(`UPDATE outputs SET state = 'deleting' WHERE output_id = ?`, outputId);
    this.s.schedule.setEarliest(OUTPUT_RECONCILE_TIMER, clock.now() + RECONCILE_AFTER_MS);
    await this.s.schedule.arm();
    this.inflight.add(outputId);
    try {
      if (row.cf_uid && record.liveInputUid) await this.s.api.deleteOutput(record.liveInputUid, row.cf_uid);
    } catch (error) {
      if (this.row(outputId)) this.s.sql.run(`UPDATE outputs SET state = 'ready' WHERE output_id = ?`, outputId);
      return toCloudflareError(error).toFailure();
    } finally {
      this.inflight.delete(outputId);
    }
    this.deleteRow(outputId);
    this.queueLedger(outputId, packageName, "release");
    await this.flushLedger();
    return { ok: true };
  }

  async setEnabled(packageName: string, outputId: string, enabled: boolean): Promise<Result<object>> {
    const record = this.s.store.get();
    if (!record) return streamNotFound();
    const row = this.row(outputId);
    if (!row || row.state !== "ready") return outputNotFound();
    if (row.added_by !== packageName) return fail(403, "NOT_AUTHORIZED", "App did not add this output");
    if (!row.cf_uid || !record.liveInputUid || record.phase !== "running") return outputNotFound();
    try {
      await this.s.api.setOutputEnabled(record.liveInputUid, row.cf_uid, enabled);
    } catch (error) {
      const failure = toCloudflareError(error);
      if (this.row(outputId)) this.s.sql.run(`UPDATE outputs SET error = ? WHERE output_id = ?`, `Could not ${enabled ? "enable" : "disable"} the output: ${failure.message}`, outputId);
      return failure.toFailure();
    }
    if (this.row(outputId)) this.s.sql.run(`UPDATE outputs SET enabled = ?, error = NULL WHERE output_id = ?`, enabled ? 1 : 0, outputId);
    return { ok: true };
  }

  /** Sets or clears an output's error (from sync: missing at Cloudflare, relay error, input errored). */
  setError(outputId: string, error: string | null): boolean {
    const row = this.row(outputId);
    if (!row || row.error === error) return false;
    this.s.sql.run(`UPDATE outputs SET error = ? WHERE output_id = ?`, error, outputId);
    return true;
  }

  setEnabledFlag(outputId: string, enabled: boolean): void {
    this.s.sql.run(`UPDATE outputs SET enabled = ? WHERE output_id = ?`, enabled ? 1 : 0, outputId);
  }

  /** At stop, after Cloudflare's outputs are gone: drop our rows and release every ledger slot. */
  async releaseAll(): Promise<void> {
    for (const row of this.rows()) {
      this.deleteRow(row.output_id);
      this.queueLedger(row.output_id, row.added_by, "release");
    }
    await this.flushLedger();
  }

  // ── Ledger outbox ────────────────────────────────────────────────────────────────────────────

  private queueLedger(outputId: string, packageName: string, op: "commit" | "release"): void {
    this.s.sql.run(
      `INSERT INTO ledger_outbox (output_id, package_name, op) VALUES (?, ?, ?)
       ON CONFLICT(output_id) DO UPDATE SET op = excluded.op`,
      outputId,
      packageName,
      op,
    );
  }

  /** Delivers queued ledger changes; what cannot be delivered now is retried from the alarm. */
  async flushLedger(): Promise<void> {
    const pending = this.s.sql.all<{ output_id: string; package_name: string; op: string }>(`SELECT * FROM ledger_outbox`);
    let failed = false;
    for (const entry of pending) {
      try {
        const app = this.s.env.APPS.getByName(entry.package_name);
        if (entry.op === "commit") await app.commitOutput(entry.output_id);
        else await app.releaseOutput(entry.output_id);
        this.s.sql.run(`DELETE FROM ledger_outbox WHERE output_id = ? AND op = ?`, entry.output_id, entry.op);
      } catch {
        failed = true;
      }
    }
    if (failed) {
      this.s.schedule.setEarliest(LEDGER_OUTBOX_TIMER, clock.now() + 5_000);
      await this.s.schedule.arm();
    }
  }

  // ── Helpers ──────────────────────────────────────────────────────────────────────────────────

  private activeCount(): number {
    return this.s.sql.one<{ n: number }>(`SELECT COUNT(*) AS n FROM outputs`)!.n;
  }

  private isDuplicate(normalized: string): boolean {
    return this.s.sql.one(`SELECT 1 AS y FROM outputs WHERE normalized_url = ?`, normalized) !== null;
  }

  private deleteRow(outputId: string): void {
    this.s.sql.run(`DELETE FROM outputs WHERE output_id = ?`, outputId);
  }

  private streamId(): string {
    return this.s.store.get()!.streamId;
  }
}

function streamNotFound(): Failure {
  return fail(404, "STREAM_NOT_FOUND", "Managed stream not found");
}
function outputNotFound(): Failure {
  return fail(404, "OUTPUT_NOT_FOUND", "Output ID not found");
}
function appCapReached(): Failure {
  return fail(409, "MAX_APP_OUTPUTS_REACHED", `Maximum outputs per app reached (${MAX_OUTPUTS_PER_APP})`);
}
function maskSecrets(text: string, row: OutputRow): string {
  let masked = text.split(row.url).join(row.masked_url);
  if (row.stream_key) masked = masked.split(row.stream_key).join("****");
  const userinfo = /^rtmps?:\/\/([^@/]+)@/i.exec(row.url)?.[1];
  return userinfo ? masked.split(userinfo).join("****") : masked;
}
function keyReused(): Failure {
  return fail(422, "IDEMPOTENCY_KEY_REUSED", "This Idempotency-Key was used for a different request");
}
function duplicate(): Failure {
  return fail(409, "DUPLICATE_URL", "URL already exists as output");
}
