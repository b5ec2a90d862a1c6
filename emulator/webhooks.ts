// Live input notifications, shaped like Cloudflare Notifications' "Stream Live Input" webhook.

import type { WebhookDelivery } from "./types.ts";

export type LiveInputEvent = "live_input.connected" | "live_input.disconnected" | "live_input.errored";

export interface InputError {
  code: string;
  message: string;
}

/** A notification policy that routes an event (emulator/alerting.ts); without one, the emulator's built-in policy. */
export interface RoutingPolicy {
  id: string;
  name: string;
  accountId: string;
}

/** Where one live-input notification goes. */
export interface WebhookTarget {
  url: string;
  /** Sent as `cf-webhook-auth`; null: no header (a destination without a secret). */
  secret: string | null;
  policy?: RoutingPolicy;
  /** Told how the delivery went (a destination's last_success / last_failure). */
  onResult?: (ok: boolean, at: string) => void;
}

export function notificationBody(inputId: string, event: LiveInputEvent, nowMs: number, error?: InputError, policy?: RoutingPolicy): unknown {
  const updatedAt = new Date(nowMs).toISOString();
  const data: Record<string, unknown> = {
    notification_name: "Stream Live Input",
    input_id: inputId,
    event_type: event,
    updated_at: updatedAt,
  };
  if (event === "live_input.errored") {
    data.live_input_errored = {
      error: { code: error?.code ?? "ERR_UNKNOWN", message: error?.message ?? "Unknown error" },
      video_codec: "h264",
      audio_codec: "aac",
    };
  }
  return {
    // Cloudflare puts the notification policy's name here; the emulator's built-in policy is called "Stream Live Input".
    name: policy?.name ?? "Stream Live Input",
    // The documented format (Stream "Receive Live Webhooks"): one "Key: value" line each.
    text: `Notification type: Stream Live Input\nInput ID: ${inputId}\nEvent type: ${event}\nUpdated at: ${updatedAt}`,
    data,
    ts: Math.floor(nowMs / 1000),
    // A configured policy adds the generic webhook fields (Notifications, "Webhook payload schema").
    ...(policy
      ? { account_id: policy.accountId, policy_id: policy.id, policy_name: policy.name, alert_type: "stream_live_notifications" }
      : {}),
  };
}

const MAX_LOG = 1000;
const RETRY_INTERVAL_MS = 1000;

/** Sends webhooks fire-and-forget and keeps a delivery log; never throws into the caller. */
export class WebhookSender {
  private log: WebhookDelivery[] = [];
  private nextId = 1;
  private closed = false;
  private readonly retryTimers = new Set<{ timer: ReturnType<typeof setTimeout>; wake: () => void }>();

  constructor(
    private readonly send: (url: string, init: RequestInit) => Promise<Response>,
    private readonly track: (p: Promise<unknown>) => void,
    private readonly now: () => number,
  ) {}

  /**
   * With `retryForMs`, a delivery that fails (network error or 5xx) is retried every second for that long:
   * used for events the emulator announces at startup, when the receiver may not be up yet.
   */
  dispatch(target: WebhookTarget, inputId: string, event: LiveInputEvent, error?: InputError, retryForMs = 0): void {
    const { url, secret } = target;
    const nowMs = this.now();
    const payload = notificationBody(inputId, event, nowMs, error, target.policy);
    const entry: WebhookDelivery = {
      id: this.nextId++,
      time: new Date(nowMs).toISOString(),
      url,
      event,
      inputId,
      payload,
      status: null,
      error: null,
      pending: true,
    };
    this.log.push(entry);
    if (this.log.length > MAX_LOG) this.log.shift();
    const init: RequestInit = {
      method: "POST",
      headers: { "content-type": "application/json", ...(secret !== null ? { "cf-webhook-auth": secret } : {}) },
      body: JSON.stringify(payload),
    };
    const deadline = this.now() + retryForMs;
    const p = (async () => {
      try {
        for (;;) {
          if (retryForMs > 0) entry.attempts = (entry.attempts ?? 0) + 1;
          try {
            const res = await this.send(url, init);
            entry.status = res.status;
            entry.error = null;
            await res.body?.cancel().catch(() => undefined);
          } catch (e) {
            entry.status = null;
            entry.error = e instanceof Error ? e.message : String(e);
          }
          const failed = entry.error !== null || (entry.status ?? 0) >= 500;
          target.onResult?.(!failed && (entry.status ?? 0) < 300, new Date(this.now()).toISOString());
          if (!failed || this.closed || this.now() >= deadline) return;
          await this.pause(RETRY_INTERVAL_MS);
        }
      } finally {
        entry.pending = false;
      }
    })();
    this.track(p);
  }

