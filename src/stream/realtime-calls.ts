import { clock } from "../clock";
import { RealtimeApi, RealtimeCallError, SFU_TRACKS_PER_CALL, type SessionDescription, type TracksAnswer } from "../cloudflare/realtime-api";
import { ApiError, fail, type Failure, type Result } from "../http/errors";
import type { NewTracksBody } from "../schemas/realtime";
import type { StreamContext } from "./context";
import { RoomStore, sameOwner, type Owner, type RoomSession, type RoomTrack } from "./realtime-room";
import { isMediaKind, kindsByMid } from "./realtime-sdp";

/**
 * The room's calls on the Realtime SFU, each authorized by the stream object (docs/realtime.md):
 *
 * - the stream's own glasses (device token of its user) create sessions and publish local tracks; the
 *   session that publishes becomes the room's publisher (a newer one replaces it, and the old is closed);
 * - apps that are viewers (present: socket, join hold or a session of their own) create sessions and
 *   pull only the publisher's published tracks;
 * - a session belongs to whoever created it: anybody else gets 404 SESSION_NOT_FOUND;
 * - calls on one session run one at a time (the SFU requires it), in arrival order.
 *
 * Sessions are closed (every track force-closed, then forgotten) when their app leaves, when the stream
 * stops, and when the audit (every PRESENCE_AUDIT_SECONDS while any exist, and at once after a restart)
 * finds the SFU no longer has them, or the publisher's tracks no longer carry media.
 */
export const REALTIME_AUDIT_TIMER = "realtime-audit";
export const REALTIME_CLOSE_TIMER = "realtime-close";
/** A new session may take this long to connect and publish before the audit judges its tracks. */
const SESSION_GRACE_MS = 30_000;
/** A session the SFU keeps failing to close is forgotten after this many attempts (logged). */
const MAX_CLOSE_ATTEMPTS = 5;
/** At most this many sessions are asked about per audit run (the object's subrequests are finite). */
const AUDIT_BATCH = 100;

export type RealtimeCall =
  | { op: "newSession"; sessionDescription?: SessionDescription }
  | { op: "newTracks"; sessionId: string; body: NewTracksBody }
  | { op: "renegotiate"; sessionId: string; sessionDescription: SessionDescription }
  | { op: "closeTracks"; sessionId: string; mids: string[]; force: boolean; sessionDescription?: SessionDescription }
  | { op: "getSession"; sessionId: string }
  | { op: "iceServers" };

export interface RealtimeAnswer {
  status: number;
  body: object;
}

export interface RoomHooks {
  /** Apps present on the stream (sockets, join holds, room sessions): presence.ts. */
  presentApps(now: number): Set<string>;
  /** Presence or the room changed: re-evaluate presence, push the status if it changed, arm timers. */
  changed(): Promise<void>;
}

export class RealtimeCalls {
  readonly store: RoomStore;
  private readonly api: RealtimeApi;
  /** The tail of each session's queue of calls (memory: a new instance starts with none in flight). */
  private readonly queues = new Map<string, Promise<void>>();

  constructor(
    private readonly s: StreamContext,
    private readonly hooks: RoomHooks,
  ) {
    this.store = new RoomStore(s);
    this.api = new RealtimeApi(s.config);
  }

  async handle(caller: Owner, call: RealtimeCall): Promise<Result<{ answer: RealtimeAnswer }>> {
    const record = this.s.store.get();
    if (!record) return fail(404, "STREAM_NOT_FOUND", "Managed stream not found");
    if (caller.role === "device" && caller.userId !== record.userId) return fail(403, "FORBIDDEN", "This device token belongs to another user");
    if (record.phase !== "running") return fail(409, "STREAM_ENDED", `Stream is ${record.phase}`);
    if (caller.role === "app" && !this.hooks.presentApps(clock.now()).has(caller.packageName)) {
      return fail(403, "NOT_A_VIEWER", "App is not viewing the stream: join it and open its socket first");
    }
    try {
      if (call.op === "iceServers") return answer(200, { iceServers: await this.api.iceServers() });
      if (call.op === "newSession") return await this.newSession(caller, call.sessionDescription);
      const session = this.store.session(call.sessionId);
      if (!session || !sameOwner(session.owner, caller)) return sessionNotFound();
      if (session.state === "closing") return fail(404, "SESSION_NOT_FOUND", "This realtime session is closed");
      return await this.serial(call.sessionId, () => this.onSession(caller, call));
    } catch (error) {
      if (error instanceof ApiError) return error.toFailure();
      throw error;
    }
  }

