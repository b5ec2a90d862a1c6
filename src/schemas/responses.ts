import { z } from "zod";
import type { OutputStatus } from "../outputs/output-status";
import { STREAM_STATUSES } from "../stream/status";
import { IngestProtocol, PackageName, StreamId, UserId } from "./api";
import { RestreamResult, SdkStreamStatus, StartRtmpStream } from "./protocol";

/**
 * REST response schemas. Nothing parses responses at run time: these are the source of /openapi.json
 * (src/http/openapi.ts) and of the types the code that builds each answer is written against (the
 * router's `reply()`, the stream object's snapshot and views), so the spec and the code cannot part.
 * The e2e suite validates every answer against the served spec (test/e2e/spec-check.mjs).
 * Absent-or-null follows the REST convention (docs/api.md): REST fields are `null` when they have no
 * value, WebSocket fields are absent.
 */

const IsoDate = z.iso.datetime().describe("ISO 8601, UTC");
const PlaybackUrl = z.url().nullable();

/** Every `error` code the REST API answers with (docs/api.md, "Error code index"). */
export const ApiErrorCode = z.enum([
  "INVALID_JSON",
  "INVALID_REQUEST",
  "INVALID_URL",
  "INVALID_PAYLOAD",
  "UNAUTHORIZED",
  "ADMIN_DISABLED",
  "USER_NOT_GRANTED",
  "NOT_A_VIEWER",
  "NOT_AUTHORIZED",
  "FORBIDDEN",
  "NOT_A_PARTICIPANT",
  "NOT_FOUND",
  "STREAM_NOT_FOUND",
  "OUTPUT_NOT_FOUND",
  "APP_NOT_FOUND",
  "NO_ACTIVE_STREAM",
  "UNKNOWN_LIVE_INPUT",
  "APP_EXISTS",
  "STREAM_ENDED",
  "MAX_OUTPUTS_REACHED",
  "OUTPUTS_UNSUPPORTED",
  "MAX_APP_OUTPUTS_REACHED",
  "DUPLICATE_URL",
  "IDEMPOTENCY_KEY_REUSED",
  "PAYLOAD_TOO_LARGE",
  "UPGRADE_REQUIRED",
  "RATE_LIMITED",
  "INTERNAL_ERROR",
  "CLOUDFLARE_ERROR",
  "BUSY",
  "WATCH_LINK_NOT_FOUND",
  "NOTHING_TO_PLAY",
  "SERVICE_UNAVAILABLE",
  "DEVICE_TOKENS_DISABLED",
  "WEBHOOKS_DISABLED",
  // Realtime SFU rooms (docs/realtime.md)
  "SESSION_NOT_FOUND",
  "TRACK_NOT_FOUND",
  "PUBLISH_FORBIDDEN",
  "PULL_FORBIDDEN",
  "INVALID_SDP",
  "REALTIME_TRACK_FAILED",
  "REALTIME_REFUSED",
  "REALTIME_ERROR",
  "REALTIME_DISABLED",
  "RECORDING_NOT_FOUND",
]);
export type ApiErrorCode = z.infer<typeof ApiErrorCode>;

/** The error envelope of every failure; each operation narrows `error` to its own codes per status. */
export const ErrorBody = z.object({ error: z.string().describe("A stable, machine-readable code"), message: z.string() });

export const HealthAnswer = z.object({ ok: z.literal(true) });

export const AppKeyAnswer = z.object({
  packageName: PackageName,
  apiKey: z.string().regex(/^sc_[A-Za-z0-9_-]{40}$/).describe("Shown only in this answer; stored only as a salted hash"),
});

export const AppRemovedAnswer = z.object({ success: z.literal(true), packageName: PackageName });

export const DeviceTokenAnswer = z.object({ userId: UserId, token: z.string().describe("HS256 JWT for the device"), expiresAt: IsoDate });

export const UserGrantAnswer = z.object({
  userId: UserId,
  packageName: PackageName,
  token: z.string().describe("Send as X-User-Grant when starting or joining this user's stream"),
  expiresAt: IsoDate,
});

