// The log of every Cloudflare API call the emulator answered (GET /__emulator/calls): what tests and the
// e2e fault matrix count. Bounded; the Node host persists it through the observer.

import type { CallRecord } from "./types.ts";

const MAX_CALL_LOG = 50_000;

export class CallLog {
  private calls: CallRecord[] = [];

  constructor(private readonly called: (call: CallRecord) => void) {}

  add(call: CallRecord): void {
    this.calls.push(call);
    if (this.calls.length > MAX_CALL_LOG) this.calls.splice(0, this.calls.length - MAX_CALL_LOG);
    this.called(call);
  }

  /** Copies, so callers cannot edit the log; `sinceMs`: calls made at or after it (emulator clock). */
  list(sinceMs?: number): CallRecord[] {
    const all = this.calls.map((c) => ({ ...c }));
    return sinceMs === undefined ? all : all.filter((c) => Date.parse(c.time) >= sinceMs);
  }

  clear(): void {
    this.calls = [];
  }

  /** What an earlier process logged (state-file.ts), its newest entries if it is over the bound. */
  restore(calls: CallRecord[]): void {
    this.calls = calls.slice(-MAX_CALL_LOG);
  }
}
