import { deleteVideo, listAllVideos } from "../cloudflare/video-api";
import type { StreamApi } from "../cloudflare/stream-api";
import type { Env } from "../env";
import { StreamId } from "../schemas/api";
import type { SweepReport } from "./leak-sweep";

/**
 * The leak sweep's second half: zero orphaned videos, like zero orphaned inputs. Every video whose `creator`
 * is a streamId (our live inputs set `defaultCreator`) is put to its stream object, which adopts it if it had
 * not learned it yet and answers keep or delete: delete when the stream is unknown there (never existed, or
 * purged with all its recordings), or the recording is past its retention or was deleted by us. Videos younger
 * than LEAK_SWEEP_MINUTES are left alone (a capture may be on its way), and so is any video whose creator is
 * not one of our streamIds. One listing per run (oldest first, up to 1000), one delete per leaked video.
 */
export async function sweepVideos(env: Env, api: StreamApi, now: number, maxAgeMs: number, report: SweepReport): Promise<void> {
  for (const video of await listAllVideos(api, "cleanup")) {
    if (!video.creator || !StreamId.safeParse(video.creator).success) continue;
    report.videosChecked += 1;
    if (now - (video.created ?? now) <= maxAgeMs) continue;
    const verdict = await env.STREAMS.getByName(video.creator).sweepRecording(video);
    if (verdict === "keep") continue;
    try {
      await deleteVideo(api, video.uid, "cleanup");
      report.videosDeleted.push(video.uid);
    } catch (error) {
      report.failed.push(video.uid);
      console.error("leak sweep could not delete a video", error instanceof Error ? error.message : error);
    }
  }
}
