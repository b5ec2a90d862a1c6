import { DurableObject } from "cloudflare:workers";
import type { Env } from "../env";

/**
 * The durable index from a live input uid to its streamId: one tiny object per live input, so a
 * webhook (which names only the input) finds its stream with one lookup and no scanning.
 */
export class LiveInputIndex extends DurableObject<Env> {
  async set(streamId: string): Promise<void> {
    await this.ctx.storage.put("streamId", streamId);
  }

  async streamId(): Promise<string | null> {
    return (await this.ctx.storage.get<string>("streamId")) ?? null;
  }

  /** Called once the stream has deleted its input; later webhooks for it get 404. */
  async forget(): Promise<void> {
    await this.ctx.storage.deleteAll();
  }
}
