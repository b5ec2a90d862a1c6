import { describe, expect, it } from "vitest";
import {
  MAX_COUNTRIES,
  MAX_POINTS,
  end,
  initialState,
  observe,
  recordHit,
  report,
  sampleLiveViewers,
  uniqueVisitors,
} from "../../src/stream/analytics-model";

const T0 = 1_800_000_000_000;
const s = (seconds: number) => T0 + seconds * 1000;

describe("analytics model: a scripted presence sequence, exact", () => {
  it("integrates viewers and ingest between observations, into 60 s buckets", () => {
    const st = initialState(T0);
    observe(st, s(10), 1, false); // app A opens its socket
    observe(st, s(30), 1, true); // ingest connects
    observe(st, s(50), 3, true); // B and C arrive
    observe(st, s(90), 2, true); // C leaves
    observe(st, s(100), 2, false); // the glasses drop
    observe(st, s(130), 2, true); // and come back: a reconnect
    observe(st, s(150), 0, true); // everybody leaves
    end(st, s(180));
    const r = report(st, s(10_000));
    // viewer-seconds: 1×40 (10–50) + 3×40 (50–90) + 2×60 (90–150) = 280
    expect(r.viewerMinutes).toBe(Math.round((280 / 60) * 100) / 100);
    expect(r.peakViewers).toBe(3);
    // ingest up 30–100 and 130–180 (the end stops it)
    expect(r.liveSeconds).toBe(120);
    expect(r.reconnects).toBe(1);
    expect(r.timeline.bucketSeconds).toBe(60);
    expect(r.timeline.maxViewers).toEqual([3, 3, 2]);
    // bucket 0 (0–60): 1×40 + 3×10 = 70 viewer-s; 1 (60–120): 3×30 + 2×30 = 150; 2 (120–180): 2×30 = 60
    expect(r.timeline.meanViewers).toEqual([Math.round((70 / 60) * 100) / 100, 2.5, 1]);
    expect(r.timeline.ingestUpSeconds).toEqual([30, 40, 50]);
    expect(r.timeline.liveViewers).toEqual([null, null, null]);
  });

  it("a report carries the last values forward to now without changing the stored state", () => {
    const st = initialState(T0);
    observe(st, s(0), 2, true);
    const r = report(st, s(120));
    expect(r.viewerMinutes).toBe(4);
    expect(r.liveSeconds).toBe(120);
    expect(r.timeline.maxViewers).toEqual([2, 2]);
    expect(st.at).toBe(s(0));
  });

  it("an unchanged observation writes only when a new bucket begins", () => {
    const st = initialState(T0);
    expect(observe(st, s(1), 1, false)).toBe(true);
    expect(observe(st, s(30), 1, false)).toBe(false);
    expect(observe(st, s(61), 1, false)).toBe(true);
    expect(observe(st, s(62), 1, false)).toBe(false);
  });

  it("live viewer readings go into their bucket; the highest wins", () => {
    const st = initialState(T0);
    observe(st, s(0), 1, true);
    sampleLiveViewers(st, s(10), 4);
    sampleLiveViewers(st, s(20), 7);
    sampleLiveViewers(st, s(130), 2);
    const r = report(st, s(140));
    expect(r.timeline.liveViewers).toEqual([7, null, 2]);
    expect(r.liveViewers).toEqual({ peak: 7, last: 2, lastAt: new Date(s(130)).toISOString() });
  });
});

describe("analytics model: bounded", () => {
  it("never more than 720 points: neighbours merge and the width doubles, totals unchanged", () => {
    const st = initialState(T0);
    for (let minute = 0; minute < MAX_POINTS; minute++) observe(st, s(minute * 60 + 1), minute % 5, minute % 2 === 0);
    expect(st.buckets).toHaveLength(MAX_POINTS);
    expect(st.widthMs).toBe(60_000);
    const before = report(st, s(MAX_POINTS * 60));
    const totalsBefore = report(st, s(MAX_POINTS * 60 + 1));
    observe(st, s(MAX_POINTS * 60 + 1), 9, true); // the 721st minute
    expect(st.widthMs).toBe(120_000);
    expect(st.buckets).toHaveLength(MAX_POINTS / 2 + 1);
    const after = report(st, s(MAX_POINTS * 60 + 1));
    expect(after.timeline.maxViewers[0]).toBe(Math.max(before.timeline.maxViewers[0]!, before.timeline.maxViewers[1]!));
    expect(after.timeline.ingestUpSeconds[0]).toBe(before.timeline.ingestUpSeconds[0]! + before.timeline.ingestUpSeconds[1]!);
    expect(after.viewerMinutes).toBe(totalsBefore.viewerMinutes);
    expect(after.liveSeconds).toBe(totalsBefore.liveSeconds);
    expect(after.timeline.maxViewers.at(-1)).toBe(9);
  });

  it("a week-long stream with busy buckets stays under 20 KB, stored and reported", () => {
    const st = initialState(T0);
    for (let minute = 0; minute < 7 * 24 * 60; minute += 7) {
      // Busier than any real stream: up to 60 apps at once and five-digit live viewer counts throughout.
      observe(st, s(minute * 60 + 13.337), 10 + (minute % 51), minute % 3 !== 0);
      sampleLiveViewers(st, s(minute * 60 + 20), 90_000 + minute);
    }
    for (let i = 0; i < 5_000; i++) recordHit(st, `C${i % 80}`, ((i * 2654435761) >>> 0).toString(16).padStart(8, "0"));
    expect(st.buckets.length).toBeLessThanOrEqual(MAX_POINTS);
    expect(JSON.stringify(st).length).toBeLessThan(20_480);
    expect(JSON.stringify(report(st, s(7 * 24 * 3600))).length).toBeLessThan(20_480);
  });

  it("watch-link hits: per country, the first 50 countries kept and the rest summed", () => {
    const st = initialState(T0);
    for (let i = 0; i < MAX_COUNTRIES + 5; i++) recordHit(st, `X${i}`, null);
    expect(Object.keys(st.countries)).toHaveLength(MAX_COUNTRIES);
    expect(st.otherHits).toBe(5);
    expect(st.hits).toBe(MAX_COUNTRIES + 5);
  });

  it("distinct visitors by keyed hash: a repeat visitor counts once, in the country first seen", () => {
    const st = initialState(T0);
    recordHit(st, "DE", "0000000a11111111");
    recordHit(st, "DE", "0000000a11111111");
    recordHit(st, "FR", "0000000b22222222");
    recordHit(st, "FR", null);
    const r = report(st, T0);
    expect(r.watchLink.hits).toBe(4);
    expect(r.watchLink.uniqueVisitors).toBe(2);
    expect(r.watchLink.countries).toEqual([
      { country: "DE", hits: 2, uniqueVisitors: 1 },
      { country: "FR", hits: 2, uniqueVisitors: 1 },
    ]);
  });

  it("many visitors are estimated within a few percent", () => {
    const st = initialState(T0);
    for (let i = 0; i < 3_000; i++) {
      const hash = Array.from(crypto.getRandomValues(new Uint8Array(8)), (b) => b.toString(16).padStart(2, "0")).join("");
      recordHit(st, "US", hash);
    }
    expect(Math.abs(uniqueVisitors(st) - 3_000)).toBeLessThan(300);
  });
});
