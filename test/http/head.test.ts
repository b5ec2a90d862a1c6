import { SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { registerApp, startStream } from "../helpers";

describe("HEAD answers like GET, without the body", () => {
  it("HEAD /healthz: 200 with GET's headers and length, no body", async () => {
    const get = await SELF.fetch("http://coordinator.test/healthz");
    const getBody = await get.text();
    const head = await SELF.fetch("http://coordinator.test/healthz", { method: "HEAD" });
    expect(head.status).toBe(200);
    expect(head.headers.get("content-type")).toBe(get.headers.get("content-type"));
    expect(head.headers.get("content-length")).toBe(String(new TextEncoder().encode(getBody).byteLength));
    expect(await head.text()).toBe("");
  });

  it("HEAD of an authenticated route keeps GET's status: 200 for the app, 401 without credentials", async () => {
    const app = await registerApp();
    const stream = await startStream(app);
    const ok = await SELF.fetch(`http://coordinator.test/api/streams/${stream.streamId}`, { method: "HEAD", headers: app.headers });
    expect(ok.status).toBe(200);
    expect(await ok.text()).toBe("");
    const refused = await SELF.fetch(`http://coordinator.test/api/streams/${stream.streamId}`, { method: "HEAD" });
    expect(refused.status).toBe(401);
    expect(refused.headers.get("content-type")).toContain("application/json");
    expect(await refused.text()).toBe("");
  });

  it("HEAD of an unknown path is 404 like GET", async () => {
    const res = await SELF.fetch("http://coordinator.test/nope", { method: "HEAD" });
    expect(res.status).toBe(404);
  });
});