/** One recording of a stream (a Cloudflare video of its live input): src/stream/recording-store.ts. */
export const Recording = z.object({
  recordingId: z.string().describe("The Cloudflare video uid"),
  state: z.enum(["recording", "processing", "ready", "error", "deleted"]),
  startedAt: IsoDate.nullable(),
  endedAt: IsoDate.nullable().describe("null while recording"),
  durationSeconds: z.number().min(0).nullable().describe("Seconds of media, once Cloudflare knows it"),
  hlsUrl: PlaybackUrl.describe("Only once ready"),
  dashUrl: PlaybackUrl.describe("Only once ready"),
  thumbnailUrl: PlaybackUrl.describe("Only once ready"),
  expiresAt: IsoDate.nullable().describe("When it is deleted (RECORDING_RETENTION_DAYS after it became ready, or the stream's deleteRecordingAfterDays if sooner)"),
});
export const StreamSnapshot = z
  .object({
    streamId: StreamId,
    status: SdkStreamStatus.describe("The MentraOS SDK's status"),
    state: z.enum(STREAM_STATUSES).describe("The internal state (adds `reconnecting`)"),
    message: z.string(),
    hlsUrl: PlaybackUrl,
    dashUrl: PlaybackUrl,
    webrtcUrl: PlaybackUrl.describe("WHEP; only for ingest `webrtc` (`null` otherwise, as hlsUrl/dashUrl are for `webrtc`)"),
    previewUrl: PlaybackUrl,
    thumbnailUrl: PlaybackUrl,
    ingestProtocol: IngestProtocol.describe("How the glasses publish (chosen when the stream was created)"),
    ingest: z.enum(["connected", "disconnected", "idle"]).describe("As last seen at Cloudflare"),
    viewers: z.number().int().min(0).describe("Apps with an open viewer socket or realtime room session (join holds do not count)"),
    deviceConnected: z.boolean(),
    createdAt: IsoDate,
    stoppedAt: IsoDate.nullable(),
    latestRecording: Recording.optional().describe("The newest ready recording, once there is one (all of them: GET /api/streams/{streamId}/recordings)"),
  })
  .describe("What apps see of a stream. Ingest credentials are never part of it.");
export type StreamSnapshot = z.infer<typeof StreamSnapshot>;

export const RecordingList = z.array(Recording).describe("Oldest first");
export const RecordingDeleted = z.object({ success: z.literal(true), recordingId: z.string(), message: z.string() });
export const VideoWebhookAnswer = z.object({ ok: z.literal(true), streamId: StreamId.nullable(), applied: z.boolean(), reason: z.string().optional() });

export const StartStreamAnswer = StreamSnapshot.extend({
  created: z.boolean().describe("true: a stream was created (201); false: the app joined the user's running stream (200)"),
  restreamResults: z.array(RestreamResult).optional().describe("One per restreamDestinations entry, in order, when any were given"),
});

export const TicketAnswer = z.object({ ticket: z.string().regex(/^tk_/).describe("Single use, for `?ticket=` on the viewer socket"), expiresAt: IsoDate });

export const OutputAdded = z.object({ success: z.literal(true), outputId: z.string(), message: z.literal("Output added successfully") });

export const OutputView = z.object({
  outputId: z.string(),
  url: z.string().describe("As given for the app that added it; stream key and user-info masked (`****`) for others"),
  name: z.string().nullable(),
  addedBy: PackageName,
  status: z.enum(["active", "connecting", "error", "unknown"]),
  error: z.string().nullable(),
  enabled: z.boolean(),
});
export type OutputView = z.infer<typeof OutputView>;
type SameAs<A, B> = [A] extends [B] ? ([B] extends [A] ? true : never) : never;
const outputStatusesMatch: SameAs<OutputView["status"], OutputStatus> = true;
void outputStatusesMatch;

export const OutputList = z.object({
  streamId: StreamId,
  outputs: z.array(OutputView),
  total: z.number().int().min(0),
  maxPerStream: z.number().int(),
  maxPerApp: z.number().int(),
});

/** GET /api/streams: one stream the app takes part in. */
export const StreamListItem = StreamSnapshot.extend({
  userId: UserId.describe("Whose stream it is (the app joined it with that user's grant)"),
  joinedAt: IsoDate.describe("When this app first joined it"),
});

const NextCursor = z.string().nullable().describe("Pass as `cursor` for the next page; null on the last page");

export const StreamList = z.object({
  streams: z.array(StreamListItem).describe("Newest join first; running streams and, for 24 h, stopped ones"),
  nextCursor: NextCursor,
});

/** GET /api/admin/streams: one running stream, as an operator sees it. */
export const AdminStreamListItem = StreamSnapshot.extend({
  userId: UserId,
  createdBy: PackageName.describe("The app whose start created it"),
  participants: z.array(PackageName).describe("Every app that joined it"),
  outputs: z.array(OutputView).describe("Every output, each stream key masked (as for an app that added none)"),
});
export type AdminStreamListItem = z.infer<typeof AdminStreamListItem>;

export const AdminStreamList = z.object({
  streams: z.array(AdminStreamListItem).describe("Newest first: every stream that is initializing, running or stopping"),
  nextCursor: NextCursor,
});

export const OutputRemoved = z.object({
  success: z.literal(true),
  message: z.enum(["Output removed successfully", "Output removal accepted; Cloudflare will confirm it shortly"]),
});

export const OutputToggled = z.object({ success: z.literal(true), message: z.enum(["Output enabled", "Output disabled"]) });

export const DeviceStreamInfo = z.object({
  streamId: StreamId,
  status: z.enum(STREAM_STATUSES).describe("The internal state (may be `reconnecting`)"),
  start: StartRtmpStream.nullable().describe("The device socket's start_rtmp_stream message; `null` while the stream is not running"),
});
export type DeviceStreamInfo = z.infer<typeof DeviceStreamInfo>;

