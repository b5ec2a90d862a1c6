// A MentraOS SDK app's camera, wired to a Stream Coordinator stream socket: the SDK's own
// CameraManagedExtension sends through the socket, and incoming frames are dispatched to it as the SDK's
// AppSession dispatches them. Used as-is by the conformance suite (test/e2e/mentra-sdk.test.mjs).
import { CameraManagedExtension, isManagedStreamStatus, isStreamStatusCheckResponse } from "@mentra/sdk";

const quiet = { child: () => quiet, debug() {}, info() {}, warn() {}, error() {} };

/**
 * `ws`: an open WebSocket (the `ws` package, or a browser/Workers WebSocket) to
 * `/api/streams/:streamId/ws`. Returns the SDK's camera: startManagedStream(), checkExistingStream(),
 * stopManagedStream(), onManagedStreamStatus(). Pass your app's pino logger to see the SDK's logs.
 */
export function managedCamera(ws, packageName, { logger = quiet } = {}) {
  const statusHandlers = new Set();
  const session = {
    // As AppSession.send does: stamp the message, send it as JSON.
    sendMessage: (message) => ws.send(JSON.stringify({ ...message, timestamp: new Date() })),
    subscribe: () => {},
    on: (_stream, handler) => (statusHandlers.add(handler), () => statusHandlers.delete(handler)),
  };
  const camera = new CameraManagedExtension(session, packageName, "stream-coordinator", logger);
  const onFrame = (data) => {
    const message = JSON.parse(String(data?.data ?? data));
    if (isManagedStreamStatus(message)) {
      for (const handler of statusHandlers) handler(message);
      camera.handleManagedStreamStatus(message);
    } else if (isStreamStatusCheckResponse(message)) {
      camera.handleStreamCheckResponse(message);
    }
  };
  if (typeof ws.on === "function") ws.on("message", onFrame);
  else ws.addEventListener("message", onFrame);
  return camera;
}
