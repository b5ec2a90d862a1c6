import { clock } from "../clock";
import { fail, type Result } from "../http/errors";
import type { ProtocolError } from "../schemas/protocol";
import { jsonFailure, streamNotFound } from "./failures";
import type { StreamParts } from "./parts";
import { appTag, closeQuietly, send, sendText, tagsFor, type SocketIdentity } from "./sockets";
import type { StreamSnapshot } from "./views";

/** Headers the Worker sets after authenticating a WebSocket upgrade; never trusted from outside. */
export const ROLE_HEADER = "x-sc-role";
export const PACKAGE_HEADER = "x-sc-package";
export const USER_HEADER = "x-sc-user";
export const TICKET_HEADER = "x-sc-ticket";
/** Set when user grants are required: only apps that joined through POST /api/streams may view. */
export const JOINED_ONLY_HEADER = "x-sc-joined-only";

/**
 * The stream's sockets: accepting an upgrade the Worker authenticated (identity in tags and attachment, so
 * it survives hibernation), their messages, their end (a close, an error, or nothing at all after a crash:
 * presence.ts re-derives on wake), and an app leaving with all its sockets.
 */
export class Connections {
  constructor(private readonly p: StreamParts) {}

  /** Accepts an upgrade the Worker has already authenticated (role headers) — or refuses it with JSON. */
  async accept(request: Request): Promise<Response> {
    const { s, presence, participation, publisher, room, device, sync, creation } = this.p;
    if (creation.inFlight) await creation.inFlight;
    const record = s.store.get();
    if (!record) return jsonFailure(streamNotFound());
    if (record.phase !== "running") return jsonFailure(fail(410, "STREAM_ENDED", `Stream is ${record.phase}`));

    const now = clock.now();
    const role = request.headers.get(ROLE_HEADER);
    let identity: SocketIdentity;
    if (role === "device") {
      if (request.headers.get(USER_HEADER) !== record.userId) {
        return jsonFailure(fail(403, "FORBIDDEN", "This device token belongs to another user"));
      }
      identity = { role: "device", userId: record.userId, connectedAt: now };
    } else if (role === "app") {
      const ticket = request.headers.get(TICKET_HEADER);
      const packageName = ticket ? presence.redeemTicket(ticket, now) : request.headers.get(PACKAGE_HEADER);
      if (!packageName) return jsonFailure(fail(401, "UNAUTHORIZED", "Ticket is invalid, expired or already used"));
      if (request.headers.get(JOINED_ONLY_HEADER) && !s.store.isParticipant(packageName)) {
        return jsonFailure(fail(403, "NOT_A_PARTICIPANT", "Join the stream with POST /api/streams first"));
      }
      identity = { role: "app", packageName, connectedAt: now };
      // With REQUIRE_USER_GRANT=false a socket makes its app a participant, as a join would.
      if (s.store.addParticipant(packageName, now)) {
        participation.joined(packageName, now);
        void participation.flush();
      }
    } else {
      return jsonFailure(fail(400, "INVALID_REQUEST", "Unknown connection role"));
    }

    const pair = new WebSocketPair();
    const [client, server] = [pair[0], pair[1]];
    s.ctx.acceptWebSocket(server, tagsFor(identity));
    presence.identities.attach(server, identity);

    if (identity.role === "app") {
      presence.onConnect(server, identity.packageName);
      presence.releaseHold(identity.packageName);
      presence.evaluate(now);
      // The current status goes to every (re)connecting viewer at once, never de-duplicated away.
      publisher.welcome(server, identity.packageName);
      room.store.welcome(server);
    } else {
      device.onConnect(server, record, now);
      // The glasses are back: whatever they reported before (lost, error) no longer holds.
      if (record.device !== "ok") this.p.applyDevice("ok", null);
    }
    sync.reschedule(now);
    await s.schedule.arm();
    return new Response(null, { status: 101, webSocket: client });
  }

  async message(ws: WebSocket, raw: string | ArrayBuffer): Promise<void> {
    const { s, presence, inbound: guard, appRequests, device } = this.p;
    const identity = presence.identities.of(ws);
    if (!identity) return closeQuietly(ws, 1011, "Unknown connection");
    const inbound = guard.screen(ws, raw, identity.role);
    if (inbound.kind === "close") return closeQuietly(ws, inbound.code, inbound.reason);
    if (inbound.kind === "reply") {
      return void send(ws, { type: "error", error: inbound.error, message: inbound.message } satisfies ProtocolError);
    }

    const record = s.store.get();
    if (!record) return;
    if (inbound.kind === "app" && identity.role === "app") return appRequests.handle(ws, identity.packageName, inbound.message);
    if (inbound.kind === "device") {
      const change = device.onMessage(inbound.message, record);
      if (change) this.p.applyDevice(change.device, change.detail);
      await s.schedule.arm();
    }
  }

  /** A socket ended: closed (a close event), errored, or either after the other. */
  async gone(ws: WebSocket): Promise<void> {
    const { s, presence, device } = this.p;
    const identity = presence.identities.of(ws);
    if (identity?.role === "app") presence.onClose(ws);
    const record = s.store.get();
    if (!identity || !record || record.phase !== "running") return;
    if (identity.role === "device") device.onDisconnect(ws);
    await this.p.afterPresenceChange(clock.now(), ws);
  }

  /** The app leaves (REST or `managed_stream_stop`): its hold and sockets go; others are unaffected. */
  async leave(packageName: string): Promise<Result<{ snapshot: StreamSnapshot }>> {
    const { s, presence, room, views } = this.p;
    const record = s.store.get();
    if (!record || !s.store.isParticipant(packageName)) return streamNotFound();
    presence.releaseHold(packageName);
    const sockets = s.ctx.getWebSockets(appTag(packageName));
    for (const ws of sockets) presence.onClose(ws);
    await room.closeSessionsOf({ role: "app", packageName });
    // Its sockets hear last that its managed stream stopped (the SDK may then start again); others see
    // the viewer count drop in the next push.
    const left = sockets.length > 0 ? JSON.stringify(views.leftMessage(record)) : "";
    for (const ws of sockets) {
      sendText(ws, left);
      closeQuietly(ws, 1000, "left the stream");
    }
    if (record.phase === "running") await this.p.afterPresenceChange(clock.now());
    return { ok: true, snapshot: views.snapshot(s.store.get()!) };
  }

  /** A one-use ticket for a browser's upgrade (`?ticket=`), for an app that joined a running stream. */
  issueTicket(packageName: string): Result<{ ticket: string; expiresAt: number }> {
    const { s, presence } = this.p;
    const record = s.store.get();
    if (!record || !s.store.isParticipant(packageName)) return streamNotFound();
    if (record.phase !== "running") return fail(409, "STREAM_ENDED", `Stream is ${record.phase}`);
    return { ok: true, ...presence.issueTicket(packageName, clock.now()) };
  }
}
