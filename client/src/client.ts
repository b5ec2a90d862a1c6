// REST clients, one per kind of caller: the platform (admin token), an app (API key + package name) and
// the user's device (device token). Every method throws a `ClientError` (errors.ts) on failure.
import type { RouteErrors } from "./errors.js";
import { Transport, randomKey, type CallOptions, type ClientOptions } from "./http.js";
import type {
  AddOutputInput,
  AddedOutput,
  AppCredentials,
  DeletedApp,
  DeviceStreamInfo,
  DeviceToken,
  DeviceTokenInput,
  HealthResponse,
  OutputList,
  PatchedOutput,
  RemovedOutput,
  StartStreamInput,
  StartStreamResponse,
  StreamSnapshot,
  Ticket,
  UserGrant,
  UserGrantInput,
} from "./types.js";
import { Viewer, type ViewerOptions, type WebSocketConstructor } from "./viewer.js";

const seg = encodeURIComponent;

abstract class BaseClient {
  protected readonly http: Transport;
  constructor(options: ClientOptions, auth: Record<string, string>) {
    this.http = new Transport(options, auth);
  }
  get baseUrl(): string {
    return this.http.baseUrl;
  }
  /** `GET /healthz`. */
  async health(options?: CallOptions): Promise<HealthResponse> {
    return (await this.http.call<HealthResponse>({ route: "health", method: "GET", path: "/healthz", repeatable: true, ...options })).body;
  }
}

export interface AdminClientOptions extends ClientOptions {
  /** `ADMIN_TOKEN` of the deployment (`npm start`: `local-admin-token`). */
  adminToken: string;
}

/** The platform's calls (`/api/admin/*`). Failures: `ApiError<RouteErrors[method]>` and the other ClientError kinds. */
export class AdminClient extends BaseClient {
  constructor(options: AdminClientOptions) {
    super(options, { authorization: `Bearer ${options.adminToken}` });
  }

  /** `POST /api/admin/apps` → 201. The API key is shown only here. Not retried (a retry would be APP_EXISTS). */
  async registerApp(packageName: string, options?: CallOptions): Promise<AppCredentials> {
    return (await this.http.call<AppCredentials, "registerApp">({ route: "registerApp", method: "POST", path: "/api/admin/apps", body: { packageName }, repeatable: false, ...options })).body;
  }

  /** `POST /api/admin/apps/:packageName/rotate-key`: a new key; the old one stops working (≤ 5 s everywhere). Not retried. */
  async rotateKey(packageName: string, options?: CallOptions): Promise<AppCredentials> {
    return (await this.http.call<AppCredentials, "rotateKey">({ route: "rotateKey", method: "POST", path: `/api/admin/apps/${seg(packageName)}/rotate-key`, repeatable: false, ...options })).body;
  }

  /** `DELETE /api/admin/apps/:packageName`. Not retried (a retry after a lost answer would be APP_NOT_FOUND). */
  async deleteApp(packageName: string, options?: CallOptions): Promise<DeletedApp> {
    return (await this.http.call<DeletedApp, "deleteApp">({ route: "deleteApp", method: "DELETE", path: `/api/admin/apps/${seg(packageName)}`, repeatable: false, ...options })).body;
  }

  /** `POST /api/admin/device-tokens` → 201: the token the user's glasses authenticate with. */
  async mintDeviceToken(input: DeviceTokenInput, options?: CallOptions): Promise<DeviceToken> {
    return (await this.http.call<DeviceToken, "mintDeviceToken">({ route: "mintDeviceToken", method: "POST", path: "/api/admin/device-tokens", body: input, repeatable: true, ...options })).body;
  }

  /** `POST /api/admin/user-grants` → 201: the grant an app sends as `X-User-Grant` to start or join. */
  async mintUserGrant(input: UserGrantInput, options?: CallOptions): Promise<UserGrant> {
    return (await this.http.call<UserGrant, "mintUserGrant">({ route: "mintUserGrant", method: "POST", path: "/api/admin/user-grants", body: input, repeatable: true, ...options })).body;
  }

  /** `POST /api/admin/streams/:streamId/stop`: stops now (idempotent). */
  async stopStream(streamId: string, options?: CallOptions): Promise<StreamSnapshot> {
    return (await this.http.call<StreamSnapshot, "stopStream">({ route: "stopStream", method: "POST", path: `/api/admin/streams/${seg(streamId)}/stop`, repeatable: true, ...options })).body;
  }
}

export interface AppClientOptions extends ClientOptions {
  apiKey: string;
  packageName: string;
  /** Default WebSocket implementation for `viewer()` (Node 20: the `ws` package). */
  WebSocket?: WebSocketConstructor;
}

export interface StartOptions extends CallOptions {
  /** The user's grant for this app (`AdminClient.mintUserGrant`), required unless REQUIRE_USER_GRANT=false. */
  grant?: string;
}

export interface AddOutputOptions extends CallOptions {
  /**
   * Sent as `Idempotency-Key`. Default: a fresh `crypto.randomUUID()` per call, reused by its retries (a
   * lost answer or a 503 is retried with the same key, so it never adds twice). Pass your own to make a
   * retry across calls (or processes) safe too; `false` sends none and does not retry.
   */
  idempotencyKey?: string | false;
}

/** An app's calls (X-API-Key + X-Package-Name). */
export class AppClient extends BaseClient {
  readonly packageName: string;
  private readonly authHeaders: Record<string, string>;
  private readonly WebSocketImpl: WebSocketConstructor | undefined;

  constructor(options: AppClientOptions) {
    const auth = { "x-api-key": options.apiKey, "x-package-name": options.packageName };
    super(options, auth);
    this.packageName = options.packageName;
    this.authHeaders = auth;
    this.WebSocketImpl = options.WebSocket;
  }

