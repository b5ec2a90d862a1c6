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

  it("arm() with nothing changed makes no storage call; after the alarm fired it sets the alarm again", async () => {
    const stub = env.STREAMS.getByName(`schedule-test-${crypto.randomUUID()}`);
    await runInDurableObject(stub, async (_instance, state) => {
      const calls: string[] = [];
      const storage = new Proxy(state.storage, {
        get(target, prop) {
          const value = Reflect.get(target, prop);
          if (typeof value !== "function") return value;
          if (prop === "getAlarm" || prop === "setAlarm" || prop === "deleteAlarm") calls.push(String(prop));
          return value.bind(target);
        },
      });
      const schedule = new Schedule(new Sql(state.storage.sql), storage);
      const at = Date.now() + 100_000;
      schedule.set("x", at);
      await schedule.arm();
      expect(calls).toEqual(["getAlarm", "setAlarm"]); // a new instance asks once what is set
      calls.length = 0;
      await schedule.arm();
      schedule.set("later", at + 5_000);
      await schedule.arm();
      expect(calls).toEqual([]); // the earliest row did not move: nothing to tell the runtime
      schedule.set("sooner", at - 5_000);
      await schedule.arm();
      expect(calls).toEqual(["setAlarm"]);
      expect(await state.storage.getAlarm()).toBe(at - 5_000);
      calls.length = 0;
      // The runtime clears the alarm as it fires it: the same earliest row must be armed again.
      await state.storage.deleteAlarm();
      schedule.alarmFired();
      await schedule.arm();
      expect(await state.storage.getAlarm()).toBe(at - 5_000);
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
