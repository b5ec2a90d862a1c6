import { nanoid } from "nanoid";
import type { StreamContext } from "./context";
import { APP_TAG, SocketIdentities } from "./sockets";

/**
 * Who is watching. An app is present while it has at least one open viewer socket (several sockets
 * count once) or while its join hold is unexpired (the window `POST /api/streams` grants it to
 * connect). When nobody is present, a grace timer starts; if it fires with nobody back, the stream stops.
 */
export const GRACE_TIMER = "grace";
/**
 * While a stream runs, presence is audited on this timer (PRESENCE_AUDIT_SECONDS) as well as on every
 * join, connect, close and wake: sockets lost to a crash or a deploy never send a close, so a stream
 * with nobody left stops within grace + one audit interval whatever was lost.
 */
export const PRESENCE_AUDIT_TIMER = "presence-audit";
const HOLD_TIMER_PREFIX = "hold:";
export const TICKET_TTL_MS = 60_000;

export class Presence {
  readonly identities = new SocketIdentities();
  /**
   * Open viewer sockets per app: state kept up to date by connect and close (O(1) each), never a
   * recount. Memory only, so it is derived from the sockets themselves — once per instance (a wake,
   * including a hibernation wake), and again by each presence audit — which is what makes it
   * crash-safe: sockets lost without a close are simply not there to count.
   */
  private viewers: Map<string, number> | null = null;
  /** The sockets counted in `viewers`, so a socket's close (or close + error) uncounts it once. */
  private counted = new WeakSet<WebSocket>();
  /** Apps with an open Realtime SFU session in the stream's room (realtime-room.ts): they watch too. */
  roomViewers: () => string[] = () => [];

  constructor(private readonly s: StreamContext) {
    s.sql.run(`CREATE TABLE IF NOT EXISTS join_holds (package_name TEXT PRIMARY KEY, expires_at INTEGER NOT NULL)`);
    s.sql.run(`CREATE TABLE IF NOT EXISTS tickets (
      ticket TEXT PRIMARY KEY, package_name TEXT NOT NULL, expires_at INTEGER NOT NULL)`);
  }

  /** One walk over the sockets (each attachment read once, through the cache). */
  private derive(): Map<string, number> {
    const viewers = new Map<string, number>();
    this.counted = new WeakSet();
    for (const ws of this.s.ctx.getWebSockets(APP_TAG)) {
      if (ws.readyState === WebSocket.CLOSED || ws.readyState === WebSocket.CLOSING) continue;
      const identity = this.identities.of(ws);
      if (identity?.role !== "app") continue;
      this.counted.add(ws);
      viewers.set(identity.packageName, (viewers.get(identity.packageName) ?? 0) + 1);
    }
    this.viewers = viewers;
    return viewers;
  }

  private counts(): Map<string, number> {
    return this.viewers ?? this.derive();
  }

  /** A viewer socket was accepted (and attached). */
  onConnect(ws: WebSocket, packageName: string): void {
    const viewers = this.counts();
    if (this.counted.has(ws)) return;
    this.counted.add(ws);
    viewers.set(packageName, (viewers.get(packageName) ?? 0) + 1);
  }

  /** A viewer socket closed, errored or is being closed by us; idempotent. */
  onClose(ws: WebSocket): void {
    const viewers = this.counts();
    if (!this.counted.delete(ws)) return;
    const packageName = this.identities.of(ws);
    if (packageName?.role !== "app") return;
    const left = (viewers.get(packageName.packageName) ?? 1) - 1;
    if (left > 0) viewers.set(packageName.packageName, left);
    else viewers.delete(packageName.packageName);
  }

  /** Open viewer sockets of one app (0 when it has none). */
  socketsOf(packageName: string): number {
    return this.counts().get(packageName) ?? 0;
  }

  /** Packages with an open viewer socket or an open realtime session. */
  viewingApps(): Set<string> {
    const apps = new Set(this.counts().keys());
    for (const app of this.roomViewers()) apps.add(app);
    return apps;
  }

  isViewing(packageName: string): boolean {
    return this.counts().has(packageName) || this.roomViewers().includes(packageName);
  }

