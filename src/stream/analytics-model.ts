/**
 * Per-stream analytics as pure functions over one small state (stored as one JSON row by analytics.ts):
 * concurrency is integrated between observations, so nothing needs a timer — every observation first
 * carries the last known values forward to `now`, then applies the new ones.
 *
 * Bounded: the timeline holds at most MAX_POINTS buckets; when a new bucket would be the 721st, every
 * pair of neighbours is merged and the bucket width doubles (60 s, 120 s, 240 s, …), so a stream of any
 * length keeps its whole history at a coarser grain. Watch-link hits keep the first MAX_COUNTRIES
 * countries seen (the rest summed as `other`) and count distinct visitors with a fixed bitmap (linear
 * counting: Whang, Vander-Zanden, Taylor 1990) of keyed hashes — no address is ever stored.
 */
export const BUCKET_MS = 60_000;
export const MAX_POINTS = 720;
export const MAX_COUNTRIES = 50;
/** Bits of the visitor bitmap: exact-ish well below it, a few % off at ~10,000 distinct visitors. */
export const VISITOR_BITS = 4_096;

/**
 * [max concurrent, viewer-seconds, ingest-up seconds, max live (human) viewers or -1], sums to 0.1 s.
 * Time covered is implied: integration is continuous from `origin`, so every bucket but the last is
 * full and the last runs to `at`.
 */
export type Bucket = [number, number, number, number];

export interface AnalyticsState {
  origin: number;
  widthMs: number;
  at: number;
  concurrent: number;
  up: boolean;
  everUp: boolean;
  ended: boolean;
  peak: number;
  viewerMs: number;
  liveMs: number;
  reconnects: number;
  humanPeak: number;
  humanLast: number | null;
  humanLastAt: number | null;
  buckets: Bucket[];
  hits: number;
  /** country → [hits, distinct visitors first seen from it]. */
  countries: Record<string, [number, number]>;
  otherHits: number;
  /** VISITOR_BITS bits, base64. */
  visitors: string;
}

export function initialState(now: number): AnalyticsState {
  return {
    origin: now,
    widthMs: BUCKET_MS,
    at: now,
    concurrent: 0,
    up: false,
    everUp: false,
    ended: false,
    peak: 0,
    viewerMs: 0,
    liveMs: 0,
    reconnects: 0,
    humanPeak: 0,
    humanLast: null,
    humanLastAt: null,
    buckets: [],
    hits: 0,
    countries: {},
    otherHits: 0,
    visitors: "",
  };
}

const round1 = (n: number) => Math.round(n * 10) / 10;

function mergePairs(state: AnalyticsState): void {
  const merged: Bucket[] = [];
  for (let i = 0; i < state.buckets.length; i += 2) {
    const a = state.buckets[i]!;
    const b = state.buckets[i + 1];
    merged.push(b ? [Math.max(a[0], b[0]), round1(a[1] + b[1]), round1(a[2] + b[2]), Math.max(a[3], b[3])] : a);
  }
  state.buckets = merged;
  state.widthMs *= 2;
}

/** The bucket holding time `t`, created (with every bucket before it) if needed; merges when full. */
function bucketAt(state: AnalyticsState, t: number): Bucket {
  let index = Math.floor((t - state.origin) / state.widthMs);
  while (index >= MAX_POINTS) {
    mergePairs(state);
    index = Math.floor((t - state.origin) / state.widthMs);
  }
  while (state.buckets.length <= index) state.buckets.push([state.concurrent, 0, 0, -1]);
  return state.buckets[index]!;
}

/** Carries the current values forward to `now`. Returns whether anything changed. */
export function advance(state: AnalyticsState, now: number): boolean {
  if (state.ended || now <= state.at) return false;
  let t = state.at;
  while (t < now) {
    const bucket = bucketAt(state, t);
    const index = Math.floor((t - state.origin) / state.widthMs);
    const end = Math.min(now, state.origin + (index + 1) * state.widthMs);
    const seconds = (end - t) / 1000;
    bucket[0] = Math.max(bucket[0], state.concurrent);
    bucket[1] = round1(bucket[1] + state.concurrent * seconds);
    if (state.up) bucket[2] = round1(bucket[2] + seconds);
    t = end;
  }
  state.viewerMs += state.concurrent * (now - state.at);
  if (state.up) state.liveMs += now - state.at;
  state.at = now;
  return true;
}

/**
 * What the stream looks like now: viewing apps and whether ingest is up (a running stream's input
 * connected). Returns whether the stored state must be written: the values changed, or time moved
 * into a new bucket (which is then created).
 */
export function observe(state: AnalyticsState, now: number, concurrent: number, up: boolean): boolean {
  if (state.ended) return false;
  const bucketsBefore = state.buckets.length;
  const widthBefore = state.widthMs;
  if (concurrent === state.concurrent && up === state.up) {
    // Nothing changed: only a new bucket needs writing (integration from `at` stays exact otherwise).
    const index = Math.floor((now - state.origin) / state.widthMs);
    if (index < state.buckets.length) return false;
    advance(state, now);
    bucketAt(state, now);
    return state.buckets.length !== bucketsBefore || state.widthMs !== widthBefore;
  }
  advance(state, now);
  if (up && !state.up) {
    if (state.everUp) state.reconnects += 1;
    state.everUp = true;
  }
  state.concurrent = concurrent;
  state.up = up;
  state.peak = Math.max(state.peak, concurrent);
  const bucket = bucketAt(state, now);
  bucket[0] = Math.max(bucket[0], concurrent);
  return true;
}

