import { KEEPALIVE_TIMER } from "./device";
import { LEDGER_OUTBOX_TIMER } from "./ledger-outbox";
import { CLEANUP_TIMER, CREATE_WATCHDOG_TIMER } from "./lifecycle";
import { OUTPUT_RECONCILE_TIMER } from "./outputs";
import { PARTICIPATION_OUTBOX_TIMER } from "./participation-outbox";
import type { StreamParts } from "./parts";
import { GRACE_TIMER, PRESENCE_AUDIT_TIMER } from "./presence";
import { REALTIME_AUDIT_TIMER, REALTIME_CLOSE_TIMER } from "./realtime-calls";
import { RECORDING_CAPTURE_TIMER, RECORDING_EXPIRE_TIMER, RECORDING_SETTLE_TIMER } from "./recordings";
import { NOTIFY_USER_TIMER, PURGE_TIMER } from "./shutdown";
import { INGEST_STABLE_TIMER, INPUT_POLL_TIMER, OUTPUTS_POLL_TIMER } from "./status-sync";
import { TOMBSTONE_TIMER } from "./tombstones";

/**
 * What each of the stream's timers does when it falls due (schedule.ts runs them from the one alarm;
 * docs/architecture.md lists who sets each). Each handler re-reads the stream first: the timer may have
 * been set by an instance long gone, for a phase the stream has left since.
 */
export async function runTimer(p: StreamParts, name: string, now: number): Promise<void> {
  // Tombstones outlive the stream they watch for.
  if (name === TOMBSTONE_TIMER) return p.tombstones.check(() => p.claims());
  // So do the recordings' timers (the compact record keeps who may read and delete them).
  if (name === RECORDING_CAPTURE_TIMER) {
    await p.recordings.capture();
    // A recording that became ready since (a reconnect past the window) shows in the status at once.
    if (p.s.store.get()?.phase === "running") p.publisher.pushIfChanged();
    return;
  }
  if (name === RECORDING_SETTLE_TIMER) return p.recordings.settle();
  if (name === RECORDING_EXPIRE_TIMER) return p.recordings.expire();
  const record = p.s.store.get();
  if (!record) return;
  const heldApp = p.presence.isHoldTimer(name);
  if (heldApp !== null) {
    p.presence.releaseHold(heldApp);
    p.presence.evaluate(now);
    p.publisher.pushIfChanged();
    return;
  }
  switch (name) {
    case GRACE_TIMER:
      if (record.phase === "running" && p.presence.presentApps(now).size === 0) {
        await p.shutdown.stop("No app is watching any more");
      }
      return;
    case PRESENCE_AUDIT_TIMER:
      if (record.phase !== "running") return;
      p.presence.audit(now);
      p.publisher.pushIfChanged();
      return;
    case KEEPALIVE_TIMER: {
      const change = p.device.tick(record, now);
      if (change) p.applyDevice(change, null);
      return;
    }
    case INPUT_POLL_TIMER:
      await p.sync.pollInput();
      return;
    case OUTPUTS_POLL_TIMER:
      await p.sync.pollOutputs();
      return;
    case INGEST_STABLE_TIMER:
      p.publisher.pushIfChanged();
      return;
    case OUTPUT_RECONCILE_TIMER:
      await p.outputs.reconcile();
      p.publisher.pushIfChanged();
      return;
    case LEDGER_OUTBOX_TIMER:
      await p.outputs.flushLedger();
      return;
    case REALTIME_AUDIT_TIMER:
      if (record.phase === "running") await p.room.audit(now);
      return;
    case REALTIME_CLOSE_TIMER:
      await p.room.flushClosing();
      return;
    case PARTICIPATION_OUTBOX_TIMER:
      await p.participation.flush();
      return;
    case NOTIFY_USER_TIMER:
      if (record.phase === "stopped") await p.shutdown.notifyUserStreamEnded(record);
      return;
    case PURGE_TIMER:
      if (record.phase === "stopped") await p.shutdown.purge();
      return;
    case CLEANUP_TIMER:
      await p.shutdown.stop(record.message);
      return;
    case CREATE_WATCHDOG_TIMER:
      return p.creation.watchdog(record, now);
  }
}
