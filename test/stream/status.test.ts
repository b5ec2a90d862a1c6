import { describe, expect, it } from "vitest";
import { deriveStatus, toSdkStatus, type StatusFacts } from "../../src/stream/status";

const running: StatusFacts = { phase: "running", ingestState: "disconnected", everConnected: false, device: "ok", deviceDetail: null, inputError: null };

describe("status after the glasses go quiet", () => {
  it("glasses that stop answering keep-alives: reconnecting once video has flowed, preparing before", () => {
    expect(deriveStatus({ ...running, device: "lost", everConnected: true })).toEqual({ status: "reconnecting", message: "Glasses stopped answering keep-alives" });
    expect(deriveStatus({ ...running, device: "lost", everConnected: false })).toEqual({ status: "preparing", message: "Glasses stopped answering keep-alives" });
    // Even with ingest still reported connected, lost glasses are never `active`.
    expect(deriveStatus({ ...running, device: "lost", everConnected: true, ingestState: "connected" }).status).toBe("reconnecting");
  });

  it("glasses that report stopped or reconnecting: reconnecting once video has flowed, preparing before", () => {
    for (const device of ["stopped", "reconnecting"] as const) {
      expect(deriveStatus({ ...running, device, everConnected: true, ingestState: "connected" }).status).toBe("reconnecting");
      expect(deriveStatus({ ...running, device, everConnected: false }).status).toBe("preparing");
    }
    expect(deriveStatus({ ...running, device: "reconnecting", deviceDetail: "wifi", everConnected: true }).message).toBe(
      "Glasses are reconnecting to the ingest server: wifi",
    );
  });

  it("ingest gone after it was live is reconnecting; never live yet is preparing; live is active", () => {
    expect(deriveStatus({ ...running, everConnected: true })).toEqual({ status: "reconnecting", message: "Waiting for the glasses to reconnect" });
    expect(deriveStatus(running)).toEqual({ status: "preparing", message: "Waiting for the glasses to start streaming" });
    expect(deriveStatus({ ...running, ingestState: "connected", everConnected: true })).toEqual({ status: "active", message: "Stream is live" });
  });

  it("errors outrank everything while running; the lifecycle phase outranks errors", () => {
    expect(deriveStatus({ ...running, inputError: "bad codec", device: "lost" }).status).toBe("error");
    expect(deriveStatus({ ...running, device: "error", deviceDetail: "camera busy" })).toEqual({ status: "error", message: "Glasses reported an error: camera busy" });
    expect(deriveStatus({ ...running, device: "error" }).message).toBe("Glasses reported an error");
    expect(deriveStatus({ ...running, phase: "initializing", inputError: "x" }).status).toBe("initializing");
    expect(deriveStatus({ ...running, phase: "stopping", inputError: "x" }).status).toBe("stopping");
    expect(deriveStatus({ ...running, phase: "stopped", device: "error" }).status).toBe("stopped");
  });

  it("the SDK, which has no reconnecting, is told preparing; every other status passes through", () => {
    expect(toSdkStatus("reconnecting")).toBe("preparing");
    for (const s of ["initializing", "preparing", "active", "stopping", "stopped", "error"] as const) expect(toSdkStatus(s)).toBe(s);
  });

  it("every status says why, in words", () => {
    expect(deriveStatus({ ...running, phase: "initializing" }).message).toBe("Creating the live input");
    expect(deriveStatus({ ...running, phase: "stopping" }).message).toBe("Stream is stopping");
    expect(deriveStatus({ ...running, phase: "stopped" }).message).toBe("Stream stopped");
    expect(deriveStatus({ ...running, inputError: "bad codec" }).message).toBe("Cloudflare reported an ingest error: bad codec");
    expect(deriveStatus({ ...running, device: "stopped", everConnected: true }).message).toBe("Glasses stopped streaming");
    expect(deriveStatus({ ...running, device: "reconnecting" }).message).toBe("Glasses are reconnecting to the ingest server");
  });
});
