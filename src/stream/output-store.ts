import type { ParsedRtmpUrl } from "../outputs/rtmp-url";
import type { Sql } from "./sql";

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
  /** pending: create in flight or unsettled · ready · deleting: removal accepted, not yet confirmed. */
  state: "pending" | "ready" | "deleting";
  enabled: number;
  error: string | null;
  created_at: number;
}

/**
 * The `outputs` table: one row per restream output of the stream, from the reservation (`pending`, made
 * before any await) to its removal. `normalized_url` is UNIQUE, so the URL is reserved with the row; a row
 * being removed gives its URL up at once. Every statement of outputs.ts is here, with bound parameters.
 */
export class OutputStore {
  constructor(private readonly sql: Sql) {
    sql.run(`CREATE TABLE IF NOT EXISTS outputs (
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
  }

  /** Every row, including pending and deleting ones (for reconciliation and status). */
  all(): OutputRow[] {
    return this.sql.all<OutputRow>(`SELECT * FROM outputs ORDER BY created_at, output_id`);
  }

  /** The outputs apps see: a removal that was accepted is gone for them already. */
  visible(): OutputRow[] {
    return this.all().filter((r) => r.state !== "deleting");
  }

  get(outputId: string): OutputRow | null {
    return this.sql.one<OutputRow>(`SELECT * FROM outputs WHERE output_id = ?`, outputId);
  }

  /** Rows holding a slot of the stream's cap: an accepted removal holds none. */
  activeCount(): number {
    return this.sql.one<{ n: number }>(`SELECT COUNT(*) AS n FROM outputs WHERE state != 'deleting'`)!.n;
  }

  isDuplicate(normalized: string): boolean {
    return this.sql.one(`SELECT 1 AS y FROM outputs WHERE normalized_url = ?`, normalized) !== null;
  }

  /** The stream slot and the URL, taken for an add before its first await. */
  reserve(outputId: string, packageName: string, url: ParsedRtmpUrl, name: string | null, now: number): void {
    this.sql.run(
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
      now,
    );
  }

  /** Cloudflare created it (our create's answer). */
  created(outputId: string, cfUid: string, enabled: boolean): void {
    this.sql.run(`UPDATE outputs SET cf_uid = ?, state = 'ready', error = NULL, enabled = ? WHERE output_id = ?`, cfUid, enabled ? 1 : 0, outputId);
  }

  /** A pending row the reconcile found at Cloudflare. */
  adopted(outputId: string, cfUid: string): void {
    this.sql.run(`UPDATE outputs SET cf_uid = ?, state = 'ready' WHERE output_id = ?`, cfUid, outputId);
  }

  /** A row being removed releases its URL at once (it may be added again), keeping its server and key. */
  markDeleting(row: OutputRow): void {
    this.sql.run(`UPDATE outputs SET state = 'deleting', normalized_url = ? WHERE output_id = ?`, `deleting:${row.output_id}`, row.output_id);
  }

  /** Cloudflare refused the delete: the row is ready again, with its URL back unless a concurrent add took it. */
  deleteRefused(row: OutputRow): void {
    this.sql.run(
      `UPDATE outputs SET state = 'ready',
         normalized_url = CASE WHEN EXISTS (SELECT 1 FROM outputs WHERE normalized_url = ?1) THEN normalized_url ELSE ?1 END
       WHERE output_id = ?2`,
      row.normalized_url,
      row.output_id,
    );
  }

  /** Sets or clears an output's error; false when nothing changed. */
  setError(outputId: string, error: string | null): boolean {
    const row = this.get(outputId);
    if (!row || row.error === error) return false;
    this.sql.run(`UPDATE outputs SET error = ? WHERE output_id = ?`, error, outputId);
    return true;
  }

  setEnabled(outputId: string, enabled: boolean): void {
    this.sql.run(`UPDATE outputs SET enabled = ? WHERE output_id = ?`, enabled ? 1 : 0, outputId);
  }

  delete(outputId: string): void {
    this.sql.run(`DELETE FROM outputs WHERE output_id = ?`, outputId);
  }
}