  private async newSession(caller: Owner, offer?: SessionDescription): Promise<Result<{ answer: RealtimeAnswer }>> {
    const created = await this.api.newSession(offer);
    // The stream may have stopped while the SFU answered: a session without tracks is dropped by the SFU itself.
    if (this.s.store.get()?.phase !== "running") return fail(409, "STREAM_ENDED", "The stream ended while the session was created");
    const now = clock.now();
    this.store.addSession(created.sessionId, caller, now);
    this.s.schedule.setEarliest(REALTIME_AUDIT_TIMER, now + this.s.config.presenceAuditSeconds * 1000);
    await this.hooks.changed();
    return answer(201, created);
  }

  /** One call on an existing session, inside its queue. */
  private async onSession(caller: Owner, call: Exclude<RealtimeCall, { op: "newSession" | "iceServers" }>): Promise<Result<{ answer: RealtimeAnswer }>> {
    // Re-read: a leave or stop may have closed the session while this call waited its turn.
    const session = this.store.session(call.sessionId);
    if (!session || session.state === "closing") return fail(404, "SESSION_NOT_FOUND", "This realtime session is closed");
    try {
      switch (call.op) {
        case "newTracks":
          return "sessionDescription" in call.body ? await this.publish(caller, session, call.body) : await this.pull(caller, session, call.body);
        case "renegotiate":
          return answer(200, await this.api.renegotiate(session.sessionId, call.sessionDescription));
        case "closeTracks": {
          const closed = await this.api.closeTracks(session.sessionId, call.mids, call.force, call.sessionDescription);
          this.store.removeTracks(session.sessionId, call.mids);
          this.store.pushIfChanged();
          return answer(200, closed);
        }
        case "getSession": {
          const state = await this.api.getSession(session.sessionId);
          return answer(200, { sessionId: session.sessionId, tracks: state.tracks });
        }
      }
    } catch (error) {
      if (error instanceof RealtimeCallError && error.upstreamStatus === 404) {
        // The SFU no longer has it (closed by its peer or timed out): the room forgets it too.
        this.store.forget(session.sessionId);
        this.store.pushIfChanged();
        await this.hooks.changed();
        return sessionNotFound();
      }
      throw error;
    }
  }

  /** The glasses publish local tracks; their session becomes the room's publisher. */
  private async publish(caller: Owner, session: RoomSession, body: Extract<NewTracksBody, { sessionDescription: unknown }>): Promise<Result<{ answer: RealtimeAnswer }>> {
    if (caller.role !== "device") return fail(403, "PUBLISH_FORBIDDEN", "Only the stream's glasses publish tracks; apps pull the publisher's tracks");
    const kinds = kindsByMid(body.sessionDescription.sdp);
    const tracks: RoomTrack[] = [];
    for (const t of body.tracks) {
      const kind = kinds.get(t.mid);
      if (!isMediaKind(kind)) return fail(400, "INVALID_SDP", `The offer has no audio or video m-section with a=mid:${t.mid}`);
      tracks.push({ mid: t.mid, trackName: t.trackName, location: "local", kind });
    }
    let result: TracksAnswer;
    try {
      result = await this.api.newTracks(session.sessionId, body.tracks, body.sessionDescription);
    } catch (error) {
      // A lost answer may hide tracks made with these mids: keep them, so a close of the session closes them.
      if (error instanceof RealtimeCallError && (error.upstreamStatus === undefined || error.upstreamStatus >= 500)) this.store.addTracks(session.sessionId, tracks);
      throw error;
    }
    const failure = await this.refuseIfAnyFailed(session.sessionId, result);
    if (failure) return failure;
    this.store.addTracks(session.sessionId, tracks);
    const previous = this.store.publisher();
    this.store.setPublisher(session.sessionId);
    if (previous && previous !== session.sessionId) {
      // The glasses reconnected with a new session: the old one publishes nothing any more.
      this.store.markClosing([previous]);
      this.s.schedule.set(REALTIME_CLOSE_TIMER, clock.now());
    }
    this.store.pushIfChanged();
    await this.hooks.changed();
    return answer(200, result);
  }

