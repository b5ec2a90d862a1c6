/**
 * What the room needs from an SDP offer: the media kind of each m-section, by its `a=mid`. Two line
 * prefixes (RFC 8866 `m=`, RFC 8843 `a=mid:`) are all it reads, so no SDP library is pulled into the
 * Worker for it; the SFU validates the rest.
 */
export type MediaKind = "audio" | "video";

export function kindsByMid(sdp: string): Map<string, string> {
  const kinds = new Map<string, string>();
  let kind: string | null = null;
  for (const line of sdp.split(/\r?\n/)) {
    if (line.startsWith("m=")) kind = line.slice(2).split(" ")[0] ?? null;
    else if (line.startsWith("a=mid:") && kind !== null) kinds.set(line.slice(6).trim(), kind);
  }
  return kinds;
}

export function isMediaKind(kind: string | undefined): kind is MediaKind {
  return kind === "audio" || kind === "video";
}
