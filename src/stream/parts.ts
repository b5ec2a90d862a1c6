import { streamApiFor } from "../budget/budgeted-api";
import { clock } from "../clock";
import { loadConfig } from "../config";
import type { Env } from "../env";
import { StreamAnalytics } from "./analytics";
import { AppRequests } from "./app-requests";
import { CloudflareFacts } from "./cloudflare-facts";
import { Connections } from "./connections";
import { StreamCreation } from "./creation";
import type { StreamContext } from "./context";
import { DeviceChannel, KEEPALIVE_TIMER } from "./device";
import { InboundGuard } from "./inbound";
import { CREATE_WATCHDOG_TIMER, Lifecycle } from "./lifecycle";
import { OutputRequests } from "./output-requests";
import { Outputs } from "./outputs";
import { ParticipationOutbox } from "./participation-outbox";
import { PRESENCE_AUDIT_TIMER, Presence } from "./presence";
import { StatusPublisher } from "./publisher";
import { REALTIME_AUDIT_TIMER, REALTIME_CLOSE_TIMER, RealtimeCalls } from "./realtime-calls";
import { RecordingAccess } from "./recording-access";
import { Recordings } from "./recordings";
import { Schedule } from "./schedule";
import { Shutdown } from "./shutdown";
import { Sql } from "./sql";
import type { DeviceCondition } from "./status";
import { INGEST_STABLE_TIMER, INPUT_POLL_TIMER, OUTPUTS_POLL_TIMER, StatusSync } from "./status-sync";
import { StreamStore } from "./store";
import { StreamReads } from "./stream-reads";
import { Tombstones, type Claims } from "./tombstones";
import { StreamViews } from "./views";

/** Timers that only mean something while the stream runs; a stop cancels them. */
const RUNNING_TIMERS = [INPUT_POLL_TIMER, OUTPUTS_POLL_TIMER, INGEST_STABLE_TIMER, KEEPALIVE_TIMER, CREATE_WATCHDOG_TIMER, PRESENCE_AUDIT_TIMER, REALTIME_AUDIT_TIMER, REALTIME_CLOSE_TIMER];

/**
 * Every module of one stream object, built once per instance (each wake builds them afresh: nothing here
 * outlives the instance but what the modules keep in storage). The modules reach each other through this.
 */
export interface StreamParts {
  s: StreamContext;
  presence: Presence;
  device: DeviceChannel;
  lifecycle: Lifecycle;
  sync: StatusSync;
  outputs: Outputs;
  outputRequests: OutputRequests;
  tombstones: Tombstones;
  publisher: StatusPublisher;
  shutdown: Shutdown;
  facts: CloudflareFacts;
  views: StreamViews;
  inbound: InboundGuard;
  appRequests: AppRequests;
  /** Reports joins and the stream's end to each participant app's list of streams (GET /api/streams). */
  participation: ParticipationOutbox;
  /** The Realtime SFU room (realtime-calls.ts, realtime-room.ts). */
  room: RealtimeCalls;
  /** Viewers, ingest and watch-link hits over the stream's life (analytics.ts); observed on every push. */
  analytics: StreamAnalytics;
  /** The stream's recordings (Cloudflare videos): captured while live, settled after the end, deleted at retention. */
  recordings: Recordings;
  /** The create and joins, and the create in flight that other calls wait for. */
  creation: StreamCreation;
  /** The sockets: upgrades, messages, closes, an app leaving. */
  connections: Connections;
  /** What callers read: snapshot, list entry, watch view, analytics, device info, the sweep's question. */
  reads: StreamReads;
  /** Who may list and delete the recordings. */
  recordingAccess: RecordingAccess;
  /** Who is present changed (a socket came or went, an app left): re-plan, push, re-arm. */
  afterPresenceChange(now: number, closing?: WebSocket): Promise<void>;
  /** The glasses' condition changed (reported, lost, back). */
  applyDevice(device: DeviceCondition, detail: string | null): void;
  /** What tombstones must leave alone: the input and outputs this stream uses, and work in flight. */
  claims(): Claims;
}

export function assembleStream(ctx: DurableObjectState, env: Env): StreamParts {
  const config = loadConfig(env);
  const sql = new Sql(ctx.storage.sql);
  const s: StreamContext = {
    ctx,
    env,
    config,
    sql,
    store: new StreamStore(sql),
    schedule: new Schedule(sql, ctx.storage),
    api: streamApiFor(env, config),
  };
  // Filled in below; the closures handed to the modules only run after assembly.
  const p = { s, inbound: new InboundGuard() } as StreamParts;
  p.tombstones = new Tombstones(s);
  p.participation = new ParticipationOutbox(s);
  p.recordings = new Recordings(s);
  p.presence = new Presence(s);
  p.room = new RealtimeCalls(s, {
    presentApps: (now) => p.presence.presentApps(now),
    changed: () => (s.store.get()?.phase === "running" ? p.afterPresenceChange(clock.now()) : s.schedule.arm()),
  });
  p.presence.roomViewers = () => p.room.store.viewerApps();
  p.device = new DeviceChannel(s);
  p.lifecycle = new Lifecycle(s, p.tombstones);
  p.outputs = new Outputs(s, p.tombstones, (packageName) => p.presence.presentApps(clock.now()).has(packageName));
  p.facts = new CloudflareFacts(s, {
    outputs: p.outputs,
    presence: p.presence,
    device: p.device,
    recordings: p.recordings,
    sync: () => p.sync,
    publisher: () => p.publisher,
  });
  p.sync = new StatusSync(s, {
    situation: (now) => p.facts.situation(now),
    applyIngest: (state) => p.facts.applyIngest(state),
    outputFlagsMark: () => p.outputs.flagMark(),
    applyRemoteOutputs: (outputs, flagMark) => p.facts.applyRemoteOutputs(outputs, flagMark),
    readFailed: () => p.facts.readFailed(),
    inputLive: (uid) => p.analytics.readLiveViewers(uid),
  });
  p.views = new StreamViews(s, p.presence, p.device, p.outputs, p.sync, () => p.recordings.latest());
  p.analytics = new StreamAnalytics(s, p.presence);
  p.publisher = new StatusPublisher(s, p.views, p.presence, () => p.analytics.observe());
  p.creation = new StreamCreation(p);
  p.outputRequests = new OutputRequests(p);
  p.connections = new Connections(p);
  p.reads = new StreamReads(p);
  p.recordingAccess = new RecordingAccess(p);
  p.appRequests = new AppRequests(s, p.views, {
    join: (packageName) => p.creation.join(packageName, null),
    addOutput: (packageName, url, name) => p.outputRequests.add(packageName, url, name, null),
    leave: (packageName) => p.connections.leave(packageName),
  });
  p.shutdown = new Shutdown(s, {
    device: p.device,
    presence: p.presence,
    outputs: p.outputs,
    publisher: p.publisher,
    participation: p.participation,
    room: p.room,
    recordings: p.recordings,
    runningTimers: RUNNING_TIMERS,
  });
  p.afterPresenceChange = async (now, closing) => {
    p.presence.evaluate(now);
    p.sync.reschedule(now);
    p.publisher.pushIfChanged(undefined, closing);
    await s.schedule.arm();
  };
  p.applyDevice = (device, detail) => {
    s.store.update({ device, deviceDetail: detail });
    p.publisher.refresh();
  };
  p.claims = () => {
    const record = s.store.get();
    return {
      liveInputUid: record && record.phase !== "stopped" ? record.liveInputUid : null,
      creatingInput: p.creation.inFlight !== null,
      ...p.outputs.claims(),
    };
  };
  return p;
}
