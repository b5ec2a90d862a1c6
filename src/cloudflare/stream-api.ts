import { playbackBase } from "./playback";
import { Stream } from "cloudflare/resources/stream/stream";
import { createClient } from "cloudflare/tree-shakable";
import type { Config } from "../config";
import type { BudgetSettings, Grant, Priority } from "../budget/sliding-window";
import { ApiError } from "../http/errors";
import { CloudflareCallError, toCloudflareError } from "./call-error";
import { STAT } from "../ops/counters";

// The error mapping lives in call-error.ts; most callers import it from here with the API.
export { CloudflareCallError, toCloudflareError } from "./call-error";

/** The shared API budget every call passes (the ApiBudget object in production). */
export interface BudgetClient {
  acquire(priority: Priority, settings: BudgetSettings): Promise<Grant>;
  reportRateLimited(retryAfterSeconds: number): Promise<void>;
  /**
   * Counts an event for GET /api/admin/stats (ops/counters.ts). `rare`: write it now, off the caller's path;
   * otherwise it rides along with the next lease (refusals come in bursts exactly when the budget is full).
   */
  count?(name: string, rare: boolean): void;
}

/**
 * The only module that talks to Cloudflare Stream, always through the official SDK.
 *
 * Every call first takes a slot from the shared API budget (priority `user`, `cleanup` or `poll`).
 * SDK retries are off (`maxRetries: 0`) on purpose: its retry loop knows nothing of that budget, and blindly retrying a non-idempotent POST (output create) after a timeout can create a
 * duplicate. Callers decide: user-facing mutations fail fast and clean up; background work is retried
 * from the object's alarm schedule with backoff.
 */

/** Marks live inputs as ours so the leak sweep can find them without any other index. */
export const META_MARKER = "stream-coordinator";

export interface IngestCredentials {
  rtmpsUrl: string;
  rtmpsStreamKey: string;
  srtUrl: string | null;
  srtStreamId: string | null;
  srtPassphrase: string | null;
  whipUrl: string | null;
}

export interface CreatedLiveInput {
  uid: string;
  ingest: IngestCredentials;
}

export type IngestState = "connected" | "disconnected" | "idle";

export interface RemoteOutput {
  uid: string;
  url: string;
  streamKey: string;
  enabled: boolean;
  /** Emulator-only relay state; real Cloudflare has no per-output status. */
  relay?: { state: string; lastError: string | null };
}

export interface RecordingSettings {
  mode: "off" | "automatic";
  timeoutSeconds?: number;
  requireSignedURLs?: boolean;
  allowedOrigins?: string[];
}

/**
 * The SDK's tree-shakable client with only its Stream resource: the full client pulls in the whole
 * Cloudflare API (several MiB in the Worker bundle and seconds of start-up per test file).
 */
function streamClient(config: Config) {
  return createClient({
    resources: [Stream],
    apiToken: config.cloudflareApiToken || "unset",
    baseURL: config.cloudflareApiBaseUrl,
    maxRetries: 0,
    timeout: config.cloudflareTimeoutMs,
  });
}

export class StreamApi {
  private readonly client: ReturnType<typeof streamClient>;
  private readonly accountId: string;
  private readonly budgetSettings: BudgetSettings;
  private readonly config: Config;

  constructor(
    config: Config,
    private readonly budget: BudgetClient,
  ) {
    this.config = config;
    this.budgetSettings = { limit: config.apiBudgetPer5Min, pollShare: config.apiBudgetPollShare };
    this.client = streamClient(config);
    this.accountId = config.cloudflareAccountId || "unset";
  }

