// The stream's analytics (GET /api/streams/:id/analytics; docs/console.md#analytics): the totals and the
// timeline drawn as a small SVG — apps viewing (max as a line, mean as a filled area), the time the input
// was up (a band along the bottom) and Cloudflare's live viewer readings (dots). Read every 10 s.
import { useEffect, useState } from "preact/hooks";
import type { StreamAnalytics } from "../../../client/src/types.ts";
import { describeError } from "./session";

const REFRESH_MS = 10_000;
const W = 640;
const H = 160;
const PAD = 24;

export function AnalyticsPanel({ streamId, load }: { streamId: string; load: () => Promise<StreamAnalytics> }) {
  const [data, setData] = useState<StreamAnalytics | null>(null);
  const [error, setError] = useState("");
  useEffect(() => {
    let stopped = false;
    const read = () =>
      load().then(
        (answer) => {
          if (stopped) return;
          setData(answer);
          setError("");
        },
        (e: unknown) => !stopped && setError(describeError(e)),
      );
    void read();
    const timer = setInterval(() => void read(), REFRESH_MS);
    return () => {
      stopped = true;
      clearInterval(timer);
    };
  }, [streamId]);

  return (
    <section aria-labelledby="analytics-heading" class="panel" data-testid="analytics">
      <h3 id="analytics-heading">Analytics</h3>
      {error && <p role="alert" class="error">{error}</p>}
      {data && (
        <>
          <dl class="facts">
            <dt>Peak viewers</dt>
            <dd data-analytics="peakViewers">{data.peakViewers}</dd>
            <dt>Unique viewer apps</dt>
            <dd data-analytics="uniqueViewers">{data.uniqueViewers}</dd>
            <dt>Viewer-minutes</dt>
            <dd data-analytics="viewerMinutes">{data.viewerMinutes}</dd>
            <dt>Live</dt>
            <dd data-analytics="liveSeconds">{data.liveSeconds} s, {data.reconnects} reconnect{data.reconnects === 1 ? "" : "s"}</dd>
            <dt>Live viewers (Cloudflare)</dt>
            <dd>{data.liveViewers.last ?? "—"} now, {data.liveViewers.peak} at most</dd>
            <dt>Watch link</dt>
            <dd>
              {data.watchLink.hits} hits, {data.watchLink.uniqueVisitors} visitors
              {data.watchLink.countries.length > 0 && ` (${data.watchLink.countries.slice(0, 5).map((c) => `${c.country} ${c.hits}`).join(", ")})`}
            </dd>
          </dl>
          <Timeline timeline={data.timeline} />
        </>
      )}
    </section>
  );
}

function Timeline({ timeline }: { timeline: StreamAnalytics["timeline"] }) {
  const n = timeline.maxViewers.length;
  if (n === 0) return <p class="hint">No timeline yet.</p>;
  const top = Math.max(1, ...timeline.maxViewers, ...timeline.liveViewers.map((v) => v ?? 0));
  const x = (i: number) => PAD + (n === 1 ? 0 : (i / (n - 1)) * (W - 2 * PAD));
  const y = (v: number) => H - PAD - (v / top) * (H - 2 * PAD);
  const line = timeline.maxViewers.map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(" ");
  const area = `${x(0).toFixed(1)},${y(0)} ${timeline.meanViewers.map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(" ")} ${x(n - 1).toFixed(1)},${y(0)}`;
  const step = n === 1 ? W - 2 * PAD : (W - 2 * PAD) / (n - 1);
  const label = `${n} points of ${timeline.bucketSeconds} s from ${new Date(timeline.start).toLocaleTimeString()}: at most ${Math.max(...timeline.maxViewers)} apps viewing`;
  return (
    <figure class="analytics-chart">
      <svg viewBox={`0 0 ${W} ${H}`} role="img" aria-label={label} data-testid="analytics-timeline" data-points={n}>
        <line x1={PAD} y1={y(0)} x2={W - PAD} y2={y(0)} class="axis" />
        <text x={4} y={y(top) + 4} class="tick">{top}</text>
        <text x={4} y={y(0) + 4} class="tick">0</text>
        {timeline.ingestUpSeconds.map((up, i) =>
          up > 0 ? <rect key={`u${i}`} x={x(i) - step / 2} y={H - PAD + 4} width={step * Math.min(1, up / timeline.bucketSeconds)} height={6} class="up" /> : null,
        )}
        <polygon points={area} class="mean" />
        <polyline points={line} class="max" fill="none" />
        {timeline.liveViewers.map((v, i) => (v === null ? null : <circle key={`h${i}`} cx={x(i)} cy={y(v)} r={3} class="human" />))}
      </svg>
      <figcaption class="hint">
        Line: most apps viewing per {timeline.bucketSeconds} s; area: the mean; band: input up; dots: Cloudflare's live viewers.
      </figcaption>
    </figure>
  );
}
