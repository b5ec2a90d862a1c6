/**
 * Benchmark part (b): time from ingest connecting at the (emulated) Cloudflare to a viewer's WebSocket
 * receiving `active`, on the real `npm start` stack — once with webhooks, once with polling alone.
 */
// @ts-expect-error -- plain JS helpers shared with the end-to-end tests
import { admin, http, openSocket, startStack, unique, userGrant } from "../../test/e2e/stack.mjs";

export interface LatencyResult {
  samples: number[];
  medianMs: number;
  maxMs: number;
}

export async function measureActivation(mode: "webhook" | "polling", samples: number): Promise<LatencyResult> {
  const stack = await startStack(mode === "polling" ? { WEBHOOK_SECRET: "" } : {});
  try {
    const packageName = unique("com.bench.latency");
    const app = await http("POST", `${stack.coordinator}/api/admin/apps`, { body: { packageName }, headers: admin });
    const headers = { "x-api-key": app.body.apiKey, "x-package-name": packageName };
    const results: number[] = [];
    for (let i = 0; i < samples; i++) {
      const userId = unique("bench-user");
      const grant = await userGrant(stack.coordinator, userId, packageName);
      const started = await http("POST", `${stack.coordinator}/api/streams`, { body: { userId }, headers: { ...headers, "x-user-grant": grant } });
      if (started.status !== 201) throw new Error(`start failed: ${started.status} ${JSON.stringify(started.body)}`);
      const streamId = started.body.streamId;
      const viewer = await openSocket(`${stack.coordinator.replace("http", "ws")}/api/streams/${streamId}/ws`, headers);
      await viewer.next("initial status", (m: { type: string }) => m.type === "managed_stream_status");
      const state = await http("GET", `${stack.emulator}/__emulator/state`);
      const uid = state.body.inputs.find((input: { meta: { streamId?: string } }) => input.meta?.streamId === streamId).uid;
      // Let the first fast poll pass, so the polling figure is not flattered by a poll landing at once.
      await new Promise((r) => setTimeout(r, 700));
      const t0 = Date.now();
      await http("POST", `${stack.emulator}/__emulator/live_inputs/${uid}/connect`);
      const active = await viewer.next("active", (m: { status?: string }) => m.status === "active", { timeoutMs: 15_000 });
      results.push(active.receivedAt - t0);
      await viewer.close();
      await http("POST", `${stack.coordinator}/api/admin/streams/${streamId}/stop`, { headers: admin });
    }
    const sorted = [...results].sort((a, b) => a - b);
    return { samples: results, medianMs: sorted[Math.floor(sorted.length / 2)]!, maxMs: sorted.at(-1)! };
  } finally {
    await stack.stop();
  }
}
