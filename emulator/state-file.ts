// Node only: the emulator's durable state in a directory (EMULATOR_STATE_DIR), so a restart (Ctrl-C, a
// crash, SIGKILL) resumes with the same live inputs and outputs. The snapshot (emulator-state.json) is
// rewritten atomically (temp file + rename) after every change, before the change's HTTP answer is sent;
// the call log is appended line by line (emulator-calls.jsonl). A file that cannot be read or parsed is
// moved aside and the emulator starts empty: a bad file must never keep it from starting.

import { appendFileSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import path from "node:path";
import { z } from "zod";
import type { EmulatorObserver, StreamEmulator } from "./core.ts";
import { SNAPSHOT_VERSION, type Snapshot } from "./snapshot.ts";
import type { CallRecord } from "./types.ts";

export const STATE_FILE = "emulator-state.json";
export const CALLS_FILE = "emulator-calls.jsonl";
const MAX_CALL_LINES = 50_000; // as core's call log; the file is compacted past twice that

const statusEntry = z.object({
  state: z.enum(["connected", "disconnected"]),
  reason: z.string().nullable(),
  statusEnteredAt: z.string(),
  statusLastSeen: z.string(),
});

const liveInput = z.object({
  uid: z.string().min(1),
  streamKey: z.string().min(1),
  playbackStreamKey: z.string(),
  srtStreamId: z.string(),
  srtPassphrase: z.string(),
  srtPlaybackStreamId: z.string(),
  srtPlaybackPassphrase: z.string(),
  webRtcSecret: z.string(),
  meta: z.record(z.string(), z.unknown()),
  recording: z.object({
    mode: z.enum(["off", "automatic"]),
    timeoutSeconds: z.number(),
    requireSignedURLs: z.boolean(),
    allowedOrigins: z.array(z.string()).nullable(),
    hideLiveViewerCount: z.boolean(),
  }),
  deleteRecordingAfterDays: z.number().nullable(),
  enabled: z.boolean(),
  preferLowLatency: z.boolean(),
  defaultCreator: z.string().nullable(),
  created: z.string(),
  modified: z.string(),
  // Absent in files written before rotate_keys existed.
  keysRotatedAt: z.string().nullable().default(null),
  connected: z.boolean(),
  statusHistory: z.array(statusEntry),
  outputs: z.array(z.string()),
});

const config = z.object({
  apiToken: z.string(),
  accountId: z.string(),
  rtmpIngestUrl: z.string(),
  srtIngestUrl: z.string(),
  publicBaseUrl: z.string(),
  rateLimitRequests: z.number().int().positive(),
  rateLimitWindowSeconds: z.number().int().positive(),
  rateLimitBlockSeconds: z.number().int().positive(),
  maxLiveInputs: z.number().int().nonnegative(),
  webhookUrl: z.string().nullable(),
  webhookSecret: z.string(),
  statusShape: z.enum(["object", "string"]),
  // Absent in files written before the Notifications API existed in the emulator.
  verifyWebhookDestinations: z.boolean().default(true),
  // Absent in files written before the emulator kept videos.
  videoReadyDelaySeconds: z.number().nonnegative().default(10),
  defaultRecordingTimeoutSeconds: z.number().nonnegative().default(0),
  storageMinutesLimit: z.number().nonnegative().default(100_000),
});

const video = z.object({
  uid: z.string().min(1),
  liveInput: z.string(),
  creator: z.string().nullable(),
  meta: z.record(z.string(), z.unknown()),
  created: z.number(),
  modified: z.number(),
  state: z.enum(["live-inprogress", "inprogress", "ready", "error"]),
  sessions: z.array(z.object({ start: z.number(), end: z.number().nullable() })),
  timeoutSeconds: z.number(),
  deleteAfterDays: z.number().nullable(),
  requireSignedURLs: z.boolean(),
  allowedOrigins: z.array(z.string()),
  endedAt: z.number().nullable(),
  readyAt: z.number().nullable(),
  scheduledDeletion: z.number().nullable(),
  error: z.object({ code: z.string(), text: z.string() }).nullable(),
  media: z
    .object({ durationSeconds: z.number().optional(), sizeBytes: z.number().optional(), width: z.number().optional(), height: z.number().optional() })
    .nullable(),
});

const destination = z.object({
  id: z.string().min(1),
  name: z.string(),
  url: z.string(),
  secret: z.string().nullable(),
  createdAt: z.string(),
  lastSuccess: z.string().nullable(),
  lastFailure: z.string().nullable(),
});

const policy = z.object({
  id: z.string().min(1),
  name: z.string(),
  description: z.string(),
  alertType: z.string(),
  enabled: z.boolean(),
  mechanisms: z.record(z.string(), z.array(z.object({ id: z.string() }))),
  filters: z.record(z.string(), z.array(z.string())),
  alertInterval: z.string().nullable(),
  created: z.string(),
  modified: z.string(),
});

const snapshotSchema = z.object({
  version: z.literal(SNAPSHOT_VERSION),
  savedAt: z.string(),
  config,
  startupConfig: config,
  inputs: z.array(liveInput),
  outputs: z.array(z.object({ uid: z.string().min(1), inputUid: z.string(), url: z.string(), streamKey: z.string(), enabled: z.boolean() })),
  idempotency: z.array(z.object({ key: z.string(), uid: z.string(), expiresAt: z.number() })),
  alerting: z.object({ destinations: z.array(destination), policies: z.array(policy) }).optional(),
  videos: z.array(video).optional(),
  videoWebhook: z.object({ notificationUrl: z.string(), secret: z.string(), modified: z.number() }).nullable().optional(),
});

const callRecord = z.object({
  method: z.string(),
  path: z.string(),
  status: z.number(),
  time: z.string(),
  durationMs: z.number(),
  fault: z.string().optional(),
});

export interface LoadResult {
  inputs: number;
  outputs: number;
  /** Inputs that were connected before the restart (now disconnected). */
  disconnected: string[];
}

/** Persists a StreamEmulator to a directory; install with `emulator.observer = stateFile`. */
export class StateFile implements EmulatorObserver {
  readonly statePath: string;
  readonly callsPath: string;
  private dirty = false;
  private scheduled = false;
  private callLines = 0;
  private writeFailing = false;

  constructor(
    readonly dir: string,
    private readonly emulator: StreamEmulator,
    private readonly log: (line: string) => void = (line) => console.error(line),
  ) {
    mkdirSync(dir, { recursive: true });
    this.statePath = path.join(dir, STATE_FILE);
    this.callsPath = path.join(dir, CALLS_FILE);
  }

  /** Restores the emulator from the directory (nothing there: starts empty) and writes the result back. */
  load(): LoadResult {
    const snapshot = this.readSnapshot();
    const calls = this.readCalls();
    let disconnected: string[] = [];
    if (snapshot) disconnected = this.emulator.restore(snapshot, calls);
    // Rewrite both: inputs that were connected are now disconnected, and the call log is compacted.
    this.writeCalls(snapshot ? calls.slice(-MAX_CALL_LINES) : []);
    this.dirty = true;
    this.flush();
    return { inputs: snapshot?.inputs.length ?? 0, outputs: snapshot?.outputs.length ?? 0, disconnected };
  }

  changed(): void {
    this.dirty = true;
    // Changes outside an HTTP request (RTMP connects/disconnects) are written on the next turn; the
    // server flushes before answering a request, so an acknowledged change is always on disk.
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.flush();
    });
  }

  called(call: CallRecord): void {
    this.guard(() => appendFileSync(this.callsPath, `${JSON.stringify(call)}\n`));
    if (++this.callLines > 2 * MAX_CALL_LINES) this.writeCalls(this.emulator.callLog().slice(-MAX_CALL_LINES));
  }

  callsCleared(): void {
    this.writeCalls([]);
  }

  /** Writes the snapshot if anything changed since the last write. Never throws. */
  flush(): void {
    if (!this.dirty) return;
    this.dirty = false;
    this.guard(() => writeAtomically(this.statePath, JSON.stringify(this.emulator.snapshotForDisk())));
  }

  private readSnapshot(): Snapshot | null {
    let text: string;
    try {
      text = readFileSync(this.statePath, "utf8");
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return null;
      this.moveAside(`cannot be read (${(e as Error).message})`);
      return null;
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (e) {
      this.moveAside(`is not valid JSON (${(e as Error).message})`);
      return null;
    }
    const result = snapshotSchema.safeParse(parsed);
    if (!result.success) {
      const issue = result.error.issues[0];
      this.moveAside(`is not an emulator state file of version ${SNAPSHOT_VERSION} (${issue?.path.join(".") || "root"}: ${issue?.message})`);
      return null;
    }
    return result.data as Snapshot;
  }

  /** The call log; lines that do not parse (e.g. cut short by a crash) are skipped. */
  private readCalls(): CallRecord[] {
    let text = "";
    try {
      text = readFileSync(this.callsPath, "utf8");
    } catch {
      return [];
    }
    const calls: CallRecord[] = [];
    for (const line of text.split("\n")) {
      if (!line) continue;
      try {
        const call = callRecord.safeParse(JSON.parse(line));
        if (call.success) calls.push(call.data);
      } catch {
        // a torn last line
      }
    }
    return calls;
  }

  private writeCalls(calls: CallRecord[]): void {
    this.callLines = calls.length;
    this.guard(() => writeAtomically(this.callsPath, calls.map((c) => `${JSON.stringify(c)}\n`).join("")));
  }

  private moveAside(problem: string): void {
    const aside = `${this.statePath}.corrupt-${new Date().toISOString().replace(/[:.]/g, "-")}`;
    try {
      renameSync(this.statePath, aside);
      this.log(`stream emulator: state file ${this.statePath} ${problem}; moved it aside to ${aside} and starting empty`);
    } catch (e) {
      this.log(`stream emulator: state file ${this.statePath} ${problem}; could not move it aside (${(e as Error).message}); starting empty`);
    }
  }

  /** Disk trouble is logged (once per run of failures), never thrown into a request. */
  private guard(write: () => void): void {
    try {
      write();
      this.writeFailing = false;
    } catch (e) {
      if (!this.writeFailing) this.log(`stream emulator: cannot write state to ${this.dir}: ${(e as Error).message}`);
      this.writeFailing = true;
    }
  }
}

function writeAtomically(file: string, text: string): void {
  const temp = `${file}.tmp-${process.pid}`;
  writeFileSync(temp, text);
  renameSync(temp, file);
}
