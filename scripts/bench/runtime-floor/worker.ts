/**
 * The local runtime's own floor for the fan-out bench: the least a Worker + Durable Object can do with
 * viewer sockets under `wrangler dev` (accept a hibernatable socket; broadcast a message to the rest),
 * with the coordinator's compatibility settings. Beside the coordinator and a bare `ws` server in the
 * same run, it splits what is ours from what the local runtime costs. Bench fixture only.
 */
import { DurableObject } from "cloudflare:workers";

interface Env {
  ROOM: DurableObjectNamespace<Room>;
}

export class Room extends DurableObject<Env> {
  override async fetch(request: Request): Promise<Response> {
    const pair = new WebSocketPair();
    this.ctx.acceptWebSocket(pair[1], [new URL(request.url).searchParams.has("trigger") ? "trigger" : "viewer"]);
    return new Response(null, { status: 101, webSocket: pair[0] });
  }

  override webSocketMessage(_ws: WebSocket, message: string | ArrayBuffer): void {
    for (const viewer of this.ctx.getWebSockets("viewer")) viewer.send(message);
  }
}

export default {
  fetch(request: Request, env: Env): Promise<Response> | Response {
    const url = new URL(request.url);
    if (url.pathname === "/healthz") return new Response("ok");
    return env.ROOM.getByName(url.searchParams.get("room") ?? "room").fetch(request);
  },
} satisfies ExportedHandler<Env>;