export const WebhookAnswer = z.union([
  z.object({
    ok: z.literal(true),
    streamId: StreamId,
    applied: z.boolean(),
    reason: z.string().optional().describe("Why the event was not applied (still a 200, so Cloudflare does not retry)"),
  }),
  z.object({ ok: z.literal(true), test: z.literal(true) }).describe("The answer to Cloudflare's destination test"),
]);

const Count = z.number().int().min(0);
const When = IsoDate.nullable().describe("When this last moved; null: never since countingSince");

/** GET /api/admin/stats: what a production deployment watches (docs/deploy.md). Counts are cumulative since countingSince. */
export const AdminStats = z.object({
  generatedAt: IsoDate,
  countingSince: IsoDate.nullable(),
  budget: z.object({
    limitPer5Min: Count,
    pollLimitPer5Min: Count,
    usedLast5Min: Count,
    blockedUntil: IsoDate.nullable().describe("While Cloudflare rate-limits us: until when calls are held back"),
    refusals: z.object({ user: Count, cleanup: Count, poll: Count }),
    unavailable: Count,
    lastRefusalAt: When,
  }),
  cloudflare: z.object({
    rateLimited: Count,
    lastRateLimitedAt: When,
    failures: z.object({ server: Count, client: Count, unreachable: Count }),
    lastFailureAt: When,
  }),
  leakSweep: z.object({
    runs: Count,
    failedRuns: Count,
    lastRunAt: When,
    lastRun: z.object({ checked: Count, deleted: Count, failed: Count }).nullable(),
    inputsDeleted: Count,
    outputsDeleted: Count,
    deleteFailures: Count,
  }),
  webhooks: z.object({
    accepted: Count,
    tests: Count,
    rejected: z.object({ unauthorized: Count, invalidPayload: Count, unknownInput: Count, disabled: Count }),
    failed: Count,
    lastAcceptedAt: When,
    lastRejectedAt: When,
  }),
});

// ── Watch links and analytics (issue 14) ─────────────────────────────────────────────────────────

const WatchKey = z.string().regex(/^[A-Za-z0-9_-]{24}$/).describe("Opaque (nanoid, never derived from the user id)");

export const WatchLinkAnswer = z.object({
  userId: UserId,
  watchKey: WatchKey,
  watchUrl: z.url().describe("`<origin>/w/<watchKey>`: JSON for programs, the watch page for browsers"),
});

export const WatchAnswer = z
  .object({
    state: z.enum(["live", "reconnecting", "offline"]).describe("`live`: ingest connected; `reconnecting`: the stream runs, its glasses dropped; `offline`: anything else"),
    streamId: StreamId.nullable().describe("The user's running stream, else their last one; `null` if none"),
    hlsUrl: PlaybackUrl.describe("While live or reconnecting"),
    dashUrl: PlaybackUrl,
    webrtcUrl: PlaybackUrl.describe("WHEP playback, while live or reconnecting, for a stream ingested over WebRTC (WHIP), which has no HLS or DASH"),
    thumbnailUrl: PlaybackUrl,
    latestRecording: Recording.nullable().describe("The stream's newest ready recording (as GET /api/streams/{streamId}/recordings shows it), or null"),
  })
  .describe("A watch link resolved now (never cached)");

const Series = z.array(z.number());
export const StreamAnalytics = z
  .object({
    streamId: StreamId,
    state: z.enum(STREAM_STATUSES),
    peakViewers: Count.describe("Most apps viewing at once"),
    uniqueViewers: Count.describe("Distinct apps that viewed"),
    viewerMinutes: z.number().min(0).describe("Apps viewing × minutes"),
    liveSeconds: Count.describe("Seconds the input was connected while the stream ran"),
    reconnects: Count.describe("Connects after the first"),
    liveViewers: z
      .object({ peak: Count, last: Count.nullable(), lastAt: IsoDate.nullable() })
      .describe("Cloudflare's live (human) viewer count, read with the status polls while live"),
    timeline: z
      .object({
        start: IsoDate,
        bucketSeconds: z.number().int().min(60).describe("60, doubled each time 720 points would be exceeded (neighbours merged)"),
        maxViewers: Series,
        meanViewers: Series.describe("Time-weighted mean of apps viewing over the bucket"),
        ingestUpSeconds: Series,
        liveViewers: z.array(z.number().nullable()).describe("Highest live-viewer reading in the bucket; null: none taken"),
      })
      .describe("At most 720 points, one array per measure (compact: a full timeline is about 15 KB)"),
    watchLink: z.object({
      hits: Count.describe("Watch pages and video.m3u8 requests of the user's watch link resolved to this stream"),
      uniqueVisitors: Count.describe("Distinct visitors by a keyed hash of the address (linear counting over 4,096 bits)"),
      countries: z.array(z.object({ country: z.string(), hits: Count, uniqueVisitors: Count })).max(50),
      otherHits: Count.describe("Hits from countries beyond the first 50 seen"),
    }),
  })
  .describe("Analytics of one stream, kept as long as its record");

/** /openapi.json and /asyncapi.json describe themselves only as documents. */
export const SpecDocument = z.record(z.string(), z.unknown());
