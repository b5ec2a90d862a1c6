#!/usr/bin/env -S npx tsx
// `npm run setup:cloudflare`: configures Cloudflare to send live-input notifications to the deployed Worker,
// through the `cloudflare` SDK's Notifications (alerting v3) API, idempotently (docs/deploy.md):
//
//   1. exactly one webhook destination of ours, `<name> webhook #<fingerprint>`, POSTing to
//      `<WORKER_URL>/api/webhooks/cloudflare-stream` with WEBHOOK_SECRET (Cloudflare sends it back as
//      `cf-webhook-auth`);
//   2. exactly one notification policy of ours, `<name> live inputs`, alert type `stream_live_notifications`,
//      events live_input.connected / .disconnected / .errored, sending to that destination only.
//
// Running it again changes nothing unless something differs (each object is reported as created, updated,
// kept or deleted). Cloudflare never returns a destination's secret, so the destination's name carries a
// fingerprint of it (HMAC-SHA-256 keyed with the secret, 48 bits): a new WEBHOOK_SECRET changes the
// fingerprint and the destination is updated in place.
//
// Env: CLOUDFLARE_API_TOKEN (Account · Notifications · Edit), CLOUDFLARE_ACCOUNT_ID, WORKER_URL (the Worker's
// public URL), WEBHOOK_SECRET (the Worker's, 16+ characters); optional CLOUDFLARE_API_BASE_URL (the emulator:
// http://127.0.0.1:8788/client/v4) and NOTIFICATION_NAME (default `stream-coordinator`; one per deployment
// sharing an account). Flags: --dry-run (report, change nothing), --no-preflight, --worker-url <url>, --help.
// Exit codes: 0 done, 1 Cloudflare or the Worker refused, 2 bad or missing settings.

import { realpathSync } from "node:fs";
import { fileURLToPath } from "node:url";
import Cloudflare from "cloudflare";
import { APIConnectionError, APIError } from "cloudflare/error";

export const ALERT_TYPE = "stream_live_notifications";
export const LIVE_INPUT_EVENTS = ["live_input.connected", "live_input.disconnected", "live_input.errored"] as const;
export const WEBHOOK_PATH = "/api/webhooks/cloudflare-stream";
export const DEFAULT_NAME = "stream-coordinator";
export const MIN_SECRET_LENGTH = 16;
const DEFAULT_API_BASE = "https://api.cloudflare.com/client/v4";

/** Cloudflare's test message for a generic webhook ("Configure webhooks"), sent here as a preflight. */
const TEST_MESSAGE = { text: "Hello World! This is a test message sent from https://cloudflare.com. If you can see this, your webhook is configured properly." };

export type Action = "created" | "updated" | "kept" | "deleted";

export interface Change {
  kind: "webhook destination" | "notification policy";
  action: Action;
  id: string | null;
  name: string;
  detail: string;
}

export interface SetupOptions {
  client: Cloudflare;
  accountId: string;
  /** The Worker's public base URL (or the full webhook URL). */
  workerUrl: string;
  secret: string;
  name?: string;
  dryRun?: boolean;
  log?: (line: string) => void;
}

export interface SetupReport {
  webhookUrl: string;
  destinationId: string | null;
  policyId: string | null;
  changes: Change[];
  warnings: string[];
}

/** A failure the CLI prints as is (exit 1: Cloudflare or the Worker said no; exit 2: bad settings). */
export class SetupError extends Error {
  constructor(
    message: string,
    readonly exitCode: 1 | 2 = 1,
  ) {
    super(message);
    this.name = "SetupError";
  }
}

