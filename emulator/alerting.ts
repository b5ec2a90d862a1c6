// Cloudflare Notifications (alerting v3): webhook destinations and notification policies, enough of them
// for live-input notifications to be configured as in production (scripts/setup-cloudflare.ts). When a
// Stream live-input policy exists, the emulator's live-input webhooks follow it (core.ts, webhookTargets).
// Web APIs only, like core.ts.

import { ApiError, ErrorCode } from "./envelope.ts";
import { uid as newId } from "./ids.ts";

/** The alert type of Stream live-input notifications (the `cloudflare` SDK's PolicyCreateParams.alert_type). */
export const STREAM_LIVE_ALERT_TYPE = "stream_live_notifications";
/** The events a stream_live_notifications policy may filter on (`filters.event_type`). */
export const STREAM_LIVE_EVENTS = ["live_input.connected", "live_input.disconnected", "live_input.errored"] as const;

/**
 * The body Cloudflare POSTs to a generic webhook when it is created or updated ("Save and Test"; Notifications,
 * "Configure webhooks"). The destination is only saved if the URL answers it with a 2xx.
 */
export const DESTINATION_TEST_BODY = {
  text: "Hello World! This is a test message sent from https://cloudflare.com. If you can see this, your webhook is configured properly.",
};

export interface WebhookDestinationRecord {
  id: string;
  name: string;
  url: string;
  /** Sent as `cf-webhook-auth`; never returned by the API (Cloudflare: "Secrets are not returned in any API response body"). */
  secret: string | null;
  createdAt: string;
  lastSuccess: string | null;
  lastFailure: string | null;
}

export interface PolicyRecord {
  id: string;
  name: string;
  description: string;
  alertType: string;
  enabled: boolean;
  /** As given: `{webhooks?: [{id}], email?: [{id}], pagerduty?: [{id}]}`. */
  mechanisms: Record<string, { id: string }[]>;
  /** As given: each filter is a list of strings. */
  filters: Record<string, string[]>;
  alertInterval: string | null;
  created: string;
  modified: string;
}

export interface AlertingState {
  destinations: Map<string, WebhookDestinationRecord>;
  policies: Map<string, PolicyRecord>;
}

export function emptyAlerting(): AlertingState {
  return { destinations: new Map(), policies: new Map() };
}

function invalid(message: string): never {
  throw new ApiError(400, ErrorCode.Validation, message);
}

// ---------------------------------------------------------------- destinations

export function parseDestinationBody(body: Record<string, unknown>): { name: string; url: string; secret: string | null } {
  const { name, url, secret } = body;
  if (typeof name !== "string" || name.trim() === "") invalid("name is required and must be a non-empty string");
  if (name.length > 256) invalid("name must be at most 256 characters");
  if (typeof url !== "string" || url === "") invalid("url is required and must be a string");
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    invalid("url must be an absolute http:// or https:// URL");
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") invalid("url must be an absolute http:// or https:// URL");
  if (secret !== undefined && secret !== null && typeof secret !== "string") invalid("secret must be a string");
  return { name, url, secret: typeof secret === "string" && secret !== "" ? secret : null };
}

export function newDestination(fields: { name: string; url: string; secret: string | null }, nowIso: string): WebhookDestinationRecord {
  return { id: newId(), ...fields, createdAt: nowIso, lastSuccess: null, lastFailure: null };
}

/** The SDK's `Webhooks` shape; Cloudflare never returns the secret. */
export function renderDestination(d: WebhookDestinationRecord): Record<string, unknown> {
  return {
    id: d.id,
    name: d.name,
    type: "generic",
    url: d.url,
    created_at: d.createdAt,
    ...(d.lastSuccess ? { last_success: d.lastSuccess } : {}),
    ...(d.lastFailure ? { last_failure: d.lastFailure } : {}),
  };
}

// ---------------------------------------------------------------- policies

export interface PolicyFields {
  name?: string;
  description?: string;
  alertType?: string;
  enabled?: boolean;
  mechanisms?: Record<string, { id: string }[]>;
  filters?: Record<string, string[]>;
  alertInterval?: string | null;
}

