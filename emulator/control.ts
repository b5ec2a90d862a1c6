// Control API under /__emulator/: no auth, never rate limited, never faulted, never logged as calls.

import type { StreamEmulator } from "./core.ts";
import { ApiError, ErrorCode, json, readJsonObject } from "./envelope.ts";
import type { RelayState, StatusShape } from "./types.ts";

function notFound(message: string): never {
  throw new ApiError(404, ErrorCode.NotFound, message);
}

function invalid(message: string): never {
  throw new ApiError(400, ErrorCode.Validation, message);
}

export async function handleControl(emu: StreamEmulator, request: Request, url: URL): Promise<Response> {
  const method = request.method.toUpperCase();
  const parts = url.pathname.split("/").filter((p) => p !== "").slice(1); // drop "__emulator"
  const route = `${method} ${parts.map((p, i) => (i === 1 && parts.length > 2 ? ":id" : p)).join("/")}`;
  const id = parts[1] ?? "";
  // The Realtime SFU's sessions and tracks (realtime/sfu.ts); DELETE: that session's peer vanished.
  if (parts[0] === "realtime") {
    if (method === "GET" && parts.length === 1) return json(emu.realtime.snapshot());
    if (method === "DELETE" && parts[1] === "sessions" && parts.length === 3) {
      if (!emu.realtime.drop(parts[2]!)) notFound(`Realtime session not found: ${parts[2]}`);
      return json({ ok: true });
    }
  }

  switch (route) {
    case "GET state":
      return json(emu.snapshot());

    case "GET ingest":
      // Node host: live SRT publishes (and WHIP/WHEP sessions); workerd has none.
      return json(emu.ingestSessions());

    case "GET calls": {
      const since = url.searchParams.get("since");
      return json({ calls: emu.callLog(since === null ? undefined : parseSince(since)) });
    }
    case "DELETE calls":
      emu.clearCalls();
      return json({ ok: true });

    case "POST live_inputs/:id/connect":
      if (!emu.hasInput(id)) notFound(`Live input not found: ${id}`);
      if (!emu.connect(id)) throw new ApiError(409, ErrorCode.Validation, `Live input ${id} is disabled and refuses broadcasts`);
      return json({ ok: true });

    case "POST live_inputs/:id/disconnect": {
      const body = await readJsonObject(request);
      if (body.reason !== undefined && typeof body.reason !== "string") invalid("reason must be a string");
      if (!emu.disconnect(id, (body.reason as string | undefined) ?? "client_disconnect")) notFound(`Live input not found: ${id}`);
      return json({ ok: true });
    }

    case "POST live_inputs/:id/views": {
      // Pins the delivery host's `/views` count for this input (`null`: count real manifest clients again).
      const body = await readJsonObject(request);
      const n = body.liveViewers;
      if (n !== null && !(typeof n === "number" && Number.isInteger(n) && n >= 0)) invalid("liveViewers must be a non-negative integer or null");
      if (!emu.hasInput(id)) notFound(`Live input not found: ${id}`);
      emu.liveViewers.pin(id, n as number | null);
      return json({ ok: true });
    }

    case "POST live_inputs/:id/error": {
      const body = await readJsonObject(request);
      const code = body.code ?? "ERR_UNKNOWN";
      const message = body.message ?? "Unknown error";
      if (typeof code !== "string" || typeof message !== "string") invalid("code and message must be strings");
      if (!emu.erroredInput(id, { code, message })) notFound(`Live input not found: ${id}`);
      return json({ ok: true });
    }

    case "POST outputs/:id/relay": {
      const body = await readJsonObject(request);
      const state = body.state as RelayState;
      if (!["idle", "connecting", "active", "error"].includes(state)) invalid("state must be idle, connecting, active or error");
      const lastError = body.lastError ?? null;
      if (lastError !== null && typeof lastError !== "string") invalid("lastError must be a string or null");
      if (!emu.setRelayState(id, state, lastError)) notFound(`Output not found: ${id}`);
      return json({ ok: true });
    }

    case "POST faults":
      return json({ id: emu.faults.add(await readJsonObject(request)).id });
    case "GET clock":
      return json({ now: new Date(emu.clockNow()).toISOString(), offsetMs: emu.clockOffset });
    case "POST clock": {
      // Moves the emulator's time forward (never back): videos end, become ready and are deleted on schedule.
      const body = await readJsonObject(request);
      const ms = body.advanceMs ?? (typeof body.advanceSeconds === "number" ? body.advanceSeconds * 1000 : undefined);
      if (typeof ms !== "number" || !Number.isFinite(ms) || ms < 0) invalid("advanceMs or advanceSeconds must be a non-negative number");
      emu.advanceClock(ms);
      return json({ now: new Date(emu.clockNow()).toISOString(), offsetMs: emu.clockOffset });
    }

    case "POST videos/:id/error": {
      const body = await readJsonObject(request);
      const code = body.code ?? "ERR_UNKNOWN";
      const message = body.message ?? "Unknown error";
      if (typeof code !== "string" || typeof message !== "string") invalid("code and message must be strings");
      if (!emu.videos.fail(id, code, message)) notFound(`Video not found: ${id}`);
      return json({ ok: true });
    }

    case "GET faults":
      return json({ faults: emu.faults.list() });
    case "DELETE faults":
      emu.faults.clear();
      return json({ ok: true });

    case "GET config":
      return json(emu.config);
    case "POST config":
      applyConfig(emu, await readJsonObject(request));
      emu.markChanged();
      return json(emu.config);

    case "GET webhooks":
      return json({ deliveries: emu.webhooks.deliveries() });
    case "DELETE webhooks":
      emu.webhooks.clear();
      return json({ ok: true });

    case "POST reset": {
      const body = await readJsonObject(request);
      emu.reset({ config: body.config === true });
      return json({ ok: true });
    }
  }
  notFound(`No emulator control route ${method} ${url.pathname}`);
}

