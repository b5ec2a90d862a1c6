import type { AdminStreamListItem } from "../schemas/responses";
import type { Result } from "../http/errors";
import type { StreamAnalytics } from "./analytics";
import { startMessage } from "./device";
import { streamNotFound } from "./failures";
import type { StreamParts } from "./parts";
import type { StreamRecord } from "./store";
import type { DeviceStreamInfo, StreamSnapshot } from "./views";
import { watchView, type WatchHit, type WatchView } from "./watch-view";

export type StreamAnalyticsReport = { streamId: string; state: StreamRecord["status"] } & ReturnType<StreamAnalytics["report"]>;

/** A stream list entry as the stream object gives it; the Worker keeps what its list shows. */
export type StreamListView = AdminStreamListItem;

/**
 * What callers read of the stream — its snapshot, list entry, watch view, analytics, the device's start
 * info, the leak sweep's question — each refused (not found) for a caller that may not see it. Reads that
 * would show a half-made stream wait for a create in flight; a list does not (it shows `initializing`).
 */
export class StreamReads {
  constructor(private readonly p: StreamParts) {}

  async snapshot(packageName: string): Promise<Result<{ snapshot: StreamSnapshot }>> {
    const { s, creation, views } = this.p;
    if (creation.inFlight) await creation.inFlight;
    const record = s.store.get();
    if (!record || !s.store.isParticipant(packageName)) return streamNotFound();
    return { ok: true, snapshot: views.snapshot(record) };
  }

  /** One entry of a stream list (GET /api/streams for an app, `null`: GET /api/admin/streams). */
  listView(packageName: string | null): Result<{ view: StreamListView }> {
    const { s, views } = this.p;
    const record = s.store.get();
    if (!record || (packageName !== null && !s.store.isParticipant(packageName))) return streamNotFound();
    return {
      ok: true,
      view: {
        ...views.snapshot(record),
        userId: record.userId,
        createdBy: record.createdBy,
        participants: s.store.participants(),
        // As an app that added none of them sees them: every stream key masked.
        outputs: packageName === null && record.phase !== "initializing" ? views.outputViews(record, null) : [],
      },
    };
  }

  /** `GET /w/:key` resolved to this stream (watch-view.ts); `hit` is counted in the analytics. Null once purged. */
  watchView(hit: WatchHit | null): WatchView | null {
    const { s, recordings, analytics } = this.p;
    const record = s.store.get();
    if (!record) {
      // Purged, but its recordings are kept: the watch link still offers the newest ready one.
      const latest = recordings.latest();
      const owner = recordings.owner();
      return latest && owner ? { state: "offline", streamId: owner.streamId, hlsUrl: null, dashUrl: null, webrtcUrl: null, thumbnailUrl: null, latestRecording: latest } : null;
    }
    if (hit && record.phase !== "initializing") analytics.hit(hit.country, hit.visitor);
    return watchView(s.config, record, recordings.latest());
  }

  /** `GET /api/streams/:id/analytics`: for the apps that took part (`null`: the admin). */
  async analyticsReport(packageName: string | null): Promise<Result<{ report: StreamAnalyticsReport }>> {
    const { s, creation, recordings, analytics } = this.p;
    if (creation.inFlight) await creation.inFlight;
    const record = s.store.get();
    if (!record) {
      // Purged, but kept with its recordings' compact record: readable by the same apps.
      const owner = recordings.owner();
      if (!owner || !analytics.kept() || (packageName !== null && !owner.participants.includes(packageName))) return streamNotFound();
      return { ok: true, report: { streamId: owner.streamId, state: "stopped", ...analytics.report() } };
    }
    if (packageName !== null && !s.store.isParticipant(packageName)) return streamNotFound();
    analytics.observe();
    return { ok: true, report: { streamId: record.streamId, state: record.status, ...analytics.report() } };
  }

  /** What the user's device needs to start streaming: the ingest credentials. Device-only. */
  async deviceInfo(userId: string): Promise<Result<{ info: DeviceStreamInfo }>> {
    const { s, creation } = this.p;
    if (creation.inFlight) await creation.inFlight;
    const record = s.store.get();
    if (!record || record.userId !== userId) return streamNotFound();
    const start = record.phase === "running" && record.ingest ? startMessage(record) : null;
    return { ok: true, info: { streamId: record.streamId, status: record.status, start } };
  }

  /** For the leak sweep: is this stream still using its live input? */
  sweepInfo(): { phase: string; liveInputUid: string | null; stoppedAt: number | null } | null {
    const record = this.p.s.store.get();
    return record ? { phase: record.phase, liveInputUid: record.liveInputUid, stoppedAt: record.stoppedAt } : null;
  }
}
