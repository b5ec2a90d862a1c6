// The Cloudflare API's routes as the emulator serves them: the URL table, the account and token checks and
// the rate limit, then the module of each resource (live-inputs.ts, outputs.ts, videos.ts, notifications.ts,
// realtime/sfu.ts). Every error is Cloudflare's envelope, never a throw.

import { ApiError, ErrorCode, fromApiError, ok } from "./envelope.ts";
import type { LiveInputs } from "./live-inputs.ts";
import type { Notifications } from "./notifications.ts";
import type { Outputs } from "./outputs.ts";
import type { RateLimiter } from "./rate-limit.ts";
import type { RealtimeSfu } from "./realtime/sfu.ts";
import type { EmulatorConfig } from "./types.ts";
import { NO_METHOD, type VideoLibrary } from "./videos.ts";

export interface ApiParts {
  config: EmulatorConfig;
  realtime: RealtimeSfu;
  rateLimiter: RateLimiter;
  inputs: LiveInputs;
  outputs: Outputs;
  videos: VideoLibrary;
  notifications: Notifications;
}

export async function routeApi(api: ApiParts, request: Request, path: string): Promise<Response> {
  const realtime = await api.realtime.handle(request, path);
  if (realtime) return realtime;
  try {
    if (!path.startsWith("/client/v4/")) throw new ApiError(404, ErrorCode.NoRoute, `Could not route to ${path}`);
    authenticate(api.config, request);
    const m = /^\/client\/v4\/accounts\/([^/]+)\/stream\/live_inputs(?:\/([^/]+)(?:\/(outputs|rotate_keys|videos)(?:\/([^/]+))?)?)?\/?$/.exec(path);
    // Videos: /stream, /stream/:uid, /stream/webhook, /stream/storage-usage (anything under /stream but live_inputs).
    const video = m ? null : /^\/client\/v4\/accounts\/([^/]+)\/stream(\/.*)?$/.exec(path);
    const alerting = /^\/client\/v4\/accounts\/([^/]+)\/alerting\/v3\/(destinations\/webhooks|policies)(?:\/([^/]+))?\/?$/.exec(path);
    const account = m?.[1] ?? alerting?.[1] ?? video?.[1];
    if (account !== undefined && account !== api.config.accountId) throw new ApiError(403, ErrorCode.Authentication, "Authentication error");
    const retryAfter = api.rateLimiter.take();
    if (retryAfter !== null) {
      throw new ApiError(429, ErrorCode.RateLimited, "Please wait and consider throttling your request speed", {
        "retry-after": String(retryAfter),
      });
    }
    const noRoute = () => new ApiError(404, ErrorCode.NoRoute, `Could not route to ${path}, perhaps your object identifier is invalid?`);
    const method = request.method.toUpperCase();
    if (alerting) {
      const [, , kind, id] = alerting;
      const answer = await api.notifications.route(kind!, method, id, request);
      if (answer) return answer;
      throw new ApiError(405, ErrorCode.MethodNotAllowed, `Method ${method} not allowed on ${path}`);
    }
    if (video) {
      const result = await api.videos.route(method, video[2] ?? "", new URL(request.url), request);
      if (result !== NO_METHOD) return ok(result);
      throw new ApiError(405, ErrorCode.MethodNotAllowed, `Method ${method} not allowed on ${path}`);
    }
    if (!m) throw noRoute();
    const [, , inputId, sub, outputId] = m;
    const inputs = api.inputs;
    if (sub === "videos") {
      if (outputId) throw noRoute();
      // The input's own listing: gone with the input (its videos are not: GET /stream?live_input_id= finds them).
      if (method === "GET") return ok(api.videos.listForInput(inputs.require(inputId!).uid, new URL(request.url).searchParams));
    } else if (sub === "rotate_keys") {
      if (outputId) throw noRoute();
      if (method === "POST") return inputs.rotateKeys(inputId!);
    } else if (!inputId) {
      if (method === "POST") return await inputs.create(request);
      if (method === "GET") return inputs.list();
    } else if (sub !== "outputs") {
      if (method === "GET") return ok(inputs.render(inputs.require(inputId)));
      if (method === "PUT") return await inputs.update(inputId, request);
      if (method === "DELETE") return inputs.delete(inputId);
    } else if (!outputId) {
      if (method === "POST") return await api.outputs.create(inputs.require(inputId), request);
      if (method === "GET") return ok(api.outputs.rendered(inputs.require(inputId)));
    } else {
      if (method === "PUT") return await api.outputs.update(inputs.require(inputId), outputId, request);
      if (method === "DELETE") return api.outputs.delete(inputs.require(inputId), outputId);
    }
    throw new ApiError(405, ErrorCode.MethodNotAllowed, `Method ${method} not allowed on ${path}`);
  } catch (e) {
    if (e instanceof ApiError) return fromApiError(e);
    throw e;
  }
}

function authenticate(config: EmulatorConfig, request: Request): void {
  const header = request.headers.get("authorization") ?? "";
  const match = /^Bearer\s+(.+)$/i.exec(header.trim());
  if (!match || match[1] !== config.apiToken) {
    throw new ApiError(403, ErrorCode.Authentication, "Authentication error");
  }
}
