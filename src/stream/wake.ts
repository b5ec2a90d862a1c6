import { clock } from "../clock";
import { CLEANUP_TIMER, CREATE_WATCHDOG_TIMER } from "./lifecycle";
import type { StreamParts } from "./parts";

/**
 * Every start of this object (first request or alarm after an eviction, a crash or a deploy) re-derives
 * what memory used to hold from what is durable: who is present (sockets lost without a close are
 * simply absent now, so the grace timer arms), the device's keep-alives, unsettled outputs, and a
 * create that died with the previous instance. Runs under blockConcurrencyWhile, before any request.
 */
export async function reconcileOnWake(p: StreamParts): Promise<void> {
  const { s } = p;
  const record = s.store.get();
  const now = clock.now();
  if (record?.phase === "running") {
    p.presence.audit(now, "wake");
    p.room.onWake(now);
    p.device.reconcile(now);
    if (p.outputs.hasUnsettled()) p.outputs.scheduleReconcile(0);
    p.sync.reschedule(now);
    p.publisher.pushIfChanged();
  } else if (record?.phase === "initializing") {
    // Its create was in flight in the previous instance: settle it now rather than a minute later.
    s.schedule.set(CREATE_WATCHDOG_TIMER, now);
  } else if (record?.phase === "stopping") {
    // Its cleanup may have died with the previous instance: resume it now, not at the lease's end.
    s.schedule.set(CLEANUP_TIMER, now);
  }
  // Joins or an end a previous instance could not report yet, and ledger commits or releases it queued
  // but was evicted before delivering or planning their retry (not awaited: requests need not wait).
  if (!p.participation.isEmpty()) void p.participation.flush();
  if (!p.outputs.ledger.isEmpty()) void p.outputs.flushLedger();
  await s.schedule.arm();
}