  /** A viewer app pulls tracks: only the room publisher's published tracks. */
  private async pull(caller: Owner, session: RoomSession, body: Extract<NewTracksBody, { tracks: Array<{ location: "remote" }> }>): Promise<Result<{ answer: RealtimeAnswer }>> {
    if (caller.role !== "app") return fail(403, "PULL_FORBIDDEN", "The glasses publish; only viewer apps pull tracks");
    const publisher = this.store.publisher();
    const published = new Map(publisher ? this.store.tracks(publisher).filter((t) => t.location === "local").map((t) => [t.trackName, t.kind]) : []);
    for (const t of body.tracks) {
      if (t.sessionId !== publisher || !published.has(t.trackName)) {
        return fail(404, "TRACK_NOT_FOUND", `Track "${t.trackName}" of session ${t.sessionId} is not published in this stream's room`);
      }
    }
    const result = await this.api.newTracks(session.sessionId, body.tracks);
    const failure = await this.refuseIfAnyFailed(session.sessionId, result);
    if (failure) return failure;
    const pulled: RoomTrack[] = [];
    for (const t of result.tracks) {
      const kind = t.trackName ? published.get(t.trackName) : undefined;
      if (t.mid && t.trackName && kind) pulled.push({ mid: t.mid, trackName: t.trackName, location: "remote", kind });
    }
    this.store.addTracks(session.sessionId, pulled);
    return answer(200, result);
  }

  /**
   * Per-track errors inside a 200 (seed 003): the call fails as a whole. Tracks it did make are closed
   * again (best effort), so the caller is not left with half a call it was told failed.
   */
  private async refuseIfAnyFailed(sessionId: string, result: TracksAnswer): Promise<Failure | null> {
    const failed = result.tracks.filter((t) => t.errorCode);
    if (failed.length === 0) return null;
    const made = result.tracks.filter((t) => !t.errorCode && t.mid).map((t) => t.mid!);
    if (made.length > 0) await this.api.closeTracks(sessionId, made, true).catch(() => undefined);
    const detail = failed.map((t) => `"${t.trackName ?? t.mid ?? "?"}": ${t.errorCode}${t.errorDescription ? ` (${t.errorDescription})` : ""}`).join("; ");
    return fail(409, "REALTIME_TRACK_FAILED", `Cloudflare Realtime refused ${failed.length === 1 ? "a track" : `${failed.length} tracks`}: ${detail}`);
  }

  // ── Closing ──────────────────────────────────────────────────────────────────────────────────

  /** The owner leaves (an app's leave): its sessions are closed now, or by the close timer if the SFU fails. */
  async closeSessionsOf(owner: Owner): Promise<void> {
    const ids = this.store.sessionsOf(owner).map((s) => s.sessionId);
    if (ids.length === 0) return;
    this.store.markClosing(ids);
    this.store.pushIfChanged();
    await this.flushClosing();
  }

  /** The stream stops: every session is closed. True when none is left (else the stop retries). */
  async closeAll(): Promise<boolean> {
    this.store.markClosing(this.store.sessions("open").map((s) => s.sessionId));
    this.store.pushIfChanged();
    await this.flushClosing();
    return this.store.isEmpty();
  }