  /**
   * POSTs a body given as a string (the video webhook: signed over these exact bytes), fire and forget, logged
   * with its headers and body so a test can replay it byte for byte.
   */
  dispatchRaw(url: string, event: string, ids: { inputId: string | null; videoId: string }, body: string, headers: Record<string, string>): void {
    const entry: WebhookDelivery = {
      id: this.nextId++,
      time: new Date(this.now()).toISOString(),
      url,
      event,
      inputId: ids.inputId,
      videoId: ids.videoId,
      payload: JSON.parse(body),
      headers: { ...headers },
      body,
      status: null,
      error: null,
      pending: true,
    };
    this.log.push(entry);
    if (this.log.length > MAX_LOG) this.log.shift();
    const p = (async () => {
      try {
        const res = await this.send(url, { method: "POST", headers: { "content-type": "application/json", ...headers }, body });
        entry.status = res.status;
        await res.body?.cancel().catch(() => undefined);
      } catch (e) {
        entry.error = e instanceof Error ? e.message : String(e);
      } finally {
        entry.pending = false;
      }
    })();
    this.track(p);
  }

  /**
   * Cloudflare's test message to a webhook destination being created or updated, awaited: the destination
   * is saved only if it answers 2xx. Logged like a notification (event `destination.test`, inputId null).
   */
  async testDestination(url: string, secret: string | null, body: unknown, timeoutMs = 10_000): Promise<{ ok: boolean; detail: string }> {
    const entry: WebhookDelivery = {
      id: this.nextId++,
      time: new Date(this.now()).toISOString(),
      url,
      event: "destination.test",
      inputId: null,
      payload: structuredClone(body),
      status: null,
      error: null,
      pending: true,
    };
    this.log.push(entry);
    if (this.log.length > MAX_LOG) this.log.shift();
    try {
      const res = await this.send(url, {
        method: "POST",
        headers: { "content-type": "application/json", ...(secret !== null ? { "cf-webhook-auth": secret } : {}) },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(timeoutMs),
      });
      entry.status = res.status;
      await res.body?.cancel().catch(() => undefined);
      return { ok: res.status >= 200 && res.status < 300, detail: `HTTP ${res.status}` };
    } catch (e) {
      entry.error = e instanceof Error ? e.message : String(e);
      return { ok: false, detail: entry.error };
    } finally {
      entry.pending = false;
    }
  }

  /** Stops retrying (server shutdown); deliveries under way finish on their own. */
  close(): void {
    this.closed = true;
    for (const t of this.retryTimers) {
      clearTimeout(t.timer);
      t.wake();
    }
    this.retryTimers.clear();
  }

  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const handle = { timer: setTimeout(() => done(), ms), wake: () => resolve() };
      const done = () => {
        this.retryTimers.delete(handle);
        resolve();
      };
      this.retryTimers.add(handle);
    });
  }

  deliveries(): WebhookDelivery[] {
    return this.log.map((d) => ({ ...d, payload: structuredClone(d.payload), ...(d.headers ? { headers: { ...d.headers } } : {}) }));
  }

  clear(): void {
    this.log = [];
  }
}
