import { z } from "zod";

/** Cloudflare Notifications payload for `stream_live_notifications` (BRIEF §1). */
export const LiveInputWebhook = z.object({
  name: z.string().optional(),
  text: z.string().optional(),
  data: z.object({
    notification_name: z.string().optional(),
    input_id: z.string().regex(/^[0-9a-f]{32}$/i, "must be a live input uid (32 hex characters)"),
    event_type: z.enum(["live_input.connected", "live_input.disconnected", "live_input.errored"]),
    updated_at: z.string().optional(),
    live_input_errored: z
      .object({
        error: z.object({ code: z.string().optional(), message: z.string().optional() }).optional(),
        video_codec: z.string().optional(),
        audio_codec: z.string().optional(),
      })
      .optional(),
  }),
  ts: z.number().optional(),
});
export type LiveInputWebhook = z.infer<typeof LiveInputWebhook>;
