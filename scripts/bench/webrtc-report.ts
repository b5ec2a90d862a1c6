/**
 * Targets and the markdown of the bench's WebRTC section (f) (measured by webrtc.ts). Issue 15's target:
 * glass-to-glass p50 within 2× the floor at 5 viewers. The other figures are reported beside their floors.
 */
import type { WebrtcResult, WebrtcStep } from "./webrtc.ts";

export interface WebrtcTarget {
  value: number | null;
  floor: number | null;
  target: number;
  ok: boolean;
}

const ratio = (a: number | null | undefined, b: number | null | undefined) => (a == null || b == null || b === 0 ? null : Math.round((a / b) * 100) / 100);
const at = (steps: WebrtcStep[], n: number) => steps.find((s) => s.viewers === n);

export function webrtcTargets(f: WebrtcResult): Record<string, WebrtcTarget> {
  const ours = at(f.ours, 5)?.glassToGlassMs?.p50 ?? null;
  const floor = at(f.floor, 5)?.glassToGlassMs?.p50 ?? null;
  const r = ratio(ours, floor);
  return { f_glassToGlassP50RatioAt5: { value: r, floor, target: 2, ok: r !== null && r <= 2 } };
}

export function webrtcMarkdown(f: WebrtcResult, t: Record<string, WebrtcTarget>): string {
  const counts = f.ours.filter((s) => s.viewers > 0).map((s) => s.viewers);
  const row = (label: string, pick: (s: WebrtcStep | undefined) => number | null | undefined, unit: string) =>
    counts.map((n) => {
      const o = pick(at(f.ours, n));
      const fl = pick(at(f.floor, n));
      return `| ${label} | ${n} | ${o ?? "–"} ${unit} | ${fl ?? "–"} ${unit} | ${ratio(o, fl) ?? "–"} |`;
    });
  const g2g = t.f_glassToGlassP50RatioAt5!;
  const idle = (steps: WebrtcStep[]) => at(steps, 0)?.forwarderCpuPercent ?? "–";
  return `
## (f) WebRTC: WHIP publish → WHEP viewers, beside a bare \`werift\` forwarder

Ours: a stream started with \`ingest: "webrtc"\`, published at the glasses' \`whipUrl\` (from \`GET /api/device/stream\`),
N WHEP viewers at the stream's \`webrtcUrl\`: the emulator's werift forwarder in its Node process
(\`emulator/webrtc-ingest.ts\`, on the \`npm start\` stack). Floor, in the same run: a bare werift forwarder in its
own Node process and session, as the emulator is (the kernel shares CPU by session: autogroup) (\`scripts/bench/webrtc-floor.mjs\`: same werift settings, PLI relay, no emulator or coordinator
layer), the same kind of publisher, the same viewers. Publisher and viewers are werift peers in the bench's process;
the publisher sends ffmpeg's H.264 test pattern (640×360, 30 fps, a keyframe each second). Both publishers run all
along; per viewer count the two paths are measured one after the other (order alternating), over ${f.windowMs / 1000} s each,
in ${f.rounds} rounds; percentiles pool the rounds' samples, CPU is the median of the rounds.

- **glass-to-glass**: the publisher writes each frame's send time into the frame itself (an H.264 SEI user-data NAL
  ahead of its first packet, \`scripts/bench/webrtc-peers.ts\`); every viewer reads it back when the frame's last
  packet arrives. Not pixels: reading pixels back needs a decoder process per viewer, whose CPU (20 decoders on
  this shared 2-core machine) would compete with the forwarder under test; a forwarder never reads payloads, so
  the tag travels as the picture does. Encode and decode (identical on both paths, nothing is transcoded) are
  left out.
- **offer → first frame**: a viewer's offer started → its first complete frame; → its first keyframe (what a
  decoder can show), which includes waiting for the publisher's next keyframe: ffmpeg's RTP output cannot answer
  the keyframe requests (PLI) the forwarders relay (${f.keyframeRequestsAtPublisher.ours} reached our publisher,
  ${f.keyframeRequestsAtPublisher.floor} the floor's); a browser publisher answers them at once.
- **CPU per forwarded viewer**: the forwarder process's CPU (utime + stime, /proc) in the window at N viewers minus
  at 0 viewers in the same round (publisher only, median: ours ${idle(f.ours)} %, floor ${idle(f.floor)} % of a core), divided by
  the viewers that got media; median of the rounds.
- Viewers join 5 at a time, each batch connected before the next (20 DTLS handshakes at once on this machine made
  werift give some up, on both paths). A viewer without a keyframe after 15 s is counted and not timed.

Machine load: 1-minute load average ${f.load.loadavgBefore} before, ${f.load.loadavgAfter} after, ${f.load.cores} cores ${f.load.machineBusyPercent} % busy
during the windows (everything on the machine, this bench included).

| figure | viewers | ours | floor | ratio |
|---|---|---|---|---|
${[
  ...row("glass-to-glass p50", (s) => s?.glassToGlassMs?.p50, "ms"),
  ...row("glass-to-glass p95", (s) => s?.glassToGlassMs?.p95, "ms"),
  ...row("offer → first frame p50", (s) => s?.offerToFirstFrameMs?.p50, "ms"),
  ...row("offer → first keyframe p50", (s) => s?.offerToFirstKeyframeMs?.p50, "ms"),
  ...row("forwarder CPU, % of a core", (s) => s?.forwarderCpuPercent, "%"),
  ...row("CPU per forwarded viewer, % of a core", (s) => s?.cpuPerViewerPercent, "%"),
  ...row("viewers without a frame in 15 s (all rounds)", (s) => s?.notStarted, ""),
].join("\n")}

Target (issue 15): glass-to-glass p50 at 5 viewers within 2× the floor: ${g2g.value ?? "–"}× (floor ${g2g.floor ?? "–"} ms), **${g2g.ok ? "met" : "missed"}**.
Glass-to-glass p50 per round (ours / floor, ms): ${counts.map((n) => `${n} viewers: ${(at(f.ours, n)?.glassToGlassP50ByRound ?? []).map((o, i) => `${o} / ${at(f.floor, n)?.glassToGlassP50ByRound[i] ?? "–"}`).join(", ")}`).join("; ")}.
Frames timed (all rounds): ${f.ours.filter((s) => s.viewers > 0).map((s) => `${s.viewers}: ${s.glassToGlassMs?.count ?? 0} / ${at(f.floor, s.viewers)?.glassToGlassMs?.count ?? 0}`).join(", ")} (ours / floor); max ${at(f.ours, 20)?.glassToGlassMs?.max ?? "–"} / ${at(f.floor, 20)?.glassToGlassMs?.max ?? "–"} ms at 20.
`;
}
