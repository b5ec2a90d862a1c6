import { describe, expect, it } from "vitest";
import { deriveOutputStatus, toSdkOutputStatus, type OutputFacts } from "../../src/outputs/output-status";

/** A healthy, enabled, created output on a stable ingest: `active`. Each test changes what it is about. */
const healthy: OutputFacts = { pending: false, enabled: true, error: null, ingestStable: true, stale: false };
const status = (changes: Partial<OutputFacts>) => deriveOutputStatus({ ...healthy, ...changes });

describe("an output's derived status (the table in output-status.ts, first match wins)", () => {
  it("an enabled output restreaming a stable ingest is active, with no error", () => {
    expect(status({})).toEqual({ status: "active", error: null });
  });

  it("an enabled output whose ingest is not connected or not yet stable is connecting, not active", () => {
    expect(status({ ingestStable: false })).toEqual({ status: "connecting", error: null });
  });

  it("an output still being created is connecting, even on a stable ingest, and even while disabled", () => {
    expect(status({ pending: true })).toEqual({ status: "connecting", error: null });
    expect(status({ pending: true, enabled: false })).toEqual({ status: "connecting", error: null });
  });

  it("an output its owner disabled is unknown, whatever the ingest does", () => {
    expect(status({ enabled: false })).toEqual({ status: "unknown", error: null });
    expect(status({ enabled: false, ingestStable: false })).toEqual({ status: "unknown", error: null });
  });

  it("stale knowledge of Cloudflare makes an output unknown, not active nor connecting", () => {
    expect(status({ stale: true })).toEqual({ status: "unknown", error: null });
    expect(status({ stale: true, pending: true })).toEqual({ status: "unknown", error: null });
  });

  it("an error wins over everything else and is carried with its message", () => {
    expect(status({ error: "relay refused" })).toEqual({ status: "error", error: "relay refused" });
    expect(status({ error: "relay refused", stale: true, pending: true, enabled: false, ingestStable: false })).toEqual({
      status: "error",
      error: "relay refused",
    });
  });
});

describe("the SDK's output status knows only active, error and stopped", () => {
  it("active and error pass through; connecting and unknown are stopped", () => {
    expect(toSdkOutputStatus("active")).toBe("active");
    expect(toSdkOutputStatus("error")).toBe("error");
    expect(toSdkOutputStatus("connecting")).toBe("stopped");
    expect(toSdkOutputStatus("unknown")).toBe("stopped");
  });
});
