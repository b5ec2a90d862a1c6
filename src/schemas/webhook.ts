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

/**
 * Cloudflare's test message, POSTed when a webhook destination is created or updated: a `text` and no
 * `data` (a notification always has `data`). Answered 200 `{ok: true, test: true}` (http/stream-webhook.ts).
 */
export const WebhookTestMessage = z
  .object({ text: z.string(), data: z.never().optional() })
  .describe("Cloudflare's destination test: a text and no data");