  /** Apps watching (several sockets, or sockets and realtime sessions, of one app count once). */
  viewerCount(): number {
    const room = this.roomViewers();
    if (room.length === 0) return this.counts().size;
    const counts = this.counts();
    return counts.size + room.filter((app) => !counts.has(app)).length;
  }

  hold(packageName: string, now: number): void {
    const expiresAt = now + this.s.config.joinWindowSeconds * 1000;
    this.s.sql.run(
      `INSERT INTO join_holds (package_name, expires_at) VALUES (?, ?)
       ON CONFLICT(package_name) DO UPDATE SET expires_at = excluded.expires_at`,
      packageName,
      expiresAt,
    );
    this.s.schedule.set(HOLD_TIMER_PREFIX + packageName, expiresAt);
  }

  releaseHold(packageName: string): void {
    this.s.sql.run(`DELETE FROM join_holds WHERE package_name = ?`, packageName);
    this.s.schedule.cancel(HOLD_TIMER_PREFIX + packageName);
  }

  isHoldTimer(name: string): string | null {
    return name.startsWith(HOLD_TIMER_PREFIX) ? name.slice(HOLD_TIMER_PREFIX.length) : null;
  }

  presentApps(now: number): Set<string> {
    const present = this.viewingApps();
    for (const row of this.s.sql.all<{ package_name: string }>(`SELECT package_name FROM join_holds WHERE expires_at > ?`, now)) {
      present.add(row.package_name);
    }
    return present;
  }

  /** Starts the grace timer when nobody is present, cancels it when somebody is. */
  evaluate(now: number): void {
    if (this.viewerCount() > 0 || this.presentApps(now).size > 0) {
      this.s.schedule.cancel(GRACE_TIMER);
    } else if (this.s.schedule.dueAt(GRACE_TIMER) === null) {
      this.s.schedule.set(GRACE_TIMER, now + this.s.config.viewerGraceSeconds * 1000);
    }
  }

  /**
   * Re-derives presence now (audit timer, wake): arms the grace timer if nobody is left, and plans the
   * next audit — from now when the audit ran, or at the latest one interval away on a wake.
   */
  audit(now: number, kind: "audit" | "wake" = "audit"): void {
    // A wake derives the counts anyway (a new instance has none); an audit re-derives them from the
    // sockets, so a close the runtime never delivered cannot keep a stream alive.
    if (kind === "audit") this.viewers = null;
    this.evaluate(now);
    const next = now + this.s.config.presenceAuditSeconds * 1000;
    if (kind === "audit") this.s.schedule.set(PRESENCE_AUDIT_TIMER, next);
    else this.s.schedule.setEarliest(PRESENCE_AUDIT_TIMER, next);
  }

  clearAll(): void {
    this.s.sql.run(`DELETE FROM join_holds`);
    this.s.sql.run(`DELETE FROM tickets`);
    this.s.schedule.cancelPrefix(HOLD_TIMER_PREFIX);
    this.s.schedule.cancel(GRACE_TIMER);
    this.s.schedule.cancel(PRESENCE_AUDIT_TIMER);
  }

  /** A short-lived, single-use ticket lets a browser (which cannot set headers) open a viewer socket. */
  issueTicket(packageName: string, now: number): { ticket: string; expiresAt: number } {
    this.s.sql.run(`DELETE FROM tickets WHERE expires_at <= ?`, now);
    const ticket = `tk_${nanoid(32)}`;
    const expiresAt = now + TICKET_TTL_MS;
    this.s.sql.run(`INSERT INTO tickets (ticket, package_name, expires_at) VALUES (?, ?, ?)`, ticket, packageName, expiresAt);
    return { ticket, expiresAt };
  }

  /** Consumes a ticket (whatever the outcome, it cannot be used again) and returns its package. */
  redeemTicket(ticket: string, now: number): string | null {
    const row = this.s.sql.one<{ package_name: string; expires_at: number }>(
      `SELECT package_name, expires_at FROM tickets WHERE ticket = ?`,
      ticket,
    );
    if (!row) return null;
    this.s.sql.run(`DELETE FROM tickets WHERE ticket = ?`, ticket);
    return row.expires_at > now ? row.package_name : null;
  }
}