  async createLiveInput(input: {
    streamId: string;
    /** Kept in the input's meta, so an operator looking at the dashboard sees what the glasses publish with. */
    ingestProtocol: string;
    recording: RecordingSettings;
    deleteRecordingAfterDays: number | null;
  }): Promise<CreatedLiveInput> {
    const created = await this.call("user", () =>
      this.client.stream.liveInputs.create({
        account_id: this.accountId,
        meta: { name: `${META_MARKER}:${input.streamId}`, managedBy: META_MARKER, streamId: input.streamId, ingest: input.ingestProtocol },
        // Its recordings' `creator`: they can be found (GET /stream?creator=) after the input is gone and after any crash.
        defaultCreator: input.streamId,
        recording: input.recording,
        ...(input.deleteRecordingAfterDays !== null ? { deleteRecordingAfterDays: input.deleteRecordingAfterDays } : {}),
        enabled: true,
        // A retried create for the same stream returns the same input instead of making a second one.
        "Idempotency-Key": input.streamId,
      }),
    );
    return toCreatedLiveInput(created);
  }

  /** One live input with its ingest credentials: how a create whose answer was lost is adopted. */
  async getLiveInput(uid: string): Promise<CreatedLiveInput> {
    return toCreatedLiveInput(await this.call("user", () => this.client.stream.liveInputs.get(uid, { account_id: this.accountId })));
  }

  /**
   * Cloudflare's live (human) viewer count, `GET <delivery host>/<input uid>/views` → `{"liveViewers": N}`.
   * Not the REST API (no token, no SDK method), but paid from the same budget at `poll` priority, so it
   * is the first thing held back when the budget runs short.
   */
  async getLiveViewers(uid: string): Promise<number> {
    const base = playbackBase(this.config);
    if (!base) throw new CloudflareCallError("No delivery host configured (STREAM_CUSTOMER_CODE or STREAM_PLAYBACK_BASE_URL)", undefined);
    return this.call("poll", async () => {
      const res = await fetch(`${base}/${encodeURIComponent(uid)}/views`, { signal: AbortSignal.timeout(this.config.cloudflareTimeoutMs) });
      if (!res.ok) {
        await res.body?.cancel();
        throw new CloudflareCallError(`The delivery host answered ${res.status} for views`, res.status);
      }
      const n = ((await res.json().catch(() => null)) as { liveViewers?: unknown } | null)?.liveViewers;
      if (typeof n !== "number" || !Number.isInteger(n) || n < 0) throw new CloudflareCallError("The delivery host's views answer has no liveViewers count", 502);
      return n;
    });
  }

  async getIngestState(uid: string, priority: Priority = "user"): Promise<IngestState> {
    const input = await this.call(priority, () => this.client.stream.liveInputs.get(uid, { account_id: this.accountId }));
    return parseIngestState((input as { status?: unknown }).status);
  }

  /**
   * Deletes a live input; one that is already gone counts as deleted. An ambiguous failure is settled
   * by reading the input back (see `settled`).
   */
  async deleteLiveInput(uid: string): Promise<void> {
    await this.settled(
      () => this.callIgnoringNotFound("cleanup", () => this.client.stream.liveInputs.delete(uid, { account_id: this.accountId })),
      async () => {
        try {
          await this.call("cleanup", () => this.client.stream.liveInputs.get(uid, { account_id: this.accountId }));
          return false;
        } catch (error) {
          if (error instanceof CloudflareCallError && error.upstreamStatus === 404) return true;
          throw error;
        }
      },
    );
  }

  /** Our live inputs (by meta marker), for reconciliation and the leak sweep. */
  async listOurLiveInputs(): Promise<Array<{ uid: string; streamId: string | null; created: string | null }>> {
    const listed = await this.call("cleanup", () => this.client.stream.liveInputs.list({ account_id: this.accountId }));
    return (listed.liveInputs ?? [])
      .filter((input) => isOurs(input.meta))
      .map((input) => ({
        uid: input.uid ?? "",
        streamId: streamIdFromMeta(input.meta),
        created: input.created ?? null,
      }))
      .filter((input) => input.uid !== "");
  }

  async createOutput(liveInputUid: string, output: { url: string; streamKey: string; enabled: boolean }): Promise<RemoteOutput> {
    const created = await this.call("user", () =>
      this.client.stream.liveInputs.outputs.create(liveInputUid, { account_id: this.accountId, ...output }),
    );
    return toRemoteOutput(created);
  }

