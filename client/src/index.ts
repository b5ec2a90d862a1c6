// @stream-coordinator/client: a typed client for the Stream Coordinator REST API and viewer socket.
// No runtime dependencies: the platform's fetch and WebSocket (Node 20+: pass the `ws` package's).
export { AdminClient, AppClient, DeviceClient } from "./client.js";
export type { AdminClientOptions, AppClientOptions, DeviceClientOptions, StartOptions, AddOutputOptions } from "./client.js";
export { ApiError, NetworkError, TimeoutError, AbortedError, CoordinatorError, isApiError, isClientError, parseRetryAfter } from "./errors.js";
export type { ClientError, ErrorCode, SocketErrorCode, UnknownCode, RouteErrors, Route } from "./errors.js";
export type { ClientOptions, CallOptions, RetryOptions, FetchLike } from "./http.js";
export { Viewer, connectViewer } from "./viewer.js";
export type {
  ConnectViewerOptions,
  ViewerOptions,
  ReconnectOptions,
  ViewerEvents,
  ViewerClosed,
  ViewerCloseReason,
  ServerMessage,
  WebSocketLike,
  WebSocketConstructor,
} from "./viewer.js";
export type * from "./types.js";
