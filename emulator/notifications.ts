// Cloudflare Notifications (alerting v3) as the emulator serves them: webhook destinations (tested on
// create and update) and policies, and where each live-input event goes (alerting.ts is the model).

import {
  DESTINATION_TEST_BODY,
  STREAM_LIVE_ALERT_TYPE,
  applyPolicyPatch,
  checkStreamLiveFilters,
  emptyAlerting,
  newDestination,
  newPolicy,
  parseDestinationBody,
  parsePolicyBody,
  policyMatches,
  renderDestination,
  renderPolicy,
  type AlertingState,
} from "./alerting.ts";
import { ApiError, ErrorCode, ok, readJsonObject } from "./envelope.ts";
import type { EmulatorConfig } from "./types.ts";
import type { InputError, LiveInputEvent, WebhookSender, WebhookTarget } from "./webhooks.ts";

export interface NotificationsDeps {
  config: EmulatorConfig;
  webhooks: WebhookSender;
  iso: () => string;
  changed: () => void;
}

export class Notifications {
  state: AlertingState = emptyAlerting();

  constructor(private readonly deps: NotificationsDeps) {}

  /** `/alerting/v3/destinations/webhooks[/:id]` or `/alerting/v3/policies[/:id]`; null: method not allowed. */
  route(kind: string, method: string, id: string | undefined, request: Request): Promise<Response | null> {
    return kind === "policies" ? this.routePolicies(method, id, request) : this.routeDestinations(method, id, request);
  }

  /** Sends a live-input event to wherever it goes. */
  notify(uid: string, event: LiveInputEvent, error?: InputError): void {
    for (const target of this.targets(uid, event)) this.deps.webhooks.dispatch(target, uid, event, error);
  }

  /** Sends live_input.disconnected for inputs a restore disconnected, retrying until the receiver is up. */
  announceDisconnected(uids: string[], retryForMs: number, stillConnected: (uid: string) => boolean): void {
    for (const uid of uids) {
      if (stillConnected(uid)) continue;
      for (const target of this.targets(uid, "live_input.disconnected")) this.deps.webhooks.dispatch(target, uid, "live_input.disconnected", undefined, retryForMs);
    }
  }

  /** GET /__emulator/state's view: secrets included (the API never returns them). */
  view(): Record<string, unknown> {
    return {
      destinations: [...this.state.destinations.values()].map((d) => ({ ...renderDestination(d), secret: d.secret })),
      policies: [...this.state.policies.values()].map(renderPolicy),
      // Which decides where live-input webhooks go: a configured policy, or the built-in one (webhookUrl).
      liveInputWebhooks: [...this.state.policies.values()].some((p) => p.alertType === STREAM_LIVE_ALERT_TYPE)
        ? "policies"
        : this.deps.config.webhookUrl
          ? "webhookUrl"
          : "off",
    };
  }

  clear(): void {
    this.state = emptyAlerting();
  }

  /**
   * Where a live-input event goes. With at least one stream_live_notifications policy configured, exactly
   * where the policies say (each matching, enabled policy → each of its webhook destinations, with that
   * destination's secret), as at Cloudflare. With none, the built-in policy: the configured webhookUrl.
   */
  private targets(uid: string, event: LiveInputEvent): WebhookTarget[] {
    const { config } = this.deps;
    const livePolicies = [...this.state.policies.values()].filter((p) => p.alertType === STREAM_LIVE_ALERT_TYPE);
    if (livePolicies.length === 0) return config.webhookUrl ? [{ url: config.webhookUrl, secret: config.webhookSecret }] : [];
    const targets: WebhookTarget[] = [];
    for (const policy of livePolicies) {
      if (!policyMatches(policy, uid, event)) continue;
      for (const { id } of policy.mechanisms.webhooks ?? []) {
        const destination = this.state.destinations.get(id);
        if (!destination) continue;
        targets.push({
          url: destination.url,
          secret: destination.secret,
          policy: { id: policy.id, name: policy.name, accountId: config.accountId },
          onResult: (delivered, at) => {
            if (delivered) destination.lastSuccess = at;
            else destination.lastFailure = at;
          },
        });
      }
    }
    return targets;
  }

  private async routeDestinations(method: string, id: string | undefined, request: Request): Promise<Response | null> {
    const { destinations, policies } = this.state;
    const { iso, changed } = this.deps;
    if (id === undefined) {
      if (method === "GET") return ok([...destinations.values()].map(renderDestination));
      if (method !== "POST") return null;
      const fields = parseDestinationBody(await readJsonObject(request));
      await this.testDestination(fields.url, fields.secret);
      const created = newDestination(fields, iso());
      destinations.set(created.id, created);
      changed();
      return ok({ id: created.id });
    }
    const existing = destinations.get(id);
    if (!existing) throw new ApiError(404, ErrorCode.NotFound, `Webhook destination not found: ${id}`);
    if (method === "GET") return ok(renderDestination(existing));
    if (method === "PUT") {
      // The SDK's WebhookUpdateParams: name and url required, secret optional (absent: unchanged).
      const body = await readJsonObject(request);
      const fields = parseDestinationBody(body);
      const secret = body.secret === undefined ? existing.secret : fields.secret;
      await this.testDestination(fields.url, secret);
      destinations.set(id, { ...existing, name: fields.name, url: fields.url, secret });
      changed();
      return ok({ id });
    }
    if (method === "DELETE") {
      destinations.delete(id);
      // A policy keeps no reference to a destination that is gone.
      for (const [pid, p] of policies) {
        if (p.mechanisms.webhooks?.some((w) => w.id === id)) {
          policies.set(pid, { ...p, mechanisms: { ...p.mechanisms, webhooks: p.mechanisms.webhooks.filter((w) => w.id !== id) } });
        }
      }
      changed();
      return ok(null);
    }
    return null;
  }

  /** Cloudflare tests a generic webhook on create and update; the emulator does too, unless config turns it off. */
  private async testDestination(url: string, secret: string | null): Promise<void> {
    if (!this.deps.config.verifyWebhookDestinations) return;
    const result = await this.deps.webhooks.testDestination(url, secret, DESTINATION_TEST_BODY);
    if (!result.ok) {
      throw new ApiError(400, ErrorCode.DestinationTestFailed, `Webhook test failed: ${url} answered the test message with ${result.detail} (a 2xx is required)`);
    }
  }

  private async routePolicies(method: string, id: string | undefined, request: Request): Promise<Response | null> {
    const { destinations, policies } = this.state;
    const { iso, changed } = this.deps;
    if (id === undefined) {
      if (method === "GET") return ok([...policies.values()].map(renderPolicy));
      if (method !== "POST") return null;
      const created = newPolicy(parsePolicyBody(await readJsonObject(request), true, destinations), iso());
      checkStreamLiveFilters(created);
      policies.set(created.id, created);
      changed();
      return ok({ id: created.id });
    }
    const existing = policies.get(id);
    if (!existing) throw new ApiError(404, ErrorCode.NotFound, `Notification policy not found: ${id}`);
    if (method === "GET") return ok(renderPolicy(existing));
    if (method === "PUT") {
      const updated = applyPolicyPatch(existing, parsePolicyBody(await readJsonObject(request), false, destinations), iso());
      checkStreamLiveFilters(updated);
      policies.set(id, updated);
      changed();
      return ok({ id });
    }
    if (method === "DELETE") {
      policies.delete(id);
      changed();
      return ok(null);
    }
    return null;
  }
}