  /**
   * `POST /api/streams`: starts the user's stream or joins the running one (`created` tells which), with
   * the user's grant. Retried on a lost answer or 503 (a repeat joins the same stream; each counts against
   * STREAM_STARTS_PER_MINUTE).
   */
  async startStream(input: StartStreamInput, { grant, ...options }: StartOptions = {}): Promise<StartStreamResponse> {
    const headers: Record<string, string> = grant ? { "x-user-grant": grant } : {};
    return (await this.http.call<StartStreamResponse, "startStream">({ route: "startStream", method: "POST", path: "/api/streams", body: input, headers, repeatable: true, ...options })).body;
  }

  /** `GET /api/streams/:streamId`: the snapshot (404 STREAM_NOT_FOUND unless this app joined). */
  async getStream(streamId: string, options?: CallOptions): Promise<StreamSnapshot> {
    return (await this.http.call<StreamSnapshot, "getStream">({ route: "getStream", method: "GET", path: `/api/streams/${seg(streamId)}`, repeatable: true, ...options })).body;
  }

  /** `DELETE /api/streams/:streamId`: this app leaves; the stream goes on for others. */
  async leaveStream(streamId: string, options?: CallOptions): Promise<StreamSnapshot> {
    return (await this.http.call<StreamSnapshot, "leaveStream">({ route: "leaveStream", method: "DELETE", path: `/api/streams/${seg(streamId)}`, repeatable: true, ...options })).body;
  }

  /** `POST /api/streams/:streamId/tickets` → 201: a single-use, 60 s ticket for a viewer socket (`?ticket=`). */
  async createTicket(streamId: string, options?: CallOptions): Promise<Ticket> {
    return (await this.http.call<Ticket, "createTicket">({ route: "createTicket", method: "POST", path: `/api/streams/${seg(streamId)}/tickets`, repeatable: true, ...options })).body;
  }

  /** `POST /api/streams/:streamId/outputs`: a restream output, idempotent by default (see `idempotencyKey`). */
  async addOutput(streamId: string, input: AddOutputInput, { idempotencyKey, ...options }: AddOutputOptions = {}): Promise<AddedOutput> {
    const key = idempotencyKey === false ? null : (idempotencyKey ?? randomKey());
    const headers: Record<string, string> = key ? { "idempotency-key": key } : {};
    return (await this.http.call<AddedOutput, "addOutput">({ route: "addOutput", method: "POST", path: `/api/streams/${seg(streamId)}/outputs`, body: input, headers, repeatable: key !== null, ...options })).body;
  }

  /** `GET /api/streams/:streamId/outputs` (the app must be viewing: open socket or join hold). */
  async listOutputs(streamId: string, options?: CallOptions): Promise<OutputList> {
    return (await this.http.call<OutputList, "listOutputs">({ route: "listOutputs", method: "GET", path: `/api/streams/${seg(streamId)}/outputs`, repeatable: true, ...options })).body;
  }

  /**
   * `DELETE /api/streams/:streamId/outputs/:outputId`: `pending` when the server answered 202 (Cloudflare
   * confirms within RECONCILE_SECONDS). Not retried: a repeat after a lost answer is OUTPUT_NOT_FOUND.
   */
  async removeOutput(streamId: string, outputId: string, options?: CallOptions): Promise<RemovedOutput> {
    const answer = await this.http.call<Omit<RemovedOutput, "pending">, "removeOutput">({
      route: "removeOutput",
      method: "DELETE",
      path: `/api/streams/${seg(streamId)}/outputs/${seg(outputId)}`,
      repeatable: false,
      ...options,
    });
    return { ...answer.body, pending: answer.status === 202 };
  }

  /** `PATCH /api/streams/:streamId/outputs/:outputId` `{enabled}` (owner only; idempotent). */
  async setOutputEnabled(streamId: string, outputId: string, enabled: boolean, options?: CallOptions): Promise<PatchedOutput> {
    return (
      await this.http.call<PatchedOutput, "setOutputEnabled">({
        route: "setOutputEnabled",
        method: "PATCH",
        path: `/api/streams/${seg(streamId)}/outputs/${seg(outputId)}`,
        body: { enabled },
        repeatable: true,
        ...options,
      })
    ).body;
  }

  /**
   * A viewer socket that reconnects on its own (exponential backoff with full jitter) and resumes with the
   * current status. Connecting starts at once; see `ViewerOptions`.
   */
  viewer(streamId: string, options: ViewerOptions = {}): Viewer {
    const WebSocket = options.WebSocket ?? this.WebSocketImpl;
    return new Viewer(
      {
        baseUrl: this.baseUrl,
        authHeaders: this.authHeaders,
        createTicket: (id, o) => this.createTicket(id, o),
        getStream: (id, o) => this.getStream(id, o),
        leaveStream: (id) => this.leaveStream(id),
      },
      streamId,
      { ...options, ...(WebSocket ? { WebSocket } : {}) },
    );
  }
}

export interface DeviceClientOptions extends ClientOptions {
  /** From `AdminClient.mintDeviceToken`. */
  deviceToken: string;
}

/** The user's glasses. */
export class DeviceClient extends BaseClient {
  constructor(options: DeviceClientOptions) {
    super(options, { authorization: `Bearer ${options.deviceToken}` });
  }

  /** `GET /api/device/stream`: the user's stream with its ingest credentials (`start` null unless running). */
  async getStream(options?: CallOptions): Promise<DeviceStreamInfo> {
    return (await this.http.call<DeviceStreamInfo, "deviceStream">({ route: "deviceStream", method: "GET", path: "/api/device/stream", repeatable: true, ...options })).body;
  }
}

export type { RouteErrors };