/** The stream stopped: values go to zero and the record freezes. */
export function end(state: AnalyticsState, now: number): boolean {
  if (state.ended) return false;
  advance(state, now);
  state.concurrent = 0;
  state.up = false;
  state.ended = true;
  return true;
}

/** A reading of the live (human) viewer count from Cloudflare's `/views`. */
export function sampleLiveViewers(state: AnalyticsState, now: number, liveViewers: number): void {
  if (state.ended) return;
  advance(state, now);
  const bucket = bucketAt(state, now);
  bucket[3] = Math.max(bucket[3], liveViewers);
  state.humanPeak = Math.max(state.humanPeak, liveViewers);
  state.humanLast = liveViewers;
  state.humanLastAt = now;
}

/** One watch-link hit: `country` is Cloudflare's two-letter code (or "XX"), `visitor` a keyed hash (hex). */
export function recordHit(state: AnalyticsState, country: string, visitor: string | null): void {
  state.hits += 1;
  let entry = state.countries[country];
  if (!entry) {
    if (Object.keys(state.countries).length >= MAX_COUNTRIES) {
      state.otherHits += 1;
      entry = undefined;
    } else {
      entry = state.countries[country] = [0, 0];
    }
  }
  if (entry) entry[0] += 1;
  if (visitor === null || !/^[0-9a-f]{8}/.test(visitor)) return;
  const bits = decodeBits(state.visitors);
  const bit = parseInt(visitor.slice(0, 8), 16) % VISITOR_BITS;
  const byte = bit >> 3;
  const mask = 1 << (bit & 7);
  if (bits[byte]! & mask) return;
  bits[byte]! |= mask;
  state.visitors = encodeBits(bits);
  if (entry) entry[1] += 1;
}

/** Distinct visitors, by linear counting: exact while there are few, an estimate as the bitmap fills. */
export function uniqueVisitors(state: AnalyticsState): number {
  const bits = decodeBits(state.visitors);
  let set = 0;
  for (const byte of bits) for (let b = byte; b; b &= b - 1) set += 1;
  const zeros = VISITOR_BITS - set;
  if (set === 0) return 0;
  if (zeros === 0) return Math.round(VISITOR_BITS * Math.log(VISITOR_BITS));
  return Math.max(set, Math.round(-VISITOR_BITS * Math.log(zeros / VISITOR_BITS)));
}

function decodeBits(encoded: string): Uint8Array {
  const bits = new Uint8Array(VISITOR_BITS / 8);
  if (encoded) {
    const raw = atob(encoded);
    for (let i = 0; i < raw.length && i < bits.length; i++) bits[i] = raw.charCodeAt(i);
  }
  return bits;
}

function encodeBits(bits: Uint8Array): string {
  let raw = "";
  for (const byte of bits) raw += String.fromCharCode(byte);
  return btoa(raw);
}

export interface AnalyticsReport {
  peakViewers: number;
  viewerMinutes: number;
  liveSeconds: number;
  reconnects: number;
  liveViewers: { peak: number; last: number | null; lastAt: string | null };
  timeline: {
    start: string;
    bucketSeconds: number;
    maxViewers: number[];
    meanViewers: number[];
    ingestUpSeconds: number[];
    liveViewers: (number | null)[];
  };
  watchLink: {
    hits: number;
    uniqueVisitors: number;
    countries: { country: string; hits: number; uniqueVisitors: number }[];
    otherHits: number;
  };
}

/** The report as of `now` (a copy is carried forward; the stored state is not touched). */
export function report(stored: AnalyticsState, now: number): AnalyticsReport {
  const state: AnalyticsState = structuredClone(stored);
  advance(state, now);
  const round2 = (n: number) => Math.round(n * 100) / 100;
  return {
    peakViewers: state.peak,
    viewerMinutes: round2(state.viewerMs / 60_000),
    liveSeconds: Math.round(state.liveMs / 1000),
    reconnects: state.reconnects,
    liveViewers: { peak: state.humanPeak, last: state.humanLast, lastAt: state.humanLastAt === null ? null : new Date(state.humanLastAt).toISOString() },
    timeline: {
      start: new Date(state.origin).toISOString(),
      bucketSeconds: state.widthMs / 1000,
      maxViewers: state.buckets.map((b) => b[0]),
      meanViewers: state.buckets.map((b, i) => {
        const start = state.origin + i * state.widthMs;
        const covered = (Math.min(state.at, start + state.widthMs) - start) / 1000;
        return covered > 0 ? round2(b[1] / covered) : 0;
      }),
      ingestUpSeconds: state.buckets.map((b) => Math.round(b[2])),
      liveViewers: state.buckets.map((b) => (b[3] < 0 ? null : b[3])),
    },
    watchLink: {
      hits: state.hits,
      uniqueVisitors: uniqueVisitors(state),
      countries: Object.entries(state.countries)
        .map(([country, [hits, visitors]]) => ({ country, hits, uniqueVisitors: visitors }))
        .sort((a, b) => b.hits - a.hits || (a.country < b.country ? -1 : 1)),
      otherHits: state.otherHits,
    },
  };
}