function parseSince(value: string): number {
  const ms = /^\d+$/.test(value) ? Number(value) : Date.parse(value);
  if (Number.isNaN(ms)) invalid("since must be an ISO date or epoch milliseconds");
  return ms;
}

function positiveInt(value: unknown, name: string): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < 1) invalid(`${name} must be a positive integer`);
  return value;
}

function applyConfig(emu: StreamEmulator, body: Record<string, unknown>): void {
  // Validate everything before changing anything.
  const c = { ...emu.config };
  if (body.webhookUrl !== undefined) {
    if (body.webhookUrl !== null && typeof body.webhookUrl !== "string") invalid("webhookUrl must be a string or null");
    c.webhookUrl = body.webhookUrl === "" ? null : (body.webhookUrl as string | null);
  }
  if (body.webhookSecret !== undefined) {
    if (typeof body.webhookSecret !== "string") invalid("webhookSecret must be a string");
    c.webhookSecret = body.webhookSecret;
  }
  if (body.rateLimitRequests !== undefined) c.rateLimitRequests = positiveInt(body.rateLimitRequests, "rateLimitRequests");
  if (body.rateLimitWindowSeconds !== undefined) c.rateLimitWindowSeconds = positiveInt(body.rateLimitWindowSeconds, "rateLimitWindowSeconds");
  if (body.rateLimitBlockSeconds !== undefined) {
    c.rateLimitBlockSeconds = positiveInt(body.rateLimitBlockSeconds, "rateLimitBlockSeconds");
  } else if (body.rateLimitWindowSeconds !== undefined) {
    c.rateLimitBlockSeconds = c.rateLimitWindowSeconds; // the block defaults to one window, as in Cloudflare
  }
  if (body.maxLiveInputs !== undefined) {
    if (typeof body.maxLiveInputs !== "number" || !Number.isInteger(body.maxLiveInputs) || body.maxLiveInputs < 0) {
      invalid("maxLiveInputs must be a non-negative integer");
    }
    c.maxLiveInputs = body.maxLiveInputs;
  }
  if (body.statusShape !== undefined) {
    if (body.statusShape !== "object" && body.statusShape !== "string") invalid("statusShape must be 'object' or 'string'");
    c.statusShape = body.statusShape as StatusShape;
  }
  if (body.verifyWebhookDestinations !== undefined) {
    if (typeof body.verifyWebhookDestinations !== "boolean") invalid("verifyWebhookDestinations must be a boolean");
    c.verifyWebhookDestinations = body.verifyWebhookDestinations;
  }
  for (const key of ["videoReadyDelaySeconds", "defaultRecordingTimeoutSeconds", "storageMinutesLimit"] as const) {
    const v = body[key];
    if (v === undefined) continue;
    if (typeof v !== "number" || !Number.isFinite(v) || v < 0) invalid(`${key} must be a non-negative number`);
    c[key] = v;
  }
  const rateChanged =
    c.rateLimitRequests !== emu.config.rateLimitRequests ||
    c.rateLimitWindowSeconds !== emu.config.rateLimitWindowSeconds ||
    c.rateLimitBlockSeconds !== emu.config.rateLimitBlockSeconds;
  Object.assign(emu.config, c);
  if (rateChanged) emu.applyRateLimitConfig();
}
