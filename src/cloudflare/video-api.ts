import { CloudflareCallError, type StreamApi } from "./stream-api";
import type { Priority } from "../budget/sliding-window";

/**
 * Stream videos: the recordings of our live inputs, through the SDK (a raw call for an input's `/videos`,
 * which the SDK 7.3 has no method for). Each call is one budgeted request; a video delete is settled like
 * an output's (a lost answer is resolved by reading the video back).
 */
export interface RemoteVideo {
  uid: string;
  creator: string | null;
  liveInput: string | null;
  /** Cloudflare's `status.state`: live-inprogress, inprogress, queued, …, ready, error. */
  state: string;
  created: number | null;
  readyAt: number | null;
  durationSeconds: number | null;
  hlsUrl: string | null;
  dashUrl: string | null;
  thumbnailUrl: string | null;
  errorReason: string | null;
}

export function toRemoteVideo(raw: unknown): RemoteVideo | null {
  if (typeof raw !== "object" || raw === null) return null;
  const v = raw as Record<string, unknown>;
  if (typeof v.uid !== "string" || v.uid === "") return null;
  const status = (typeof v.status === "object" && v.status !== null ? v.status : {}) as Record<string, unknown>;
  const playback = (typeof v.playback === "object" && v.playback !== null ? v.playback : {}) as Record<string, unknown>;
  const str = (x: unknown) => (typeof x === "string" && x !== "" ? x : null);
  const time = (x: unknown) => (typeof x === "string" && !Number.isNaN(Date.parse(x)) ? Date.parse(x) : null);
  const reason = [str(status.errorReasonCode), str(status.errorReasonText)].filter(Boolean).join(": ");
  return {
    uid: v.uid,
    creator: str(v.creator),
    liveInput: str(v.liveInput),
    state: str(status.state) ?? "queued",
    created: time(v.created),
    readyAt: time(v.readyToStreamAt),
    durationSeconds: typeof v.duration === "number" && v.duration >= 0 ? v.duration : null,
    hlsUrl: str(playback.hls),
    dashUrl: str(playback.dash),
    thumbnailUrl: str(v.thumbnail),
    errorReason: reason || null,
  };
}

/** The videos of one live input (`GET /live_inputs/:uid/videos`); a deleted input answers 404 (thrown). */
export async function listInputVideos(api: StreamApi, liveInputUid: string, priority: Priority): Promise<RemoteVideo[]> {
  const body = await api.budgeted(priority, (client, account) => client.get(`/accounts/${account}/stream/live_inputs/${liveInputUid}/videos`));
  return toVideos((body as { result?: unknown })?.result);
}

/** Every video whose creator is `creator` (our streamId), newest first, up to 1000 (one call). */
export async function listVideosByCreator(api: StreamApi, creator: string, priority: Priority): Promise<RemoteVideo[]> {
  const page = await api.budgeted(priority, (client, account_id) => client.stream.list({ account_id, creator }));
  return toVideos(page.result);
}

/** The account's videos, oldest first (the likeliest leaks), up to 1000: for the leak sweep. */
export async function listAllVideos(api: StreamApi, priority: Priority): Promise<RemoteVideo[]> {
  const page = await api.budgeted(priority, (client, account_id) => client.stream.list({ account_id, asc: true }));
  return toVideos(page.result);
}

/** One video, or null when Cloudflare says it does not exist (404). */
export async function getVideo(api: StreamApi, uid: string, priority: Priority): Promise<RemoteVideo | null> {
  try {
    return toRemoteVideo(await api.budgeted(priority, (client, account_id) => client.stream.get(uid, { account_id })));
  } catch (error) {
    if (error instanceof CloudflareCallError && error.upstreamStatus === 404) return null;
    throw error;
  }
}

/** Deletes a video; one already gone counts as deleted; a lost answer is settled by reading it back. */
export async function deleteVideo(api: StreamApi, uid: string, priority: Priority): Promise<void> {
  await api.settle(
    async () => {
      try {
        await api.budgeted(priority, (client, account_id) => client.stream.delete(uid, { account_id }));
      } catch (error) {
        if (error instanceof CloudflareCallError && error.upstreamStatus === 404) return;
        throw error;
      }
    },
    async () => (await getVideo(api, uid, priority)) === null,
  );
}

function toVideos(list: unknown): RemoteVideo[] {
  return Array.isArray(list) ? list.map(toRemoteVideo).filter((v): v is RemoteVideo => v !== null) : [];
}
