import { env } from "cloudflare:test";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { freezeClock, resetClock } from "../../src/clock";
import { registerApp, resetEmulator } from "../helpers";

beforeEach(resetEmulator);
afterEach(resetClock);

/** The per-app output ledger (src/apps/output-ledger.ts) through its app's AppAccount object. */
async function account() {
  return env.APPS.getByName((await registerApp()).packageName);
}

describe("the per-app output cap (10 across every stream)", () => {
  it("an app holds at most 10 output slots across its streams, pending or committed; a release frees one", async () => {
    const app = await account();
    freezeClock();
    for (let i = 0; i < 10; i++) expect(await app.reserveOutput(`stream-${i % 3}`, `out-${i}`)).toBe(true);
    await app.commitOutput("out-0");
    expect(await app.outputCount()).toBe(10);
    expect(await app.reserveOutput("stream-4", "out-10")).toBe(false);
    expect(await app.outputCount()).toBe(10);
    // A committed slot is released like a pending one.
    await app.releaseOutput("out-0");
    expect(await app.outputCount()).toBe(9);
    expect(await app.reserveOutput("stream-4", "out-10")).toBe(true);
    expect(await app.reserveOutput("stream-4", "out-11")).toBe(false);
  });

  it("reserving the same output again (a retried add) takes no second slot, even at the cap", async () => {
    const app = await account();
    freezeClock();
    expect(await app.reserveOutput("stream-a", "out-a")).toBe(true);
    expect(await app.reserveOutput("stream-a", "out-a")).toBe(true);
    expect(await app.outputCount()).toBe(1);
    for (let i = 0; i < 9; i++) expect(await app.reserveOutput("stream-b", `out-${i}`)).toBe(true);
    expect(await app.outputCount()).toBe(10);
    expect(await app.reserveOutput("stream-a", "out-a")).toBe(true);
    expect(await app.outputCount()).toBe(10);
  });

  it("releasing one output frees only its own slot, and releasing an unknown one changes nothing", async () => {
    const app = await account();
    freezeClock();
    await app.reserveOutput("stream-a", "out-a");
    await app.reserveOutput("stream-a", "out-b");
    await app.releaseOutput("out-unknown");
    expect(await app.outputCount()).toBe(2);
    await app.releaseOutput("out-a");
    expect(await app.outputCount()).toBe(1);
    // out-b still holds its slot: reserving it again is not a new slot.
    await app.reserveOutput("stream-a", "out-b");
    expect(await app.outputCount()).toBe(1);
  });

  it("the caps of two apps are separate", async () => {
    const [one, two] = [await account(), await account()];
    freezeClock();
    for (let i = 0; i < 10; i++) await one.reserveOutput("stream-a", `out-${i}`);
    expect(await one.reserveOutput("stream-a", "out-x")).toBe(false);
    expect(await two.reserveOutput("stream-a", "out-x")).toBe(true);
    expect(await two.outputCount()).toBe(1);
  });
});
