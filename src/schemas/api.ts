import { z } from "zod";

/** REST request schemas: the single source for validation, TypeScript types and docs/api.md. */

export const PackageName = z
  .string()
  .min(3)
  .max(128)
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, "must be letters, digits, dots, dashes or underscores (e.g. com.example.app)");

export const UserId = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[A-Za-z0-9._:@+-]+$/, "must be letters, digits or ._:@+-");

/** nanoid(21) alphabet; anything else cannot be one of our stream ids. */
export const StreamId = z.string().regex(/^[A-Za-z0-9_-]{21}$/);

/**
 * A restream destination URL. zod lets anything through and parseRtmpUrl checks it (so each problem gets
 * its own INVALID_URL message, seed 002); the metadata is what /openapi.json says that check accepts.
 */
const RtmpUrl = z
  .unknown()
  .optional()
  .meta({
    type: "string",
    maxLength: 2_048,
    pattern: "^[Rr][Tt][Mm][Pp][Ss]?://[^\\s/]+/\\S+$",
    description: "Required. rtmp:// or rtmps:// (any case), no whitespace, ending with the stream key: rtmp://host/app/key",
  });

/** `url` is checked by parseRtmpUrl (so each destination gets its own INVALID_URL, seed 002). */
export const RestreamDestination = z.object({
  url: z.unknown().optional().meta({
    description: "Checked as POST /api/streams/{streamId}/outputs checks url; a bad one is reported in restreamResults, not refused",
  }),
  name: z.string().max(100).optional(),
});

/** `url` and `name` are checked separately: a bad URL is INVALID_URL (seed 002), a bad name INVALID_REQUEST. */
export const AddOutputBody = z.object({
  url: RtmpUrl,
  name: z.unknown().optional().meta({ type: ["string", "null"], maxLength: 100, description: "Checked as OutputName: INVALID_REQUEST" }),
});
export const OutputName = z.string().max(100).nullable().optional();

export const PatchOutputBody = z.object({ enabled: z.boolean() });

export const IdempotencyKey = z.string().min(1).max(128);

export const Recording = z.object({
  mode: z.enum(["off", "automatic"]),
  timeoutSeconds: z.number().int().min(0).max(3_600).optional(),
  requireSignedURLs: z.boolean().optional(),
  allowedOrigins: z.array(z.string().max(253)).max(20).optional(),
});

/** How the glasses push video into the stream's live input (docs/api.md, "Ingest protocols"). */
export const IngestProtocol = z
  .enum(["rtmp", "srt", "webrtc"])
  .describe("rtmp (default): RTMPS; srt: SRT, same features as RTMP, better on lossy networks; webrtc: WHIP in, WHEP out (sub-second, no HLS/DASH, recording or outputs)");

export const StartStreamBody = z.object({
  userId: UserId,
  /** Chosen when the stream is created; a join keeps the running stream's own. */
  ingest: IngestProtocol.optional(),
  restreamDestinations: z.array(RestreamDestination).max(10).optional(),
  /** Default as in seed 000: record automatically, stop 30 s after the input goes idle. */
  recording: Recording.optional(),
  deleteRecordingAfterDays: z.number().int().min(30).max(1096).nullable().optional(),
  /** MentraOS SDK fields, accepted for compatibility. */
  packageName: z.string().optional(),
  quality: z.enum(["720p", "1080p"]).optional(),
  enableWebRTC: z.boolean().optional(),
});
export type StartStreamBody = z.infer<typeof StartStreamBody>;

export const RegisterAppBody = z.object({ packageName: PackageName });

export const UserGrantBody = z.object({
  userId: UserId,
  packageName: PackageName,
  ttlSeconds: z.number().int().min(60).max(30 * 24 * 3600).default(3600),
});

export const DeviceTokenBody = z.object({
  userId: UserId,
  ttlSeconds: z.number().int().min(60).max(30 * 24 * 3600).default(24 * 3600),
});

/**
 * Query of the stream lists (GET /api/streams, GET /api/admin/streams). `cursor` is a list's own
 * `nextCursor`, opaque to callers (it is the sort key of the last entry a page examined).
 */
export const ListCursor = z
  .string()
  .regex(/^[0-9]{1,16}\.[A-Za-z0-9_-]{21}$/, "must be the nextCursor of a previous page")
  .describe("The nextCursor of the previous page; omit it for the first page");
export const ListLimit = z.coerce
  .number({ error: "must be a whole number from 1 to 50" })
  .int("must be a whole number from 1 to 50")
  .min(1, "must be a whole number from 1 to 50")
  .max(50, "must be a whole number from 1 to 50")
  .default(20)
  .describe("Entries per page, 1 to 50 (default 20)");
export const ListStreamsQuery = z.object({ cursor: ListCursor.optional(), limit: ListLimit });
