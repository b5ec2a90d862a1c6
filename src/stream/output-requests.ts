import { clock } from "../clock";
import { fail, type Result } from "../http/errors";
import type { ParsedRtmpUrl } from "../outputs/rtmp-url";
import { streamNotFound } from "./failures";
import type { AddedOutput, OutputView, Removal } from "./outputs";
import type { StreamParts } from "./parts";

/**
 * The restream-output calls as apps make them (REST, or a socket's `managed_stream_request`): outputs.ts
 * does the work; this adds what follows each for the stream — the push to viewers, and the poll plan
 * (outputs change what is polled).
 */
export class OutputRequests {
  constructor(private readonly p: StreamParts) {}

  async add(packageName: string, url: ParsedRtmpUrl, name: string | null, idempotencyKey: string | null): Promise<Result<AddedOutput>> {
    const { s, creation, outputs, publisher, sync } = this.p;
    if (creation.inFlight) await creation.inFlight;
    const result = await outputs.addIdempotent(packageName, url, name, idempotencyKey);
    publisher.pushIfChanged();
    if (result.ok && s.store.get()?.phase === "running") {
      sync.reschedule(clock.now());
      await s.schedule.arm();
    }
    return result;
  }

  async remove(packageName: string, outputId: string): Promise<Result<Removal>> {
    const result = await this.p.outputs.remove(packageName, outputId);
    this.p.publisher.pushIfChanged();
    return result;
  }

  async setEnabled(packageName: string, outputId: string, enabled: boolean): Promise<Result<object>> {
    const result = await this.p.outputs.setEnabled(packageName, outputId, enabled);
    this.p.publisher.pushIfChanged();
    return result;
  }

  /** GET outputs: viewers only; the stream key is shown only to the app that added each output. */
  async list(packageName: string): Promise<Result<{ outputs: OutputView[] }>> {
    const { s, creation, presence, views } = this.p;
    if (creation.inFlight) await creation.inFlight;
    const record = s.store.get();
    if (!record || record.phase === "initializing") return streamNotFound();
    if (!presence.presentApps(clock.now()).has(packageName)) return fail(403, "NOT_A_VIEWER", "App is not viewing the stream");
    return { ok: true, outputs: views.outputViews(record, packageName) };
  }
}