/** Validates a policy body; `create` requires alert_type, enabled, mechanisms and name (the SDK's PolicyCreateParams). */
export function parsePolicyBody(body: Record<string, unknown>, create: boolean, destinations: Map<string, WebhookDestinationRecord>): PolicyFields {
  const out: PolicyFields = {};
  const { name, description, alert_type, enabled, mechanisms, filters, alert_interval } = body;
  if (create || name !== undefined) {
    if (typeof name !== "string" || name.trim() === "") invalid("name is required and must be a non-empty string");
    out.name = name;
  }
  if (description !== undefined) {
    if (typeof description !== "string") invalid("description must be a string");
    out.description = description;
  }
  if (create || alert_type !== undefined) {
    if (typeof alert_type !== "string" || !/^[a-z0-9_]+$/.test(alert_type)) invalid("alert_type is required and must be an alert type such as stream_live_notifications");
    out.alertType = alert_type;
  }
  if (create || enabled !== undefined) {
    if (typeof enabled !== "boolean") invalid("enabled is required and must be a boolean");
    out.enabled = enabled;
  }
  if (create || mechanisms !== undefined) {
    if (typeof mechanisms !== "object" || mechanisms === null || Array.isArray(mechanisms)) invalid("mechanisms is required and must be an object");
    const parsed: Record<string, { id: string }[]> = {};
    for (const [kind, list] of Object.entries(mechanisms as Record<string, unknown>)) {
      if (kind !== "webhooks" && kind !== "email" && kind !== "pagerduty") invalid(`mechanisms.${kind} is not a mechanism (webhooks, email, pagerduty)`);
      if (!Array.isArray(list)) invalid(`mechanisms.${kind} must be an array of {id}`);
      parsed[kind] = list.map((entry, i) => {
        const id = (entry as { id?: unknown } | null)?.id;
        if (typeof id !== "string" || id === "") invalid(`mechanisms.${kind}[${i}].id must be a string`);
        if (kind === "webhooks" && !destinations.has(id)) invalid(`mechanisms.webhooks[${i}].id: no webhook destination ${id}`);
        return { id };
      });
    }
    out.mechanisms = parsed;
  }
  if (filters !== undefined) {
    if (typeof filters !== "object" || filters === null || Array.isArray(filters)) invalid("filters must be an object of string arrays");
    const parsed: Record<string, string[]> = {};
    for (const [key, list] of Object.entries(filters as Record<string, unknown>)) {
      if (!Array.isArray(list) || list.some((v) => typeof v !== "string")) invalid(`filters.${key} must be an array of strings`);
      parsed[key] = [...(list as string[])];
    }
    out.filters = parsed;
  }
  if (alert_interval !== undefined) {
    if (alert_interval !== null && typeof alert_interval !== "string") invalid("alert_interval must be a string");
    out.alertInterval = alert_interval as string | null;
  }
  return out;
}

/** Checks what only makes sense for Stream live-input policies, on the policy as it will be saved. */
export function checkStreamLiveFilters(policy: PolicyRecord): void {
  if (policy.alertType !== STREAM_LIVE_ALERT_TYPE) return;
  for (const event of policy.filters.event_type ?? []) {
    if (!(STREAM_LIVE_EVENTS as readonly string[]).includes(event)) invalid(`filters.event_type: ${event} is not a live input event (${STREAM_LIVE_EVENTS.join(", ")})`);
  }
  for (const id of policy.filters.input_id ?? []) {
    if (!/^[0-9a-f]{32}$/i.test(id)) invalid(`filters.input_id: ${id} is not a live input uid`);
  }
}

export function newPolicy(fields: PolicyFields, nowIso: string): PolicyRecord {
  return {
    id: newId(),
    name: fields.name!,
    description: fields.description ?? "",
    alertType: fields.alertType!,
    enabled: fields.enabled!,
    mechanisms: fields.mechanisms ?? {},
    filters: fields.filters ?? {},
    alertInterval: fields.alertInterval ?? null,
    created: nowIso,
    modified: nowIso,
  };
}

export function applyPolicyPatch(policy: PolicyRecord, fields: PolicyFields, nowIso: string): PolicyRecord {
  const next: PolicyRecord = { ...policy, modified: nowIso };
  if (fields.name !== undefined) next.name = fields.name;
  if (fields.description !== undefined) next.description = fields.description;
  if (fields.alertType !== undefined) next.alertType = fields.alertType;
  if (fields.enabled !== undefined) next.enabled = fields.enabled;
  if (fields.mechanisms !== undefined) next.mechanisms = fields.mechanisms;
  if (fields.filters !== undefined) next.filters = fields.filters;
  if (fields.alertInterval !== undefined) next.alertInterval = fields.alertInterval;
  return next;
}

/** The SDK's `Policy` shape. */
export function renderPolicy(p: PolicyRecord): Record<string, unknown> {
  return {
    id: p.id,
    name: p.name,
    description: p.description,
    alert_type: p.alertType,
    enabled: p.enabled,
    mechanisms: p.mechanisms,
    filters: p.filters,
    ...(p.alertInterval !== null ? { alert_interval: p.alertInterval } : {}),
    created: p.created,
    modified: p.modified,
  };
}

/** Whether a live-input policy fires for this input and event (no filter = every input / every event). */
export function policyMatches(policy: PolicyRecord, inputId: string, event: string): boolean {
  if (!policy.enabled || policy.alertType !== STREAM_LIVE_ALERT_TYPE) return false;
  const events = policy.filters.event_type ?? [];
  const inputs = policy.filters.input_id ?? [];
  return (events.length === 0 || events.includes(event)) && (inputs.length === 0 || inputs.some((id) => id.toLowerCase() === inputId.toLowerCase()));
}
