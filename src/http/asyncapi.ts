import { z } from "zod";
import { version } from "../../package.json";
import {
  AppMessage,
  DeviceMessage,
  KeepRtmpStreamAlive,
  ManagedStreamRequestAnswer,
  Ping,
  Pong,
  ProtocolError,
  RealtimeTracks,
  StartRtmpStream,
  StopRtmpStream,
  StreamStatusCheckResponse,
} from "../schemas/protocol";

/**
 * The AsyncAPI 3.0 document served at GET /asyncapi.json: both directions of both roles of the stream
 * socket, generated from the zod schemas in src/schemas/protocol.ts. Inbound messages are the very
 * unions the stream object parses with (AppMessage, DeviceMessage); outbound ones are the schemas whose
 * `z.infer` types the code that builds them is written against. Payloads are JSON Schema draft-07,
 * AsyncAPI's default schema format (docs/websocket-protocol.md says the same in prose; the e2e suite
 * validates every frame against this document, test/e2e/spec-check.mjs).
 */

type Json = Record<string, unknown>;
type MessageSchema = z.ZodObject<{ type: z.ZodLiteral<string> }>;

/** Who sends what, from the coordinator's side: `send` = coordinator → peer, `receive` = peer → coordinator. */
const ROLES = {
  app: {
    title: "App viewer socket",
    description:
      "Authenticated with X-API-Key + X-Package-Name headers, or `?ticket=` from POST /api/streams/{streamId}/tickets (browsers). " +
      "Refusals before the upgrade are JSON errors (see GET /api/streams/{streamId}/ws in /openapi.json).",
    send: [ManagedStreamRequestAnswer, StreamStatusCheckResponse, RealtimeTracks, ProtocolError, Pong],
    receive: [...AppMessage.options, Ping],
  },
  device: {
    title: "Device (glasses) socket",
    description: "Authenticated with a device token: `Authorization: Bearer <token>` or `?token=`. Only the stream's own user is accepted.",
    send: [StartRtmpStream, KeepRtmpStreamAlive, StopRtmpStream, ProtocolError, Pong],
    receive: [...DeviceMessage.options, Ping],
  },
} as const;

const typeOf = (schema: MessageSchema): string => schema.shape.type.value;
/** managed_stream_status → ManagedStreamStatus */
const nameOf = (schema: MessageSchema): string =>
  typeOf(schema)
    .split("_")
    .map((w) => w[0]!.toUpperCase() + w.slice(1))
    .join("");

function build(): Json {
  const registry = z.registry<{ id: string }>();
  const sent = new Set<MessageSchema>(Object.values(ROLES).flatMap((role) => [...role.send] as MessageSchema[]));
  const received = new Set<MessageSchema>(Object.values(ROLES).flatMap((role) => [...role.receive] as MessageSchema[]));
  for (const schema of new Set([...sent, ...received])) registry.add(schema, { id: nameOf(schema) });
  // What we send is closed (no field beyond those listed: zod's output); what we receive may carry more
  // (the SDK adds `timestamp` and `sessionId`), which zod drops: its input.
  const generate = (io: "input" | "output") => z.toJSONSchema(registry, { target: "draft-7", io, uri: (id) => `#/components/schemas/${id}` }).schemas;
  const [outbound, inbound] = [generate("output"), generate("input")];
  const schemas: Record<string, Json> = {};
  const messages: Record<string, Json> = {};
  for (const [list, generated] of [[sent, outbound], [received, inbound]] as const) {
    for (const schema of list) {
      const name = nameOf(schema);
      const { $schema: _s, $id: _i, ...payload } = generated[name]!;
      schemas[name] = payload;
      messages[name] = { name: typeOf(schema), title: typeOf(schema), payload: { $ref: `#/components/schemas/${name}` } };
    }
  }

  const channels: Record<string, Json> = {};
  const operations: Record<string, Json> = {};
  for (const [role, spec] of Object.entries(ROLES)) {
    const channel = `${role}Socket`;
    const names = (list: readonly MessageSchema[]) => list.map(nameOf);
    channels[channel] = {
      address: "/api/streams/{streamId}/ws",
      title: spec.title,
      description: spec.description,
      parameters: { streamId: { description: "The stream's id (21 characters of A-Za-z0-9_-)" } },
      messages: Object.fromEntries(
        [...new Set([...names(spec.send as readonly MessageSchema[]), ...names(spec.receive as readonly MessageSchema[])])].map((n) => [
          n,
          { $ref: `#/components/messages/${n}` },
        ]),
      ),
    };
    for (const action of ["send", "receive"] as const) {
      operations[`${action}${role === "app" ? "App" : "Device"}`] = {
        action,
        channel: { $ref: `#/channels/${channel}` },
        summary: action === "send" ? `Coordinator → ${role}` : `${role} → coordinator`,
        messages: names(spec[action] as readonly MessageSchema[]).map((n) => ({ $ref: `#/channels/${channel}/messages/${n}` })),
      };
    }
  }
  return {
    asyncapi: "3.0.0",
    info: {
      title: "Stream Coordinator sockets",
      version,
      description:
        "One WebSocket per stream, for apps (viewers) and for the user's glasses (device). JSON text frames, conforming to @mentra/sdk 2.1.29. " +
        "Optional fields are absent, never null. Frames over 64 KiB close the socket (1009); more than 20 a second close it (1008). " +
        "The REST API is described by /openapi.json.",
    },
    defaultContentType: "application/json",
    channels,
    operations,
    components: { schemas, messages },
  };
}

let cached: Json | undefined;

export function asyncApiDocument(): Json {
  return (cached ??= build());
}
