// Codec filter for a receiving peer's offer (Node only, pure text). A forwarder does not transcode: a viewer
// must take exactly the publisher's codec. For H.264 that includes the profile-level-id: werift picks the first
// H.264 payload whose name matches, and a browser offers several profiles; a viewer negotiated to another
// profile than the one forwarded decodes nothing (BRIEF §6). So the offer is cut down, per media section of
// the forwarded kind, to the payload types of that codec (and profile), plus their RTX payloads.

export interface ForwardedCodec {
  kind: "audio" | "video";
  /** e.g. "video/H264", "video/VP8", "audio/opus" */
  mimeType: string;
  /** fmtp of the publisher's codec (for H.264: its profile-level-id must match). */
  parameters?: string;
}

export function profileLevelId(fmtp: string | undefined): string | null {
  const m = /profile-level-id=([0-9a-fA-F]{6})/.exec(fmtp ?? "");
  return m ? m[1]!.toLowerCase() : null;
}

/** The offer with only `codecs`' payload types left in each section of their kind; null if a section keeps none. */
export function filterOffer(sdp: string, forwarded: ForwardedCodec[]): string | null {
  const eol = sdp.includes("\r\n") ? "\r\n" : "\n";
  const [head, ...sections] = sdp.split(/\r?\nm=/);
  const out = [head!];
  for (const raw of sections) {
    const lines = `m=${raw}`.split(/\r?\n/).filter((l) => l !== "");
    const mline = lines[0]!.split(" ");
    const kind = mline[0]!.slice(2);
    const codec = forwarded.find((c) => c.kind === kind);
    if (!codec) {
      out.push(lines.join(eol));
      continue;
    }
    const rtpmap = new Map<string, string>();
    const fmtp = new Map<string, string>();
    for (const line of lines) {
      const r = /^a=rtpmap:(\d+) ([^/]+)\//.exec(line);
      if (r) rtpmap.set(r[1]!, r[2]!.toLowerCase());
      const f = /^a=fmtp:(\d+) (.*)$/.exec(line);
      if (f) fmtp.set(f[1]!, f[2]!);
    }
    const name = codec.mimeType.split("/")[1]!.toLowerCase();
    const wantProfile = name === "h264" ? profileLevelId(codec.parameters) : null;
    const keep = new Set(
      [...rtpmap].filter(([pt, n]) => n === name && (wantProfile === null || profileLevelId(fmtp.get(pt)) === wantProfile)).map(([pt]) => pt),
    );
    if (keep.size === 0) return null;
    for (const [pt, n] of rtpmap) {
      if (n === "rtx" && keep.has(/apt=(\d+)/.exec(fmtp.get(pt) ?? "")?.[1] ?? "")) keep.add(pt);
    }
    const payloads = mline.slice(3).filter((pt) => keep.has(pt));
    const kept = [
      [...mline.slice(0, 3), ...payloads].join(" "),
      ...lines.slice(1).filter((line) => {
        const pt = /^a=(?:rtpmap|fmtp|rtcp-fb):(\d+)/.exec(line)?.[1];
        return pt === undefined || keep.has(pt);
      }),
    ];
    out.push(kept.join(eol));
  }
  return out.join(eol) + eol;
}
