import { APIConnectionError, APIError } from "cloudflare/error";
import { ApiError } from "../http/errors";

/**
 * What a failed Cloudflare call means for the caller (docs/architecture.md, "Lost answers"): refused (a 4xx,
 * a 429, or our budget held it back: certainly not applied) or lost (a timeout, a dropped connection, a 5xx:
 * it may have happened). Every SDK error is mapped to one CloudflareCallError, answered as 502 CLOUDFLARE_ERROR.
 */
export class CloudflareCallError extends ApiError {
  constructor(
    message: string,
    /** HTTP status from Cloudflare, or undefined for timeouts and dropped connections. */
    readonly upstreamStatus: number | undefined,
    retryAfter?: number,
    /** Set when our own budget deferred the call (nothing was sent): when to try again. */
    readonly budgetDeferralMs?: number,
  ) {
    super(502, "CLOUDFLARE_ERROR", message, retryAfter);
  }

  /**
   * True when Cloudflare certainly did not apply the request: our budget held it back, or Cloudflare
   * answered 4xx (refused or rate-limited). A 5xx, timeout or dropped connection may hide a success.
   */
  get definitelyNotApplied(): boolean {
    const s = this.upstreamStatus;
    return this.budgetDeferralMs !== undefined || (s !== undefined && s >= 400 && s < 500);
  }

  /** A 4xx other than 408/429 means Cloudflare refused the request itself: retrying will not help. */
  get isPermanent(): boolean {
    const s = this.upstreamStatus;
    return s !== undefined && s >= 400 && s < 500 && s !== 408 && s !== 429;
  }
}

export function toCloudflareError(error: unknown): CloudflareCallError {
  if (error instanceof CloudflareCallError) return error;
  if (error instanceof APIConnectionError) {
    return new CloudflareCallError(`Cloudflare Stream unreachable: ${error.message}`, undefined);
  }
  if (error instanceof APIError) {
    const retryAfter = Number(error.headers?.get?.("retry-after") ?? NaN);
    const detail = firstErrorMessage(error.errors) ?? error.message;
    return new CloudflareCallError(
      `Cloudflare Stream returned ${error.status ?? "an error"}: ${detail}`,
      error.status,
      Number.isFinite(retryAfter) ? retryAfter : undefined,
    );
  }
  return new CloudflareCallError(`Cloudflare Stream call failed: ${error instanceof Error ? error.message : String(error)}`, undefined);
}

function firstErrorMessage(errors: unknown): string | undefined {
  if (!Array.isArray(errors) || errors.length === 0) return undefined;
  const first = errors[0] as { code?: unknown; message?: unknown };
  return typeof first.message === "string" ? `${first.message}${first.code !== undefined ? ` (code ${first.code})` : ""}` : undefined;
}
