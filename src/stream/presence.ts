import { nanoid } from "nanoid";
import type { StreamContext } from "./context";
import { APP_TAG, identityOf } from "./sockets";

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
  constructor(private readonly s: StreamContext) {
    s.sql.run(`CREATE TABLE IF NOT EXISTS join_holds (package_name TEXT PRIMARY KEY, expires_at INTEGER NOT NULL)`);
    s.sql.run(`CREATE TABLE IF NOT EXISTS tickets (
      ticket TEXT PRIMARY KEY, package_name TEXT NOT NULL, expires_at INTEGER NOT NULL)`);
  }

  /** Packages with an open viewer socket; `excluding` is a socket that is closing right now. */
  viewingApps(excluding?: WebSocket): Set<string> {
    const apps = new Set<string>();
    for (const ws of this.s.ctx.getWebSockets(APP_TAG)) {
      if (ws === excluding || ws.readyState === WebSocket.CLOSED || ws.readyState === WebSocket.CLOSING) continue;
      const identity = identityOf(ws);
      if (identity?.role === "app") apps.add(identity.packageName);
    }
    return apps;
  }

  isViewing(packageName: string, excluding?: WebSocket): boolean {
    return this.viewingApps(excluding).has(packageName);
  }

  viewerCount(excluding?: WebSocket): number {
    return this.viewingApps(excluding).size;
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

  presentApps(now: number, excluding?: WebSocket): Set<string> {
    const present = this.viewingApps(excluding);
    for (const row of this.s.sql.all<{ package_name: string }>(`SELECT package_name FROM join_holds WHERE expires_at > ?`, now)) {
      present.add(row.package_name);
    }
    return present;
  }

  /** Starts the grace timer when nobody is present, cancels it when somebody is. */
  evaluate(now: number, excluding?: WebSocket): void {
    if (this.presentApps(now, excluding).size > 0) {
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
