// Cloudflare's live viewer count (`GET /<input uid>/views` → `{"liveViewers": N}`), for real: N is the
// number of distinct HLS/DASH clients that fetched the input's live manifest within the last
// VIEWER_WINDOW_MS (players refresh a live manifest every segment or two, so a watching client keeps
// counting and one that left drops out). A client is its address (the Node host sets
// x-emulator-client from the socket, never from the caller) and User-Agent. `/__emulator` can pin N
// per input for tests that need a number without players (`POST live_inputs/:id/views`).

export const VIEWER_WINDOW_MS = 10_000;

export class LiveViewers {
  private readonly seen = new Map<string, Map<string, number>>();
  private readonly pinned = new Map<string, number>();

  /** A live manifest (video.m3u8 / video.mpd) was served to this request. */
  fetched(inputUid: string, request: Request, now: number): void {
    const client = `${request.headers.get("x-emulator-client") ?? request.headers.get("cf-connecting-ip") ?? ""}|${request.headers.get("user-agent") ?? ""}`;
    let clients = this.seen.get(inputUid);
    if (!clients) this.seen.set(inputUid, (clients = new Map()));
    clients.set(client, now);
  }

  count(inputUid: string, now: number): number {
    const pinned = this.pinned.get(inputUid);
    if (pinned !== undefined) return pinned;
    const clients = this.seen.get(inputUid);
    if (!clients) return 0;
    for (const [client, at] of clients) if (now - at > VIEWER_WINDOW_MS) clients.delete(client);
    if (clients.size === 0) this.seen.delete(inputUid);
    return clients.size;
  }

  /** A fixed count for an input (`null`: count real clients again). */
  pin(inputUid: string, liveViewers: number | null): void {
    if (liveViewers === null) this.pinned.delete(inputUid);
    else this.pinned.set(inputUid, liveViewers);
  }

  /** The input ended its broadcast or was deleted: nobody is watching it live any more. */
  forget(inputUid: string): void {
    this.seen.delete(inputUid);
  }

  clear(): void {
    this.seen.clear();
    this.pinned.clear();
  }
}