  /** Closes every session marked closing: force-closes its tracks at the SFU, then forgets it. */
  async flushClosing(): Promise<void> {
    this.s.schedule.cancel(REALTIME_CLOSE_TIMER);
    let retryAt: number | null = null;
    for (const session of this.store.sessions("closing")) {
      await this.serial(session.sessionId, async () => {
        const mids = this.store.tracks(session.sessionId).map((t) => t.mid);
        try {
          for (let i = 0; i < mids.length; i += SFU_TRACKS_PER_CALL) await this.api.closeTracks(session.sessionId, mids.slice(i, i + SFU_TRACKS_PER_CALL), true);
        } catch (error) {
          const gone = error instanceof RealtimeCallError && error.upstreamStatus === 404;
          if (!gone) {
            const attempts = this.store.countCloseAttempt(session.sessionId);
            if (attempts < MAX_CLOSE_ATTEMPTS) {
              const at = clock.now() + Math.min(60_000, 2_000 * 2 ** attempts);
              retryAt = retryAt === null ? at : Math.min(retryAt, at);
              return;
            }
            console.error("realtime session could not be closed; forgetting it", session.sessionId, error instanceof Error ? error.message : error);
          }
        }
        this.store.forget(session.sessionId);
      });
    }
    if (retryAt !== null) this.s.schedule.set(REALTIME_CLOSE_TIMER, retryAt);
    this.store.pushIfChanged();
    await this.hooks.changed();
  }

  // ── Audit ────────────────────────────────────────────────────────────────────────────────────

  /** After a restart: audit at once (sessions whose peers vanished meanwhile are found and closed). */
  onWake(now: number): void {
    if (!this.store.isEmpty()) this.s.schedule.setEarliest(REALTIME_AUDIT_TIMER, now);
  }

  /**
   * Asks the SFU about each open session: one it no longer has is forgotten; the publisher whose local
   * tracks carry no media (none `active`) after its grace is closed, and viewers are told. Failures to ask
   * are left for the next run.
   */
  async audit(now: number): Promise<void> {
    const open = this.store.sessions("open").slice(0, AUDIT_BATCH);
    const stale: string[] = [];
    for (const session of open) {
      try {
        const state = await this.serial(session.sessionId, () => this.api.getSession(session.sessionId));
        const isPublisher = this.store.publisher() === session.sessionId;
        const live = state.tracks.some((t) => t.location === "local" && t.status === "active");
        if (isPublisher && !live && now - session.createdAt > SESSION_GRACE_MS) stale.push(session.sessionId);
      } catch (error) {
        if (error instanceof RealtimeCallError && error.upstreamStatus === 404) this.store.forget(session.sessionId);
      }
    }
    if (stale.length > 0) this.store.markClosing(stale);
    this.store.pushIfChanged();
    if (stale.length > 0) await this.flushClosing();
    else await this.hooks.changed();
    if (!this.store.isEmpty()) this.s.schedule.set(REALTIME_AUDIT_TIMER, now + this.s.config.presenceAuditSeconds * 1000);
  }

  /** Runs `fn` after every earlier call on this session has settled. */
  private serial<T>(sessionId: string, fn: () => Promise<T>): Promise<T> {
    const run = (this.queues.get(sessionId) ?? Promise.resolve()).then(fn);
    const tail = run.then(
      () => undefined,
      () => undefined,
    );
    this.queues.set(sessionId, tail);
    void tail.then(() => {
      if (this.queues.get(sessionId) === tail) this.queues.delete(sessionId);
    });
    return run;
  }
}

function answer(status: number, body: object): Result<{ answer: RealtimeAnswer }> {
  return { ok: true, answer: { status, body } };
}

function sessionNotFound(): Failure {
  return fail(404, "SESSION_NOT_FOUND", "No such realtime session in this stream's room, or it is not yours");
}
