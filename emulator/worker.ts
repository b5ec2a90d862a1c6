// workerd entry: one StreamEmulator per isolate, so state persists across requests.
// vitest.config.ts bundles this file and wires it as miniflare's outboundService.

import { StreamEmulator } from "./core.ts";

interface Env {
  /** Optional service binding to the coordinator: webhooks are delivered through it. */
  COORDINATOR?: Fetcher;
}

// Created lazily: workerd forbids random values (ids) at module scope, and env arrives with the first request.
let emulator: StreamEmulator | null = null;
let coordinator: Fetcher | undefined;

function instance(env: Env): StreamEmulator {
  coordinator = env.COORDINATOR;
  emulator ??= new StreamEmulator({
    sendWebhook: (url, init) => (coordinator ? coordinator.fetch(url, init) : fetch(url, init)),
  });
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
