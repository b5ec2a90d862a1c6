import { describe, expect, it } from "vitest";
import { CloudflareCallError } from "../../src/cloudflare/stream-api";

const answered = (status: number | undefined) => new CloudflareCallError("x", status);

describe("classifying a failed Cloudflare call", () => {
  it("an HTTP 500 (or any 5xx) may hide a success: maybe applied, and worth retrying", () => {
    for (const status of [500, 502, 503, 504, 599]) {
      expect(answered(status).definitelyNotApplied).toBe(false);
      expect(answered(status).isPermanent).toBe(false);
    }
  });

  it("a timeout or a dropped connection may hide a success too", () => {
    expect(answered(undefined).definitelyNotApplied).toBe(false);
    expect(answered(undefined).isPermanent).toBe(false);
  });

  it("a 4xx is definitely not applied; a refusal other than 408/429 is permanent", () => {
    for (const status of [400, 404, 409, 422, 499]) {
      expect(answered(status).definitelyNotApplied).toBe(true);
      expect(answered(status).isPermanent).toBe(true);
    }
    for (const status of [408, 429]) {
      expect(answered(status).definitelyNotApplied).toBe(true);
      expect(answered(status).isPermanent).toBe(false);
    }
  });

  it("a 3xx is neither: it is not a refusal", () => {
    expect(answered(399).definitelyNotApplied).toBe(false);
    expect(answered(399).isPermanent).toBe(false);
  });

  it("a call our own budget held back was never sent: definitely not applied", () => {
    expect(new CloudflareCallError("deferred", undefined, 3, 3_000).definitelyNotApplied).toBe(true);
    expect(new CloudflareCallError("deferred", undefined, 3, 0).definitelyNotApplied).toBe(true);
  });

  it("answers 502 CLOUDFLARE_ERROR to our own callers, with Cloudflare's retry-after", () => {
    const error = new CloudflareCallError("Cloudflare Stream returned 429", 429, 7);
    expect(error).toMatchObject({ status: 502, code: "CLOUDFLARE_ERROR", retryAfter: 7, upstreamStatus: 429 });
  });
});
