import type { IngestProtocol } from "../cloudflare/playback";
import type { RecordingSettings } from "../cloudflare/stream-api";
import { fail, type Failure, type Result } from "../http/errors";

/**
 * What the stream's ingest protocol allows (docs/api.md, "Ingest protocols"). A Cloudflare live input
 * takes RTMPS, SRT and WHIP alike; what it then gives depends on what was published. SRT keeps all that
 * RTMPS gives. A WHIP (WebRTC) input plays only over WHEP and has no recording, no HLS/DASH and no
 * outputs (Cloudflare Stream WebRTC docs, Limitations): we refuse those up front instead of accepting
 * an output that would never relay or a recording that would never be made.
 */

export const DEFAULT_INGEST: IngestProtocol = "rtmp";

/** Recording default: automatic, stopping 30 s after the input goes idle (seed 000); off for WebRTC. */
export function recordingFor(ingest: IngestProtocol, requested: RecordingSettings | undefined): Result<{ recording: RecordingSettings }> {
  if (ingest !== "webrtc") return { ok: true, recording: requested ?? { mode: "automatic", timeoutSeconds: 30 } };
  if (requested && requested.mode !== "off") {
    return fail(400, "INVALID_REQUEST", 'recording: a stream ingested over WebRTC cannot be recorded (Cloudflare records RTMPS and SRT only); use mode "off" or another ingest');
  }
  return { ok: true, recording: { mode: "off" } };
}

/** Restream outputs need an RTMPS or SRT ingest: Cloudflare does not simulcast WHIP inputs. */
export function outputsRefusal(ingest: IngestProtocol): Failure | null {
  if (ingest !== "webrtc") return null;
  return fail(409, "OUTPUTS_UNSUPPORTED", "This stream is ingested over WebRTC, which Cloudflare cannot restream; start the stream with ingest rtmp or srt to add outputs");
}