  async listOutputs(liveInputUid: string, priority: Priority = "cleanup"): Promise<RemoteOutput[]> {
    const outputs: RemoteOutput[] = [];
    const page = await this.call(priority, () => this.client.stream.liveInputs.outputs.list(liveInputUid, { account_id: this.accountId }));
    for (const output of page.result) outputs.push(toRemoteOutput(output));
    return outputs;
  }

  /** Sets an output's enabled flag; an ambiguous failure is settled by reading the flag back. */
  async setOutputEnabled(liveInputUid: string, outputUid: string, enabled: boolean): Promise<void> {
    await this.settled(
      async () => {
        await this.call("user", () =>
          this.client.stream.liveInputs.outputs.update(outputUid, { account_id: this.accountId, live_input_identifier: liveInputUid, enabled }),
        );
      },
      async () => (await this.listOutputs(liveInputUid, "user")).find((o) => o.uid === outputUid)?.enabled === enabled,
    );
  }

  /** Deletes an output; one already gone counts as deleted; an ambiguous failure is settled by listing. */
  async deleteOutput(liveInputUid: string, outputUid: string, priority: Priority = "user"): Promise<void> {
    await this.settled(
      () =>
        this.callIgnoringNotFound(priority, () =>
          this.client.stream.liveInputs.outputs.delete(outputUid, { account_id: this.accountId, live_input_identifier: liveInputUid }),
        ),
      async () => {
        try {
          return !(await this.listOutputs(liveInputUid, priority)).some((o) => o.uid === outputUid);
        } catch (error) {
          // The input itself is gone, and its outputs with it.
          if (error instanceof CloudflareCallError && error.upstreamStatus === 404) return true;
          throw error;
        }
      },
    );
  }

  /** Outputs first (they would keep restreaming for up to 30 s otherwise), then the input. Returns how many outputs it deleted. */
  async deleteLiveInputWithOutputs(liveInputUid: string): Promise<number> {
    let outputs: RemoteOutput[] = [];
    try {
      outputs = await this.listOutputs(liveInputUid, "cleanup");
    } catch (error) {
      if (!(error instanceof CloudflareCallError && error.upstreamStatus === 404)) throw error;
    }
    for (const output of outputs) await this.deleteOutput(liveInputUid, output.uid, "cleanup");
    await this.deleteLiveInput(liveInputUid);
    return outputs.length;
  }

  /** A budgeted SDK call for the other Cloudflare modules (cloudflare/video-api.ts); failures as `call`'s. */
  budgeted<T>(priority: Priority, fn: (client: ReturnType<typeof streamClient>, accountId: string) => PromiseLike<T>): Promise<T> {
    return this.call(priority, () => fn(this.client, this.accountId));
  }

  /** `settled` for the other Cloudflare modules: an idempotent mutation whose lost answer is settled by reading the truth. */
  settle(mutate: () => Promise<void>, applied: () => Promise<boolean>): Promise<void> {
    return this.settled(mutate, applied);
  }

