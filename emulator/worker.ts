// workerd entry: one StreamEmulator per isolate, so state persists across requests.
// vitest.config.ts bundles this file and wires it as miniflare's outboundService.

import { StreamEmulator } from "./core.ts";
import { SignallingOnlyWebRtc } from "./webrtc-signalling.ts";

interface Env {
  /** Optional service binding to the coordinator: webhooks are delivered through it. */
  COORDINATOR?: Fetcher;
}

// Created lazily: workerd forbids random values (ids) at module scope, and env arrives with the first request.
let emulator: StreamEmulator | null = null;
let coordinator: Fetcher | undefined;

function instance(env: Env): StreamEmulator {
  coordinator = env.COORDINATOR;
  if (!emulator) {
    // No UDP here: WHIP/WHEP are signalling only (a WHIP publish connects its input, its DELETE disconnects it).
    const webrtc = new SignallingOnlyWebRtc(() => emulator!);
    emulator = new StreamEmulator({
      sendWebhook: (url, init) => (coordinator ? coordinator.fetch(url, init) : fetch(url, init)),
      webrtc,
      kickIngest: (key) => webrtc.kick(key),
      ingestSessions: () => webrtc.view(),
    });
  }
  return emulator;
}

export default {
  async fetch(request: Request, env: Env, ctx: ExecutionContext): Promise<Response> {
    const emu = instance(env);
    try {
      // A DroppedConnectionError propagates: workerd then rejects the caller's fetch() (see README).
      return await emu.fetch(request);
    } finally {
      // Webhook deliveries outlive the request that triggered them.
      ctx.waitUntil(emu.settled());
    }
  },
} satisfies ExportedHandler<Env>;
