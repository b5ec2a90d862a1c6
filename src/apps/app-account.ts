import { DurableObject } from "cloudflare:workers";
import type { Env } from "../env";
import { fail, type Result } from "../http/errors";
import { Sql } from "../stream/sql";
import { hashKey, keyMatches, newApiKey } from "./credentials";
import { OutputLedger, PENDING_RECONCILE_AFTER_MS } from "./output-ledger";
import { AppStreamIndex, type AppStreamEntry, type ListPosition } from "./app-streams";
import { clock } from "../clock";

/**
 * One object per app (keyed by package name): its credentials and its per-app limits. Keeping both
 * here means authenticating an app and counting its usage never needs a global table.
 */
export class AppAccount extends DurableObject<Env> {
  private readonly sql: Sql;
  private readonly ledger: OutputLedger;
  private readonly streams: AppStreamIndex;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = new Sql(ctx.storage.sql);
    this.sql.run(`CREATE TABLE IF NOT EXISTS account (
      id INTEGER PRIMARY KEY CHECK (id = 1),
      package_name TEXT NOT NULL,
      key_salt TEXT NOT NULL,
      key_hash TEXT NOT NULL,
      created_at INTEGER NOT NULL,
      rotated_at INTEGER
    )`);
    this.sql.run(`CREATE TABLE IF NOT EXISTS stream_starts (at INTEGER NOT NULL)`);
    this.ledger = new OutputLedger(this.sql);
    this.streams = new AppStreamIndex(this.sql);
  }

  async register(packageName: string): Promise<Result<{ apiKey: string }>> {
    if (this.account()) return fail(409, "APP_EXISTS", `App ${packageName} is already registered`);
    const apiKey = newApiKey();
    const stored = await hashKey(apiKey);
    // Re-check after the await: a concurrent register may have won.
    if (this.account()) return fail(409, "APP_EXISTS", `App ${packageName} is already registered`);
    this.sql.run(
      `INSERT INTO account (id, package_name, key_salt, key_hash, created_at) VALUES (1, ?, ?, ?, ?)`,
      packageName,
      stored.salt,
      stored.hash,
      clock.now(),
    );
    return { ok: true, apiKey };
  }

  async rotateKey(): Promise<Result<{ apiKey: string }>> {
    if (!this.account()) return appNotFound();
    const apiKey = newApiKey();
    const stored = await hashKey(apiKey);
    const changed = this.sql.run(
      `UPDATE account SET key_salt = ?, key_hash = ?, rotated_at = ? WHERE id = 1`,
      stored.salt,
      stored.hash,
      clock.now(),
    );
    return changed ? { ok: true, apiKey } : appNotFound();
  }

  async remove(): Promise<Result<object>> {
    if (!this.account()) return appNotFound();
    this.sql.run(`DELETE FROM account`);
    this.sql.run(`DELETE FROM stream_starts`);
    return { ok: true };
  }

  async verifyKey(apiKey: string): Promise<boolean> {
    const account = this.account();
    if (!account) return false;
    return keyMatches(apiKey, { salt: account.key_salt, hash: account.key_hash });
  }

  /**
   * Key check and, for a start, the start count in one round trip (the Worker's hot path). The start
   * is counted only when the key is valid.
   */
  async authorize(apiKey: string, streamStartsPerMinute: number | null): Promise<{ valid: boolean; start: Result<object> | null }> {
    if (!(await this.verifyKey(apiKey))) return { valid: false, start: null };
    return { valid: true, start: streamStartsPerMinute === null ? null : await this.consumeStreamStart(streamStartsPerMinute) };
  }

  /** Sliding one-minute window of stream starts (seed 004: 10 per minute per app). */
  async consumeStreamStart(limitPerMinute: number): Promise<Result<object>> {
    const now = clock.now();
    const windowStart = now - 60_000;
    this.sql.run(`DELETE FROM stream_starts WHERE at <= ?`, windowStart);
    const rows = this.sql.all<{ at: number }>(`SELECT at FROM stream_starts ORDER BY at`);
    if (rows.length >= limitPerMinute) {
      const retryAfter = Math.ceil((rows[0]!.at + 60_000 - now) / 1000);
      return fail(429, "RATE_LIMITED", `Too many stream starts: at most ${limitPerMinute} per minute per app`, Math.max(1, retryAfter));
    }
    this.sql.run(`INSERT INTO stream_starts (at) VALUES (?)`, now);
    return { ok: true };
  }

  // ── The streams this app takes part in (GET /api/streams; apps/app-streams.ts) ────────────────

  /** Delivered by each stream's participation outbox: a join, or the stream's end. Idempotent. */
  async recordStreams(entries: AppStreamEntry[]): Promise<void> {
    this.streams.record(entries);
  }

  async listStreams(after: ListPosition | null, limit: number): Promise<{ entries: AppStreamEntry[]; more: boolean }> {
    return this.streams.page(after, limit, clock.now());
  }

  /** Streams a list found gone (purged, or a create that never finished). */
  async forgetStreams(streamIds: string[]): Promise<void> {
    this.streams.forget(streamIds);
  }

  // ── Output ledger (the per-app cap across all streams) ────────────────────────────────────────

  async outputCount(): Promise<number> {
    return this.ledger.count();
  }

  async reserveOutput(streamId: string, outputId: string): Promise<boolean> {
    const reserved = this.ledger.reserve(streamId, outputId, clock.now());
    // Also when refused: stale pending reservations may be what fills the cap.
    await this.armReconcile();
    return reserved;
  }

  async commitOutput(outputId: string): Promise<void> {
    this.ledger.commit(outputId, clock.now());
  }

  async releaseOutput(outputId: string): Promise<void> {
    this.ledger.release(outputId);
  }

  /** Reservations still pending long after their request are settled by asking their stream. */
  override async alarm(): Promise<void> {
    try {
      for (const entry of this.ledger.stalePending(clock.now())) {
        try {
          const exists = await this.env.STREAMS.getByName(entry.stream_id).hasOutput(entry.output_id);
          if (exists === "yes") this.ledger.commit(entry.output_id, clock.now());
          else if (exists === "no") this.ledger.release(entry.output_id);
          // "pending": the stream is still working on it; look again later.
        } catch (error) {
          console.error("ledger reconcile: stream unreachable", error instanceof Error ? error.message : error);
        }
      }
    } finally {
      await this.armReconcile(RECONCILE_RETRY_MS);
    }
  }

  private async armReconcile(minDelayMs = 1_000): Promise<void> {
    const oldest = this.ledger.oldestPendingAt();
    if (oldest === null) await this.ctx.storage.deleteAlarm();
    else await this.ctx.storage.setAlarm(Math.max(clock.now() + minDelayMs, oldest + PENDING_RECONCILE_AFTER_MS));
  }

  private account() {
    return this.sql.one<{ package_name: string; key_salt: string; key_hash: string }>(`SELECT * FROM account WHERE id = 1`);
  }
}

/** After a reconcile pass, pending entries are looked at again no sooner than this. */
const RECONCILE_RETRY_MS = 60_000;

function appNotFound() {
  return fail(404, "APP_NOT_FOUND", "App is not registered");
}
