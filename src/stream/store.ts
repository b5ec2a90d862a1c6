import type { IngestProtocol } from "../cloudflare/playback";
import type { IngestCredentials, RecordingSettings } from "../cloudflare/stream-api";
import type { Sql } from "./sql";
import type { DeviceCondition, IngestState, Phase, StreamStatus } from "./status";
import { clock } from "../clock";

/** Durable state of one stream: a single `stream` row plus the apps that joined it. */
export interface StreamRecord {
  streamId: string;
  userId: string;
  createdBy: string;
  phase: Phase;
  status: StreamStatus;
  message: string;
  liveInputUid: string | null;
  /** How the glasses publish, chosen at creation (never changes). */
  ingestProtocol: IngestProtocol;
  ingest: IngestCredentials | null;
  ingestState: IngestState;
  everConnected: boolean;
  device: DeviceCondition;
  deviceDetail: string | null;
  inputError: string | null;
  recording: RecordingSettings;
  deleteRecordingAfterDays: number | null;
  createdAt: number;
  updatedAt: number;
  stoppedAt: number | null;
}

interface StreamRow {
  stream_id: string;
  user_id: string;
  created_by: string;
  phase: Phase;
  status: StreamStatus;
  message: string;
  live_input_uid: string | null;
  ingest_protocol: IngestProtocol;
  ingest: string | null;
  ingest_state: IngestState;
  ever_connected: number;
  device: DeviceCondition;
  device_detail: string | null;
  input_error: string | null;
  recording: string;
  delete_recording_after_days: number | null;
  created_at: number;
  updated_at: number;
  stopped_at: number | null;
}

export class StreamStore {
  constructor(private readonly sql: Sql) {
    sql.run(`CREATE TABLE IF NOT EXISTS stream (
      id INTEGER PRIMARY KEY CHECK (id = 1),
      stream_id TEXT NOT NULL,
      user_id TEXT NOT NULL,
      created_by TEXT NOT NULL,
      phase TEXT NOT NULL,
      status TEXT NOT NULL,
      message TEXT NOT NULL,
      live_input_uid TEXT,
      ingest TEXT,
      ingest_state TEXT NOT NULL DEFAULT 'idle',
      ever_connected INTEGER NOT NULL DEFAULT 0,
      device TEXT NOT NULL DEFAULT 'ok',
      device_detail TEXT,
      input_error TEXT,
      recording TEXT NOT NULL,
      delete_recording_after_days INTEGER,
      created_at INTEGER NOT NULL,
      updated_at INTEGER NOT NULL,
      stopped_at INTEGER,
      ingest_protocol TEXT NOT NULL DEFAULT 'rtmp'
    )`);
    // Added with the ingest choice; a stream created before it was RTMP(S).
    if (!sql.all<{ name: string }>(`PRAGMA table_info(stream)`).some((c) => c.name === "ingest_protocol")) {
      sql.run(`ALTER TABLE stream ADD COLUMN ingest_protocol TEXT NOT NULL DEFAULT 'rtmp'`);
    }
    sql.run(`CREATE TABLE IF NOT EXISTS participants (
      package_name TEXT PRIMARY KEY,
      joined_at INTEGER NOT NULL
    )`);
  }

  get(): StreamRecord | null {
    const row = this.sql.one<StreamRow>(`SELECT * FROM stream WHERE id = 1`);
    return row ? fromRow(row) : null;
  }

  insert(record: StreamRecord): void {
    this.sql.run(
      `INSERT INTO stream (id, stream_id, user_id, created_by, phase, status, message, live_input_uid, ingest,
         ingest_state, ever_connected, device, device_detail, input_error, recording, delete_recording_after_days,
         created_at, updated_at, stopped_at, ingest_protocol)
       VALUES (1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      record.streamId,
      record.userId,
      record.createdBy,
      record.phase,
      record.status,
      record.message,
      record.liveInputUid,
      record.ingest ? JSON.stringify(record.ingest) : null,
      record.ingestState,
      record.everConnected ? 1 : 0,
      record.device,
      record.deviceDetail,
      record.inputError,
      JSON.stringify(record.recording),
      record.deleteRecordingAfterDays,
      record.createdAt,
      record.updatedAt,
      record.stoppedAt,
      record.ingestProtocol,
    );
  }

  /** Writes the changed fields of the single stream row. */
  update(patch: Partial<Omit<StreamRecord, "streamId" | "userId" | "createdBy" | "createdAt" | "ingestProtocol">>): void {
    const columns: Record<string, string | number | null> = {};
    for (const [key, value] of Object.entries(patch)) {
      const column = COLUMN[key as keyof typeof COLUMN];
      if (!column) continue;
      columns[column] =
        key === "ingest" || key === "recording"
          ? value === null ? null : JSON.stringify(value)
          : typeof value === "boolean" ? (value ? 1 : 0) : (value as string | number | null);
    }
    columns.updated_at = patch.updatedAt ?? clock.now();
    const names = Object.keys(columns);
    this.sql.run(`UPDATE stream SET ${names.map((n) => `${n} = ?`).join(", ")} WHERE id = 1`, ...names.map((n) => columns[n]!));
  }

  /** True when the app was not a participant before (its join is then reported to its account). */
  addParticipant(packageName: string, now: number): boolean {
    return this.sql.run(`INSERT OR IGNORE INTO participants (package_name, joined_at) VALUES (?, ?)`, packageName, now) > 0;
  }

  participants(): string[] {
    return this.sql.all<{ package_name: string }>(`SELECT package_name FROM participants ORDER BY joined_at, package_name`).map((r) => r.package_name);
  }

  isParticipant(packageName: string): boolean {
    return this.sql.one(`SELECT 1 AS yes FROM participants WHERE package_name = ?`, packageName) !== null;
  }
}

// Column names are fixed here, never taken from input.
const COLUMN = {
  phase: "phase",
  status: "status",
  message: "message",
  liveInputUid: "live_input_uid",
  ingest: "ingest",
  ingestState: "ingest_state",
  everConnected: "ever_connected",
  device: "device",
  deviceDetail: "device_detail",
  inputError: "input_error",
  recording: "recording",
  deleteRecordingAfterDays: "delete_recording_after_days",
  updatedAt: "updated_at",
  stoppedAt: "stopped_at",
} as const;

function fromRow(row: StreamRow): StreamRecord {
  return {
    streamId: row.stream_id,
    userId: row.user_id,
    createdBy: row.created_by,
    phase: row.phase,
    status: row.status,
    message: row.message,
    liveInputUid: row.live_input_uid,
    ingestProtocol: row.ingest_protocol,
    ingest: row.ingest ? (JSON.parse(row.ingest) as IngestCredentials) : null,
    ingestState: row.ingest_state,
    everConnected: row.ever_connected === 1,
    device: row.device,
    deviceDetail: row.device_detail,
    inputError: row.input_error,
    recording: JSON.parse(row.recording) as RecordingSettings,
    deleteRecordingAfterDays: row.delete_recording_after_days,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    stoppedAt: row.stopped_at,
  };
}
