// The coordinator talks to the emulator through the official SDK: prove the shapes line up. Every answer
// the SDK gets is also checked against Cloudflare's published schema (checkedFetch).
import Cloudflare from "cloudflare";
import { beforeEach, describe, expect, it } from "vitest";
import { ACCOUNT, BASE, TOKEN, control, reset } from "./helpers.ts";
import { checkedFetch } from "./openapi.ts";

const client = new Cloudflare({ apiToken: TOKEN, baseURL: `${BASE}/client/v4`, maxRetries: 0, fetch: checkedFetch });
const account_id = ACCOUNT;

beforeEach(() => reset());

describe("cloudflare SDK against the emulator", () => {
  it("live inputs: create, get, list, update, delete", async () => {
    const created = await client.stream.liveInputs.create({
      account_id,
      meta: { name: "sdk" },
      recording: { mode: "automatic", timeoutSeconds: 10 },
      deleteRecordingAfterDays: 30,
      preferLowLatency: true,
      "Idempotency-Key": "sdk-1",
    });
    expect(created.uid).toMatch(/^[0-9a-f]{32}$/);
    expect(created.rtmps?.streamKey).toBeTruthy();
    expect(created.recording?.mode).toBe("automatic");
    const again = await client.stream.liveInputs.create({ account_id, "Idempotency-Key": "sdk-1" });
    expect(again.uid).toBe(created.uid);

    const got = await client.stream.liveInputs.get(created.uid!, { account_id });
    expect(got.meta).toEqual({ name: "sdk" });

    const list = await client.stream.liveInputs.list({ account_id });
    expect(list.total).toBe(1);
    expect(list.liveInputs?.[0]?.uid).toBe(created.uid);

    const updated = await client.stream.liveInputs.update(created.uid!, { account_id, meta: { name: "renamed" }, enabled: false });
    expect(updated.meta).toEqual({ name: "renamed" });
    expect(updated.enabled).toBe(false);

    await client.stream.liveInputs.delete(created.uid!, { account_id });
    await expect(client.stream.liveInputs.get(created.uid!, { account_id })).rejects.toBeInstanceOf(Cloudflare.NotFoundError);
  });

  it("outputs: create, list, update, delete", async () => {
    const input = await client.stream.liveInputs.create({ account_id });
    const live_input_identifier = input.uid!;
    const out = await client.stream.liveInputs.outputs.create(live_input_identifier, {
      account_id,
      url: "rtmp://a.rtmp.youtube.com/live2",
      streamKey: "yt",
    });
    expect(out).toMatchObject({ url: "rtmp://a.rtmp.youtube.com/live2", streamKey: "yt", enabled: true });

    const page = await client.stream.liveInputs.outputs.list(live_input_identifier, { account_id });
    expect(page.result.map((o) => o.uid)).toEqual([out.uid]);
    const all = [];
    for await (const o of client.stream.liveInputs.outputs.list(live_input_identifier, { account_id })) all.push(o);
    expect(all).toHaveLength(1);

    const updated = await client.stream.liveInputs.outputs.update(out.uid!, { account_id, live_input_identifier, enabled: false });
    expect(updated.enabled).toBe(false);

    await client.stream.liveInputs.outputs.delete(out.uid!, { account_id, live_input_identifier });
    expect((await client.stream.liveInputs.outputs.list(live_input_identifier, { account_id })).result).toEqual([]);
  });

  it("maps emulator errors to the SDK's error classes", async () => {
    const bad = new Cloudflare({ apiToken: "wrong", baseURL: `${BASE}/client/v4`, maxRetries: 0, fetch: checkedFetch });
    const authErr = await bad.stream.liveInputs.list({ account_id }).catch((e: unknown) => e);
    expect(authErr).toBeInstanceOf(Cloudflare.PermissionDeniedError);
    expect((authErr as InstanceType<typeof Cloudflare.APIError>).errors[0]?.code).toBe(10000);

    await control("POST", "config", { rateLimitRequests: 1, rateLimitWindowSeconds: 60 });
    await client.stream.liveInputs.list({ account_id });
    const rl = await client.stream.liveInputs.list({ account_id }).catch((e: unknown) => e);
    expect(rl).toBeInstanceOf(Cloudflare.RateLimitError);
    expect(Number((rl as InstanceType<typeof Cloudflare.RateLimitError>).headers?.get("retry-after"))).toBeGreaterThan(0);

    await reset();
    const badRequest = await client.stream.liveInputs.create({ account_id, deleteRecordingAfterDays: 5 }).catch((e: unknown) => e);
    expect(badRequest).toBeInstanceOf(Cloudflare.BadRequestError);

    await control("POST", "faults", { path: "/client/v4/**", drop: true });
    const dropped = await client.stream.liveInputs.list({ account_id }).catch((e: unknown) => e);
    expect(dropped).toBeInstanceOf(Cloudflare.APIConnectionError);
  });
});
