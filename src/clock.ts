/**
 * The one source of time for the Worker and every object. Production reads the platform clock; tests
 * shift it (`shiftClock`) to stand just before or just after a boundary — grace, join window, TTLs,
 * back-offs — without sleeping, then fire alarms on purpose. Under vitest-pool-workers the tests, the
 * Worker and the objects share one isolate, so they share this module and its offset.
 *
 * The platform clock still moves while a test awaits I/O, so a test that must stand *one millisecond*
 * before a boundary freezes the clock first (`freezeClock`): then only `shiftClock` moves it.
 */
let offsetMs = 0;
let frozenAt: number | null = null;

export const clock = {
  now(): number {
    return frozenAt ?? Date.now() + offsetMs;
  },
};

/** Tests only: moves every reading of `now()` forward (or back) by `ms`. */
export function shiftClock(ms: number): void {
  if (frozenAt !== null) frozenAt += ms;
  else offsetMs += ms;
}

/** Tests only: stops the clock at `at` (default: now); from then on only `shiftClock` moves it. */
export function freezeClock(at: number = clock.now()): number {
  frozenAt = at;
  return at;
}

/** Tests only: back to the platform clock. */
export function resetClock(): void {
  offsetMs = 0;
  frozenAt = null;
}
