import { env, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { Schedule } from "../../src/stream/schedule";
import { Sql } from "../../src/stream/sql";

/** Runs `fn` with a Schedule over a fresh object's storage. */
function withSchedule(fn: (schedule: Schedule, storage: DurableObjectStorage) => Promise<void>) {
  const stub = env.STREAMS.getByName(`schedule-test-${crypto.randomUUID()}`);
  return runInDurableObject(stub, (_instance, state) => fn(new Schedule(new Sql(state.storage.sql), state.storage), state.storage));
}

describe("Schedule: one alarm multiplexed over a table", () => {
  it("arms the alarm at the earliest row and runs due rows (overdue included) in order", async () => {
    await withSchedule(async (schedule, storage) => {
      // A "now" in the future, so the object's real alarm cannot fire during the test.
      const now = Date.now() + 100_000;
      schedule.set("later", now + 60_000);
      schedule.set("overdue", now - 5_000);
      schedule.set("due", now - 1_000);
      await schedule.arm();
      expect(await storage.getAlarm()).toBe(now - 5_000);

      const ran: string[] = [];
      await schedule.runDue((name) => void ran.push(name), now);
      expect(ran).toEqual(["overdue", "due"]);
      expect(schedule.names()).toEqual(["later"]);
      await schedule.arm();
      expect(await storage.getAlarm()).toBe(now + 60_000);
    });
  });

  it("a handler that throws never loses its timer: it comes back with backoff", async () => {
    await withSchedule(async (schedule) => {
      const now = Date.now();
      schedule.set("flaky", now - 1);
      await schedule.runDue(() => {
        throw new Error("boom");
      }, now);
      const first = schedule.dueAt("flaky")!;
      expect(first).toBeGreaterThan(now);
      // Attempts grow the delay.
      await schedule.runDue(() => {
        throw new Error("boom again");
      }, first);
      expect(schedule.dueAt("flaky")! - Date.now()).toBeGreaterThan(first - now);
    });
  });

  it("a running timer is leased, not removed: a crash mid-handler cannot lose it", async () => {
    await withSchedule(async (schedule) => {
      const now = Date.now() + 100_000;
      schedule.set("slow", now - 1);
      let leasedUntil: number | null = null;
      await schedule.runDue((name) => {
        leasedUntil = schedule.dueAt(name);
      }, now);
      expect(leasedUntil).toBeGreaterThan(now);
      expect(schedule.dueAt("slow")).toBeNull(); // done: the untouched lease is removed
    });
  });

  it("a handler may re-schedule itself, and a cancelled timer does not run", async () => {
    await withSchedule(async (schedule) => {
      const now = Date.now();
      schedule.set("a", now - 2);
      schedule.set("b", now - 1);
      await schedule.runDue((name) => {
        if (name === "a") {
          schedule.set("a", now + 10_000);
          schedule.cancel("b");
        } else throw new Error("b must not run");
      }, now);
      expect(schedule.names()).toEqual(["a"]);
      await schedule.arm();
    });
  });

  it("with no rows, no alarm is left", async () => {
    await withSchedule(async (schedule, storage) => {
      schedule.set("x", Date.now() + 1_000);
      await schedule.arm();
      schedule.cancel("x");
      await schedule.arm();
      expect(await storage.getAlarm()).toBeNull();
    });
  });
});