/** `<base>/api/webhooks/cloudflare-stream`; a URL that already ends with the path is taken as is. */
export function webhookUrlFor(workerUrl: string): string {
  let url: URL;
  try {
    url = new URL(workerUrl);
  } catch {
    throw new SetupError(`WORKER_URL is not an absolute URL: ${JSON.stringify(workerUrl)} (e.g. https://stream-coordinator.<subdomain>.workers.dev)`, 2);
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") throw new SetupError(`WORKER_URL must be an http(s) URL, got ${url.protocol}`, 2);
  if (url.search || url.hash) throw new SetupError("WORKER_URL must be the Worker's base URL, without a query or fragment", 2);
  if (url.username || url.password) throw new SetupError("WORKER_URL must not carry credentials", 2);
  const base = url.pathname.replace(/\/+$/, "");
  const path = base.endsWith(WEBHOOK_PATH) ? base : `${base}${WEBHOOK_PATH}`;
  return `${url.origin}${path}`;
}

/** 12 hex characters of HMAC-SHA-256(secret, label): names the secret without revealing it. */
export async function secretFingerprint(secret: string): Promise<string> {
  const enc = new TextEncoder();
  const key = await crypto.subtle.importKey("raw", enc.encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  const mac = new Uint8Array(await crypto.subtle.sign("HMAC", key, enc.encode("stream-coordinator webhook destination secret v1")));
  return [...mac.slice(0, 6)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

export const destinationPrefix = (name: string) => `${name} webhook`;
export const policyNameFor = (name: string) => `${name} live inputs`;

/** Ensures our one webhook destination and our one live-input policy; see the file header. */
export async function setupLiveInputNotifications(options: SetupOptions): Promise<SetupReport> {
  const { client, accountId, secret } = options;
  const name = options.name ?? DEFAULT_NAME;
  const dryRun = options.dryRun ?? false;
  const log = options.log ?? (() => undefined);
  const webhookUrl = webhookUrlFor(options.workerUrl);
  if (secret.length < MIN_SECRET_LENGTH) throw new SetupError(`WEBHOOK_SECRET must be at least ${MIN_SECRET_LENGTH} characters (e.g. openssl rand -hex 32)`, 2);
  const report: SetupReport = { webhookUrl, destinationId: null, policyId: null, changes: [], warnings: [] };
  const record = (change: Change) => {
    report.changes.push(change);
    const verb = dryRun && change.action !== "kept" ? `would be ${change.action}` : change.action;
    log(`  ${change.kind.padEnd(20)} ${verb.padEnd(16)} ${change.id ?? "(new)"}  ${change.name}${change.detail ? `  ${change.detail}` : ""}`);
  };
  const warn = (line: string) => {
    report.warnings.push(line);
    log(`  warning: ${line}`);
  };

  // ── 1. the webhook destination ─────────────────────────────────────────────────────────────────
  const fingerprint = await secretFingerprint(secret);
  const prefix = destinationPrefix(name);
  const destinationName = `${prefix} #${fingerprint}`;
  const destinations = await collect(client.alerting.destinations.webhooks.list({ account_id: accountId }), "list webhook destinations");
  const ours = destinations.filter((d) => d.name === prefix || (d.name ?? "").startsWith(`${prefix} #`));
  // Keep the one that already matches best (same URL and secret, then same URL); others are duplicates of ours.
  ours.sort((a, b) => score(b) - score(a));
  function score(d: (typeof destinations)[number]): number {
    return (d.url === webhookUrl ? 2 : 0) + (d.name === destinationName ? 1 : 0);
  }
  const keep = ours[0];
  let destinationId: string | null = keep?.id ?? null;
  if (!keep) {
    if (!dryRun) {
      const created = await call(
        () => client.alerting.destinations.webhooks.create({ account_id: accountId, name: destinationName, url: webhookUrl, secret }),
        "create the webhook destination",
        webhookUrl,
      );
      destinationId = created.id ?? null;
    }
    record({ kind: "webhook destination", action: "created", id: destinationId, name: destinationName, detail: `→ ${webhookUrl}` });
  } else if (keep.url !== webhookUrl || keep.name !== destinationName) {
    const why = [keep.url !== webhookUrl ? `url ${keep.url} → ${webhookUrl}` : null, keep.name !== destinationName ? "new WEBHOOK_SECRET" : null].filter(Boolean).join(", ");
    if (!dryRun) {
      await call(
        () => client.alerting.destinations.webhooks.update(keep.id!, { account_id: accountId, name: destinationName, url: webhookUrl, secret }),
        "update the webhook destination",
        webhookUrl,
      );
    }
    record({ kind: "webhook destination", action: "updated", id: keep.id ?? null, name: destinationName, detail: `(${why})` });
  } else {
    record({ kind: "webhook destination", action: "kept", id: keep.id ?? null, name: destinationName, detail: `→ ${webhookUrl}` });
  }
  report.destinationId = destinationId;

  // ── 2. the notification policy ────────────────────────────────────────────────────────────────
  const policyName = policyNameFor(name);
  const description = `Live input connected/disconnected/errored events for the Stream Coordinator Worker (${webhookUrl}). Managed by npm run setup:cloudflare.`;
  const filters = { event_type: [...LIVE_INPUT_EVENTS] };
  const policies = await collect(client.alerting.policies.list({ account_id: accountId }), "list notification policies");
  const livePolicies = policies.filter((p) => p.alert_type === ALERT_TYPE);
  const ourPolicies = livePolicies.filter((p) => p.name === policyName);
  const policy = ourPolicies.find((p) => destinationId !== null && p.mechanisms?.webhooks?.some((w) => w.id === destinationId)) ?? ourPolicies[0];
  const mechanisms = { ...(policy?.mechanisms ?? {}), webhooks: destinationId ? [{ id: destinationId }] : [] };
  let policyId: string | null = policy?.id ?? null;
  if (!policy) {
    if (!dryRun) {
      const created = await call(
        () =>
          client.alerting.policies.create({ account_id: accountId, alert_type: ALERT_TYPE, name: policyName, description, enabled: true, mechanisms, filters }),
        "create the notification policy",
      );
      policyId = created.id ?? null;
    }
    record({ kind: "notification policy", action: "created", id: policyId, name: policyName, detail: `(${ALERT_TYPE}: ${LIVE_INPUT_EVENTS.join(", ")})` });
  } else {
    const differences = policyDifferences(policy, { destinationId, description, events: LIVE_INPUT_EVENTS });
    if (differences.length > 0) {
      if (!dryRun) {
        await call(
          () =>
            client.alerting.policies.update(policy.id!, { account_id: accountId, alert_type: ALERT_TYPE, name: policyName, description, enabled: true, mechanisms, filters }),
          "update the notification policy",
        );
      }
      record({ kind: "notification policy", action: "updated", id: policyId, name: policyName, detail: `(${differences.join(", ")})` });
    } else {
      record({ kind: "notification policy", action: "kept", id: policyId, name: policyName, detail: `(${ALERT_TYPE}: ${LIVE_INPUT_EVENTS.join(", ")})` });
    }
  }
  report.policyId = policyId;

  // ── 3. duplicates of ours (an interrupted earlier run, a copy made in the dashboard) ────────────
  for (const extra of ourPolicies.filter((p) => p !== policy)) {
    if (!dryRun) await call(() => client.alerting.policies.delete(extra.id!, { account_id: accountId }), "delete a duplicate notification policy");
    record({ kind: "notification policy", action: "deleted", id: extra.id ?? null, name: extra.name ?? "", detail: "(duplicate)" });
  }
  for (const extra of ours.slice(1)) {
    if (!dryRun) await call(() => client.alerting.destinations.webhooks.delete(extra.id!, { account_id: accountId }), "delete a duplicate webhook destination");
    record({ kind: "webhook destination", action: "deleted", id: extra.id ?? null, name: extra.name ?? "", detail: `(duplicate → ${extra.url})` });
  }
  // Someone else's live-input policies are left alone; one that also sends to our destination doubles every event.
  for (const other of livePolicies.filter((p) => !ourPolicies.includes(p))) {
    const toUs = destinationId !== null && other.mechanisms?.webhooks?.some((w) => w.id === destinationId);
    warn(
      toUs
        ? `policy "${other.name}" (${other.id}) also sends live-input events to our destination: the Worker receives each event twice (remove it from that policy)`
        : `another live-input policy exists, left alone: "${other.name}" (${other.id})`,
    );
  }
  return report;
}

type PolicyLike = { enabled?: boolean; description?: string; mechanisms?: { webhooks?: { id?: string }[] }; filters?: { event_type?: string[]; input_id?: string[] } };

function policyDifferences(policy: PolicyLike, want: { destinationId: string | null; description: string; events: readonly string[] }): string[] {
  const out: string[] = [];
  if (policy.enabled !== true) out.push("was disabled");
  const hooks = (policy.mechanisms?.webhooks ?? []).map((w) => w.id);
  if (hooks.length !== 1 || hooks[0] !== want.destinationId) out.push("webhook destinations");
  const events = [...(policy.filters?.event_type ?? [])].sort();
  if (events.join(",") !== [...want.events].sort().join(",")) out.push("events");
  // Our inputs are created per stream, so a fixed input_id list would leave new streams without webhooks.
  if ((policy.filters?.input_id ?? []).length > 0) out.push("input filter removed");
  if ((policy.description ?? "") !== want.description) out.push("description");
  return out;
}

async function collect<T>(pages: AsyncIterable<T>, what: string): Promise<T[]> {
  return call(async () => {
    const all: T[] = [];
    for await (const item of pages) all.push(item);
    return all;
  }, what);
}

let describeContext = { accountId: "", apiBase: DEFAULT_API_BASE };

/** Runs one Cloudflare call; a failure becomes a SetupError that says what to fix. */
async function call<T>(fn: () => PromiseLike<T>, what: string, webhookUrl?: string): Promise<T> {
  try {
    return await fn();
  } catch (error) {
    throw new SetupError(describeFailure(error, what, webhookUrl));
  }
}

export function describeFailure(error: unknown, what: string, webhookUrl?: string): string {
  const { accountId, apiBase } = describeContext;
  if (error instanceof APIConnectionError) {
    return `Could not ${what}: the Cloudflare API at ${apiBase} is unreachable (${error.message})`;
  }
  if (!(error instanceof APIError)) return `Could not ${what}: ${error instanceof Error ? error.message : String(error)}`;
  const errors = Array.isArray(error.errors) ? (error.errors as { code?: number; message?: string }[]) : [];
  const detail = errors.map((e) => `${e.message ?? "error"}${e.code !== undefined ? ` (code ${e.code})` : ""}`).join("; ") || error.message;
  const head = `Cloudflare refused to ${what}: HTTP ${error.status ?? "?"}, ${detail}`;
  switch (error.status) {
    case 401:
    case 403:
      return `${head}.\n  The API token needs the permission "Account · Notifications · Edit" on account ${accountId} (and CLOUDFLARE_ACCOUNT_ID must be that account). See docs/deploy.md, "API tokens".`;
    case 404:
      return `${head}.\n  Check CLOUDFLARE_ACCOUNT_ID (${accountId}) and CLOUDFLARE_API_BASE_URL (${apiBase}).`;
    case 429: {
      const retryAfter = error.headers?.get?.("retry-after");
      return `${head}.\n  Rate limited${retryAfter ? `: retry in ${retryAfter} s` : ""}.`;
    }
    case 400:
      if (webhookUrl) {
        return `${head}.\n  Cloudflare POSTs a test message to ${webhookUrl} and keeps the destination only if it answers 2xx: deploy the Worker first (npm run deploy) with the same WEBHOOK_SECRET (npx wrangler secret put WEBHOOK_SECRET).`;
      }
      return `${head}.`;
    default:
      return `${head}.`;
  }
}

/**
 * Sends Cloudflare's test message to the Worker with our secret before changing anything: a Worker that
 * is not deployed, or has another WEBHOOK_SECRET, is reported here in our words instead of as Cloudflare's 400.
 */
export async function preflight(webhookUrl: string, secret: string, fetchImpl: typeof fetch = fetch): Promise<void> {
  let res: Response;
  try {
    res = await fetchImpl(webhookUrl, {
      method: "POST",
      headers: { "content-type": "application/json", "cf-webhook-auth": secret },
      body: JSON.stringify(TEST_MESSAGE),
      signal: AbortSignal.timeout(15_000),
    });
  } catch (error) {
    throw new SetupError(`The Worker is not reachable at ${webhookUrl} (${error instanceof Error ? error.message : String(error)}): deploy it first (npm run deploy), or pass --no-preflight`);
  }
  const body = await res.text().catch(() => "");
  if (res.ok) return;
  let code = "";
  try {
    code = String((JSON.parse(body) as { error?: unknown }).error ?? "");
  } catch {
    // not our JSON
  }
  if (res.status === 401) throw new SetupError(`The Worker at ${webhookUrl} rejects this WEBHOOK_SECRET (401 ${code}): set the same value on both sides (npx wrangler secret put WEBHOOK_SECRET)`);
  if (code === "WEBHOOKS_DISABLED") throw new SetupError(`The Worker at ${webhookUrl} has no WEBHOOK_SECRET (503 WEBHOOKS_DISABLED): npx wrangler secret put WEBHOOK_SECRET`);
  throw new SetupError(`The Worker at ${webhookUrl} answered Cloudflare's test message with HTTP ${res.status}${code ? ` ${code}` : ""}: Cloudflare would refuse the destination`);
}

// ── CLI ─────────────────────────────────────────────────────────────────────────────────────────

const USAGE = `Usage: npm run setup:cloudflare [-- --dry-run] [--no-preflight] [--worker-url <url>]

Configures Cloudflare to send Stream live-input notifications to the Worker (docs/deploy.md).
  CLOUDFLARE_API_TOKEN     token with Account · Notifications · Edit
  CLOUDFLARE_ACCOUNT_ID    the account that owns the live inputs
  WORKER_URL               the Worker's public URL, e.g. https://stream-coordinator.<subdomain>.workers.dev
  WEBHOOK_SECRET           the Worker's WEBHOOK_SECRET (${MIN_SECRET_LENGTH}+ characters)
  CLOUDFLARE_API_BASE_URL  optional: another API base (the local emulator: http://127.0.0.1:8788/client/v4)
  NOTIFICATION_NAME        optional: name of our destination and policy (default ${DEFAULT_NAME})`;

export async function main(argv: string[], env: NodeJS.ProcessEnv, out: (line: string) => void, err: (line: string) => void): Promise<number> {
  const args = [...argv];
  let dryRun = false;
  let runPreflight = true;
  let workerUrl = env.WORKER_URL ?? "";
  while (args.length > 0) {
    const arg = args.shift()!;
    if (arg === "--dry-run") dryRun = true;
    else if (arg === "--no-preflight") runPreflight = false;
    else if (arg === "--worker-url") workerUrl = args.shift() ?? "";
    else if (arg.startsWith("--worker-url=")) workerUrl = arg.slice("--worker-url=".length);
    else if (arg === "--help" || arg === "-h") {
      out(USAGE);
      return 0;
    } else {
      err(`setup:cloudflare: unknown argument ${arg}\n${USAGE}`);
      return 2;
    }
  }
  const missing = [
    ["CLOUDFLARE_API_TOKEN", env.CLOUDFLARE_API_TOKEN],
    ["CLOUDFLARE_ACCOUNT_ID", env.CLOUDFLARE_ACCOUNT_ID],
    ["WORKER_URL", workerUrl],
    ["WEBHOOK_SECRET", env.WEBHOOK_SECRET],
  ]
    .filter(([, value]) => !value)
    .map(([key]) => key);
  if (missing.length > 0) {
    err(`setup:cloudflare: missing ${missing.join(", ")}\n${USAGE}`);
    return 2;
  }
  const apiBase = env.CLOUDFLARE_API_BASE_URL || DEFAULT_API_BASE;
  const accountId = env.CLOUDFLARE_ACCOUNT_ID!;
  const secret = env.WEBHOOK_SECRET!;
  describeContext = { accountId, apiBase };
  const name = env.NOTIFICATION_NAME || DEFAULT_NAME;
  try {
    const webhookUrl = webhookUrlFor(workerUrl);
    if (secret.length < MIN_SECRET_LENGTH) throw new SetupError(`WEBHOOK_SECRET must be at least ${MIN_SECRET_LENGTH} characters (e.g. openssl rand -hex 32)`, 2);
    const host = new URL(webhookUrl).hostname;
    if (new URL(webhookUrl).protocol === "http:" && !/^(localhost|127\.|\[::1\])/.test(host)) {
      out(`setup:cloudflare: warning: ${webhookUrl} is plain http; the webhook secret would cross the network in clear text`);
    }
    if (runPreflight) await preflight(webhookUrl, secret);
    const client = new Cloudflare({ apiToken: env.CLOUDFLARE_API_TOKEN!, baseURL: apiBase, maxRetries: 1, timeout: 30_000 });
    out(`Live-input notifications for account ${accountId} (${apiBase})${dryRun ? " — dry run, nothing is changed" : ""}:`);
    const report = await setupLiveInputNotifications({ client, accountId, workerUrl, secret, name, dryRun, log: out });
    const count = (action: Action) => report.changes.filter((c) => c.action === action).length;
    const verb = dryRun ? "to be " : "";
    out(
      `${dryRun ? "Dry run" : "Done"}: ${count("created")} ${verb}created, ${count("updated")} ${verb}updated, ${count("kept")} kept, ${count("deleted")} ${verb}deleted; ` +
        `Cloudflare sends live_input events to ${report.webhookUrl}.`,
    );
    return 0;
  } catch (error) {
    if (error instanceof SetupError) {
      err(`setup:cloudflare: ${error.message}`);
      return error.exitCode;
    }
    err(`setup:cloudflare: ${describeFailure(error, "finish")}`);
    return 1;
  }
}

function isMain(): boolean {
  const entry = process.argv[1];
  if (!entry) return false;
  try {
    return realpathSync(entry) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isMain()) {
  main(process.argv.slice(2), process.env, (line) => console.log(line), (line) => console.error(line)).then(
    (code) => process.exit(code),
    (error: unknown) => {
      console.error(`setup:cloudflare: ${error instanceof Error ? error.message : String(error)}`);
      process.exit(1);
    },
  );
}