  /**
   * Runs an idempotent mutation so that its outcome is known. When its answer is lost (timeout, dropped
   * connection, 5xx: the change may or may not have happened), the truth is read back; if the change
   * is not there, the mutation is sent once more (safe: it is idempotent) and, if that answer is lost
   * too, read back again. Only when the truth cannot be read does it throw, and then with an
   * ambiguous error (`definitelyNotApplied` false) so the caller keeps the work pending.
   */
  private async settled(mutate: () => Promise<void>, applied: () => Promise<boolean>): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await mutate();
      } catch (error) {
        const failure = toCloudflareError(error);
        if (failure.definitelyNotApplied) throw failure;
        if (await applied().catch(() => false)) return;
        if (attempt >= 1) throw failure;
      }
    }
  }

  /**
   * Runs an SDK call inside the budget and converts every failure into a 502 CLOUDFLARE_ERROR
   * (never a 500). A 429 from Cloudflare blocks the whole budget for its retry-after.
   */
  private async call<T>(priority: Priority, fn: () => PromiseLike<T>): Promise<T> {
    let grant: Grant;
    try {
      grant = await this.budget.acquire(priority, this.budgetSettings);
    } catch {
      // Nothing was sent: a definite "not applied", retried like a budget deferral.
      this.budget.count?.(STAT.budgetUnavailable, false);
      throw new CloudflareCallError("Cloudflare API budget unavailable; retry shortly", undefined, 1, 1_000);
    }
    if (!grant.granted) {
      this.budget.count?.(STAT.budgetRefused(priority), false);
      const seconds = Math.ceil(grant.retryAfterMs / 1000);
      throw new CloudflareCallError(`Cloudflare API budget exhausted; retry in ${seconds} s`, undefined, seconds, grant.retryAfterMs);
    }
    try {
      return await fn();
    } catch (error) {
      const cf = toCloudflareError(error);
      // A 429 is counted by the budget itself (reportRateLimited); a 404 is an answer (already gone), not a failure.
      if (cf.upstreamStatus === 429) await this.budget.reportRateLimited(cf.retryAfter ?? 300).catch(() => undefined);
      else if (cf.upstreamStatus !== 404) {
        const s = cf.upstreamStatus;
        this.budget.count?.(STAT.cloudflareFailed(s === undefined ? "unreachable" : s >= 500 ? "server" : "client"), true);
      }
      throw cf;
    }
  }

  private async callIgnoringNotFound(priority: Priority, fn: () => PromiseLike<unknown>): Promise<void> {
    try {
      await this.call(priority, fn);
    } catch (error) {
      if (error instanceof CloudflareCallError && error.upstreamStatus === 404) return;
      throw error;
    }
  }
}

/**
 * Live input status comes in two shapes (BRIEF §1): a flat string (SDK/spec) or
 * `{current:{state}}` (seed 000). Both are read; null or absent means the input never connected.
 */
export function parseIngestState(status: unknown): IngestState {
  if (status === null || status === undefined) return "idle";
  const label =
    typeof status === "string"
      ? status
      : typeof status === "object" && status !== null
        ? String((status as { current?: { state?: unknown } }).current?.state ?? "")
        : "";
  switch (label) {
    case "connected":
    case "reconnected":
      return "connected";
    case "":
      return "idle";
    default:
      // reconnecting, client_disconnect, ttl_exceeded, failed_to_*, disconnected, new_configuration_accepted
      return "disconnected";
  }
}

function toCreatedLiveInput(input: { uid?: string; rtmps?: { url?: string; streamKey?: string }; srt?: { url?: string; streamId?: string; passphrase?: string }; webRTC?: { url?: string } }): CreatedLiveInput {
  if (!input.uid || !input.rtmps?.url || !input.rtmps.streamKey) {
    throw new ApiError(502, "CLOUDFLARE_ERROR", "Cloudflare returned a live input without ingest credentials");
  }
  return {
    uid: input.uid,
    ingest: {
      rtmpsUrl: input.rtmps.url,
      rtmpsStreamKey: input.rtmps.streamKey,
      srtUrl: input.srt?.url ?? null,
      srtStreamId: input.srt?.streamId ?? null,
      srtPassphrase: input.srt?.passphrase ?? null,
      whipUrl: input.webRTC?.url ?? null,
    },
  };
}

function isOurs(meta: unknown): boolean {
  return typeof meta === "object" && meta !== null && (meta as Record<string, unknown>).managedBy === META_MARKER;
}

function streamIdFromMeta(meta: unknown): string | null {
  const value = typeof meta === "object" && meta !== null ? (meta as Record<string, unknown>).streamId : null;
  return typeof value === "string" ? value : null;
}

function toRemoteOutput(output: unknown): RemoteOutput {
  const o = (output ?? {}) as Record<string, unknown>;
  const relay = o.relay as RemoteOutput["relay"] | undefined;
  return {
    uid: String(o.uid ?? ""),
    url: String(o.url ?? ""),
    streamKey: String(o.streamKey ?? ""),
    enabled: o.enabled !== false,
    ...(relay && typeof relay === "object" ? { relay } : {}),
  };
}
