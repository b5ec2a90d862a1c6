import { z } from "zod";

/**
 * The realtime room's REST bodies and answers (src/http/realtime-routes.ts): the Realtime SFU's own
 * shapes, as partytracks' client sends and reads them (`sessions/new`, `tracks/new`, `tracks/close`,
 * `renegotiate`, `generate-ice-servers`, `GET sessions/:id`). Unknown fields are dropped.
 */

/** An SDP blob: at most 64 KiB (the room's body limit), and it must look like SDP. */
const Sdp = z
  .string()
  .max(64 * 1024)
  .refine((sdp) => /^v=0\r?\n/.test(sdp), { message: "is not an SDP session description (it must start with v=0)" });

export const SessionDescription = z.object({ type: z.enum(["offer", "answer"]), sdp: Sdp });
const OfferDescription = z.object({ type: z.literal("offer"), sdp: Sdp });

const TrackName = z.string().min(1).max(256);
const SessionIdField = z.string().min(1).max(128);
const Mid = z.string().min(1).max(32);

export const LocalTrack = z.object({ location: z.literal("local"), mid: Mid, trackName: TrackName });
export const RemoteTrack = z.object({ location: z.literal("remote"), sessionId: SessionIdField, trackName: TrackName });

export const NewSessionBody = z.object({ sessionDescription: OfferDescription.optional() });

/** Either the glasses' local tracks with their offer, or an app's pulls of the publisher's tracks. */
export const NewTracksBody = z.union([
  z.object({ sessionDescription: OfferDescription, tracks: z.array(LocalTrack).min(1).max(64) }),
  z.object({ tracks: z.array(RemoteTrack).min(1).max(64) }),
]);
export type NewTracksBody = z.infer<typeof NewTracksBody>;

export const RenegotiateBody = z.object({ sessionDescription: SessionDescription });

export const CloseTracksBody = z.object({
  tracks: z.array(z.object({ mid: Mid })).min(1).max(64),
  sessionDescription: OfferDescription.optional(),
  force: z.boolean().optional(),
});

// ── Answers ───────────────────────────────────────────────────────────────────────────────────

const AnswerDescription = z.object({ type: z.enum(["offer", "answer"]), sdp: z.string() });

export const RealtimeTrack = z.object({
  location: z.enum(["local", "remote"]).optional(),
  mid: z.string().optional(),
  trackName: z.string().optional(),
  sessionId: z.string().optional(),
  status: z.string().optional().describe("GET sessions/:id only: active, inactive or waiting"),
});

export const NewSessionAnswer = z.object({ sessionId: z.string(), sessionDescription: AnswerDescription.optional() });

export const TracksAnswer = z.object({
  requiresImmediateRenegotiation: z.boolean(),
  sessionDescription: AnswerDescription.optional(),
  tracks: z.array(RealtimeTrack),
});

export const RenegotiateAnswer = z.object({ sessionDescription: AnswerDescription.optional() });

export const SessionAnswer = z.object({ sessionId: z.string(), tracks: z.array(RealtimeTrack) });

export const IceServersAnswer = z.object({
  iceServers: z.array(
    z.object({ urls: z.union([z.string(), z.array(z.string())]), username: z.string().optional(), credential: z.string().optional() }),
  ),
});

/** Body limit of the room's routes: SDP is larger than the API's usual 16 KiB. */
export const REALTIME_MAX_BODY_BYTES = 96 * 1024;
