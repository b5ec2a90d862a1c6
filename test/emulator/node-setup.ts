// Node setup for the emulator's own tests (vitest.emulator.config.ts): one StreamEmulator in this test
// isolate, reached by every fetch() as miniflare's outboundService reaches it under workerd (whatever the
// hostname). In the same isolate as the tests, so mutation testing (Stryker) can switch its mutants.
import { StreamEmulator } from "../../emulator/core.ts";

const platformFetch = globalThis.fetch.bind(globalThis);
const emulator = new StreamEmulator({
  // As in workerd (emulator/worker.ts without a COORDINATOR binding): webhooks go out over the network.
  sendWebhook: (url, init) => platformFetch(url, init),
});

globalThis.fetch = async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
  try {
    return await emulator.fetch(new Request(input, init));
  } catch (error) {
    // workerd rejects the caller's fetch with the outbound service's exception, name included.
    const e = error as Error;
    throw new TypeError(`${e.name}: ${e.message}`);
  }
};
