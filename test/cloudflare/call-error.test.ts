import { APIConnectionError, APIConnectionTimeoutError, APIError } from "cloudflare/error";
import { describe, expect, it } from "vitest";
import { CloudflareCallError, toCloudflareError } from "../../src/cloudflare/call-error";

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

  it("a call our own budget held back was never sent: definitely not applied, and not a refusal", () => {
    expect(new CloudflareCallError("deferred", undefined, 3, 3_000).definitelyNotApplied).toBe(true);
    expect(new CloudflareCallError("deferred", undefined, 3, 0).definitelyNotApplied).toBe(true);
    expect(new CloudflareCallError("deferred", undefined, 3, 3_000).isPermanent).toBe(false);
  });

  it("answers 502 CLOUDFLARE_ERROR to our own callers, with Cloudflare's retry-after", () => {
    const error = new CloudflareCallError("Cloudflare Stream returned 429", 429, 7);
    expect(error).toMatchObject({ status: 502, code: "CLOUDFLARE_ERROR", retryAfter: 7, upstreamStatus: 429 });
  });
});

describe("every SDK failure becomes one CloudflareCallError", () => {
  const apiError = (status: number, body: object | undefined, headers: Record<string, string> = {}) =>
    APIError.generate(status, body, undefined, new Headers(headers));

  it("a 500 keeps its status, so it stays 'maybe applied', with Cloudflare's first error and code in the message", () => {
    const error = toCloudflareError(apiError(500, { errors: [{ code: 10001, message: "internal" }, { code: 2, message: "second" }] }));
    expect(error).toBeInstanceOf(CloudflareCallError);
    expect(error).toMatchObject({ upstreamStatus: 500, status: 502, code: "CLOUDFLARE_ERROR", retryAfter: undefined });
    expect(error.message).toBe("Cloudflare Stream returned 500: internal (code 10001)");
    expect(error.definitelyNotApplied).toBe(false);
  });

  it("a 429's retry-after header is carried as seconds; a missing or unreadable one is left out", () => {
    expect(toCloudflareError(apiError(429, { errors: [] }, { "retry-after": "42" })).retryAfter).toBe(42);
    expect(toCloudflareError(apiError(429, { errors: [] })).retryAfter).toBeUndefined();
    expect(toCloudflareError(apiError(429, { errors: [] }, { "retry-after": "soon" })).retryAfter).toBeUndefined();
  });

  it("an error whose headers are not a Headers object (no get) still maps, without a retry-after", () => {
    const error = toCloudflareError(new APIError(503, { errors: [] }, undefined, {} as unknown as Headers));
    expect(error).toMatchObject({ upstreamStatus: 503, retryAfter: undefined });
  });

  it("an error without Cloudflare's errors array is described by the SDK's own message", () => {
    const sdk = apiError(404, { errors: [] });
    expect(toCloudflareError(sdk).message).toBe(`Cloudflare Stream returned 404: ${sdk.message}`);
    const noBody = apiError(503, undefined);
    expect(toCloudflareError(noBody).message).toBe(`Cloudflare Stream returned 503: ${noBody.message}`);
  });

  it("Cloudflare's first error is quoted without a code when it has none, and skipped when it has no message", () => {
    expect(toCloudflareError(apiError(400, { errors: [{ message: "bad input" }] })).message).toBe("Cloudflare Stream returned 400: bad input");
    expect(toCloudflareError(apiError(400, { errors: [{ code: 0, message: "zero" }] })).message).toBe("Cloudflare Stream returned 400: zero (code 0)");
    const codeOnly = apiError(400, { errors: [{ code: 7 }] });
    expect(toCloudflareError(codeOnly).message).toBe(`Cloudflare Stream returned 400: ${codeOnly.message}`);
  });

  it("an APIError without a status is described as 'an error'", () => {
    const error = toCloudflareError(new APIError(undefined, undefined, "odd", undefined));
    expect(error.message).toBe("Cloudflare Stream returned an error: odd");
    expect(error.upstreamStatus).toBeUndefined();
  });

  it("a dropped connection or a timeout is 'unreachable': no status, maybe applied", () => {
    for (const sdk of [new APIConnectionError({ message: "socket hang up" }), new APIConnectionTimeoutError({ message: "Request timed out." })]) {
      const error = toCloudflareError(sdk);
      expect(error.message).toBe(`Cloudflare Stream unreachable: ${sdk.message}`);
      expect(error.upstreamStatus).toBeUndefined();
      expect(error.definitelyNotApplied).toBe(false);
    }
  });

  it("anything else thrown (a bug, a platform error) is a failed call, maybe applied", () => {
    const thrown = toCloudflareError(new TypeError("fetch failed"));
    expect(thrown.message).toBe("Cloudflare Stream call failed: fetch failed");
    expect(thrown.definitelyNotApplied).toBe(false);
    expect(toCloudflareError("a string").message).toBe("Cloudflare Stream call failed: a string");
  });

  it("a CloudflareCallError passes through as it is (a budget deferral stays a deferral)", () => {
    const deferred = new CloudflareCallError("deferred", undefined, 3, 3_000);
    expect(toCloudflareError(deferred)).toBe(deferred);
  });
});
