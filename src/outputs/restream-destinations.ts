import type { Result } from "../http/errors";
import type { RestreamResult } from "../schemas/protocol";
import { parseRtmpUrl, type ParsedRtmpUrl } from "./rtmp-url";

/**
 * `restreamDestinations` of a start (REST `POST /api/streams` or the socket's `managed_stream_request`):
 * each destination passes the same rules and limits as `POST /outputs`, in order, and each gets its own
 * result; one refused destination does not undo or stop the others.
 */
export async function addRestreamDestinations(
  destinations: readonly { url?: unknown; name?: string }[],
  add: (url: ParsedRtmpUrl, name: string | null) => Promise<Result<{ outputId: string }>>,
): Promise<RestreamResult[]> {
  const results: RestreamResult[] = [];
  for (const destination of destinations) {
    const parsed = parseRtmpUrl(destination.url);
    if (!parsed.ok) {
      results.push({ url: typeof destination.url === "string" ? destination.url : null, success: false, error: "INVALID_URL", message: parsed.message });
      continue;
    }
    const added = await add(parsed.url, destination.name ?? null);
    results.push(
      added.ok
        ? { url: parsed.url.original, success: true, outputId: added.outputId }
        : { url: parsed.url.original, success: false, error: added.error, message: added.message },
    );
  }
  return results;
}
