import { describe, expect, it } from "vitest";
import { loadConfig } from "../src/config";
import type { Env } from "../src/env";

const load = (vars: Record<string, string | undefined>) => loadConfig(vars as unknown as Env);

describe("configuration", () => {
  it("has production defaults", () => {
    expect(load({})).toMatchObject({
      cloudflareApiBaseUrl: "https://api.cloudflare.com/client/v4",
      streamStartsPerMinute: 10,
      joinWindowSeconds: 30,
      viewerGraceSeconds: 60,
      pollSlowSeconds: 30,
      outputsPollSeconds: 1_800,
      apiBudgetPer5Min: 1_000,
      apiBudgetPollShare: 0.8,
      leakSweepMinutes: 10,
      requireUserGrant: true,
    });
  });

  it("requires user grants unless REQUIRE_USER_GRANT is exactly false", () => {
    expect(load({ REQUIRE_USER_GRANT: "false" }).requireUserGrant).toBe(false);
    for (const value of [undefined, "", "true", "FALSE", "False", "0", "no", "off", " false", "false "]) {
      expect(load({ REQUIRE_USER_GRANT: value }).requireUserGrant, JSON.stringify(value)).toBe(true);
    }
  });

  it("clamps out-of-range numbers and ignores garbage", () => {
    const c = load({ API_BUDGET_PER_5_MIN: "1500", VIEWER_GRACE_SECONDS: "-5", POLL_SLOW_SECONDS: "soon", API_BUDGET_POLL_SHARE: "7" });
    expect(c.apiBudgetPer5Min).toBe(1_199);
    expect(c.viewerGraceSeconds).toBe(0);
    expect(c.pollSlowSeconds).toBe(30);
    expect(c.apiBudgetPollShare).toBe(1);
  });
});
