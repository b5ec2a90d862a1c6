import { ApiError, runtimeUnavailable, type Failure, type Result } from "../http/errors";
import { addRestreamDestinations } from "../outputs/restream-destinations";
import type { ParsedRtmpUrl } from "../outputs/rtmp-url";
import type { AppMessage, ManagedStreamRequest, ManagedStreamRequestAnswer, ProtocolError } from "../schemas/protocol";
import type { StreamContext } from "./context";
import { send } from "./sockets";
import type { StreamViews } from "./views";

/** What a request from an app's socket may do to the stream: the same operations REST calls reach. */
export interface AppRequestHandlers {
  join(packageName: string): Promise<Result<object>>;
  addOutput(packageName: string, url: ParsedRtmpUrl, name: string | null): Promise<Result<{ outputId: string }>>;
  leave(packageName: string): Promise<unknown>;
}

/**
 * The app socket's requests, as the MentraOS SDK sends them. Each follows the rules, limits and
 * answers of its REST twin: `managed_stream_request` = `POST /api/streams` for this stream (one start
 * counted against the app's per-minute limit, a join, then each restream destination as
 * `POST /outputs`); `managed_stream_stop` = `DELETE /api/streams/:id`; `stream_status_check` is
 * answered with the SDK's `stream_status_check_response`.
 */
export class AppRequests {
  constructor(
    private readonly s: StreamContext,
    private readonly views: StreamViews,
    private readonly handlers: AppRequestHandlers,
  ) {}

  async handle(ws: WebSocket, packageName: string, message: AppMessage): Promise<void> {
    switch (message.type) {
      case "stream_status_check": {
        const record = this.s.store.get();
        if (record) send(ws, this.views.statusCheckResponse(record));
        return;
      }
      case "managed_stream_stop":
        await this.handlers.leave(packageName);
        return;
      case "managed_stream_request":
        return this.request(ws, packageName, message);
    }
  }

  private async request(ws: WebSocket, packageName: string, message: ManagedStreamRequest): Promise<void> {
    const start = await this.countStart(packageName);
    if (!start.ok) return this.refuse(ws, packageName, start);
    // Re-checked after the await above: the stream may have begun stopping meanwhile.
    const joined = await this.handlers.join(packageName);
    if (!joined.ok) return this.refuse(ws, packageName, joined);
    const destinations = message.restreamDestinations;
    const restreamResults = await addRestreamDestinations(destinations ?? [], (url, name) => this.handlers.addOutput(packageName, url, name));
    const record = this.s.store.get();
    if (!record) return;
    const answer: ManagedStreamRequestAnswer = { ...this.views.statusMessage(record, packageName), ...(destinations ? { restreamResults } : {}) };
    send(ws, answer);
  }

  /** The app's per-minute start limit lives in its AppAccount (seed 004), as for REST starts. */
  private async countStart(packageName: string): Promise<Result<object>> {
    try {
      return await this.s.env.APPS.getByName(packageName).consumeStreamStart(this.s.config.streamStartsPerMinute);
    } catch (error) {
      // The account is unreachable: refuse now (the app may retry) rather than start uncounted.
      return (runtimeUnavailable(error) ?? new ApiError(503, "SERVICE_UNAVAILABLE", "The service is briefly unavailable; retry shortly", 1)).toFailure();
    }
  }

  /**
   * A refused request gets our stable error frame, then a `managed_stream_status` `error` on this socket
   * alone: the SDK's `startManagedStream()` then rejects at once with the reason instead of timing out
   * after 30 s. The next push tells the stream's real status again.
   */
  private refuse(ws: WebSocket, packageName: string, failure: Failure): void {
    const error: ProtocolError = { type: "error", error: failure.error, message: failure.message };
    if (failure.retryAfter !== undefined) error.retryAfter = failure.retryAfter;
    send(ws, error);
    const record = this.s.store.get();
    if (record) send(ws, { ...this.views.statusMessage(record, packageName), status: "error", message: `${failure.error}: ${failure.message}` });
  }
}
