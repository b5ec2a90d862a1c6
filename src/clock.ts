/**
 * The one source of time for the Worker and every object. Production reads the platform clock; tests
 * shift it (`shiftClock`) to stand just before or just after a boundary — grace, join window, TTLs,
 * back-offs — without sleeping, then fire alarms on purpose. Under vitest-pool-workers the tests, the
 * Worker and the objects share one isolate, so they share this module and its offset.
 */
let offsetMs = 0;

export const clock = {
  now(): number {
    return Date.now() + offsetMs;
  },
};

/** Tests only: moves every reading of `now()` forward (or back) by `ms`. */
export function shiftClock(ms: number): void {
  offsetMs += ms;
}

/** Tests only: back to the platform clock. */
export function resetClock(): void {
  offsetMs = 0;
}
