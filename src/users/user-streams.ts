import { DurableObject } from "cloudflare:workers";
import { nanoid } from "nanoid";
import type { Env } from "../env";
import { fail, type Result } from "../http/errors";
import type { CreateInput } from "../stream/lifecycle";
import { Sql } from "../stream/sql";
import type { StreamCoordinator } from "../stream/stream-coordinator";
import type { DeviceStreamInfo, StreamSnapshot } from "../stream/views";
import type { WatchHit, WatchView } from "../stream/watch-view";
import { clock } from "../clock";
import { WatchKeys, watchPath } from "./watch-link";

export type StartOptions = Omit<CreateInput, "streamId" | "userId" | "packageName" | "watchUrl">;

/**
 * One object per user: the index of the user's running managed stream. Because it serializes every
 * start for the user, ten apps starting at once get exactly one stream (MentraOS defect 4).
 */
export class UserStreams extends DurableObject<Env> {
  private readonly sql: Sql;
  /** The create in flight, so concurrent starts join it instead of creating a second stream. */
  private creating: Promise<unknown> | null = null;
  /** The user's watch link (`/w/<key>`): watch-link.ts. */
  private readonly watchKeys: WatchKeys;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = new Sql(ctx.storage.sql);
    this.sql.run(`CREATE TABLE IF NOT EXISTS current_stream (id INTEGER PRIMARY KEY CHECK (id = 1), stream_id TEXT NOT NULL)`);
    this.watchKeys = new WatchKeys(this.sql, env);
  }

  async startOrJoin(
    userId: string,
    packageName: string,
    options: StartOptions,
    /** The Worker's public origin: the stream's `previewUrl` is the user's watch link under it. */
    origin: string | null = null,
  ): Promise<Result<{ snapshot: StreamSnapshot; created: boolean }>> {
    let watchUrl: string | null = null;
    if (origin !== null) {
      try {
        watchUrl = origin + watchPath(await this.watchKeys.ensure(userId, clock.now()));
      } catch {
        return unavailable();
      }
    }
    // A few rounds at most: each round either joins, or creates, or finds the stream just ended.
    for (let round = 0; round < 4; round++) {
      if (this.creating) await this.creating.catch(() => undefined);
      const current = this.currentStreamId();
      if (current) {
        let joined: Awaited<ReturnType<DurableObjectStub<StreamCoordinator>["join"]>>;
        try {
          joined = await this.env.STREAMS.getByName(current).join(packageName, watchUrl);
        } catch {
          return unavailable();
        }
        if (joined.ok) return { ok: true, snapshot: joined.snapshot, created: false };
        if (joined.error !== "STREAM_ENDED") return joined;
        this.clearIf(current);
        continue;
      }
      if (this.creating) continue;

      const streamId = nanoid();
      this.setCurrent(streamId);
      const creation = this.env.STREAMS.getByName(streamId).create({ streamId, userId, packageName, ...options, watchUrl });
      this.creating = creation;
      try {
        const created = await creation;
        if (!created.ok) {
          this.clearIf(streamId);
          return created;
        }
        // What an offline watch link shows once this stream has ended (a failed create never replaces it).
        this.watchKeys.rememberStream(streamId);
        return { ok: true, snapshot: created.snapshot, created: true };
      } catch {
        // The stream object failed mid-create; its watchdog (and the leak sweep) clean up after it.
        this.clearIf(streamId);
        return unavailable();
      } finally {
        if (this.creating === creation) this.creating = null;
      }
    }
    return fail(503, "BUSY", "The user's stream is changing state; retry shortly");
  }

  /** Called by the stream object once it has stopped and released its Cloudflare resources. */
  async streamEnded(streamId: string): Promise<void> {
    this.clearIf(streamId);
  }

  /** The device's view of its user's current stream, with ingest credentials. */
  async deviceStream(userId: string): Promise<Result<{ info: DeviceStreamInfo }>> {
    if (this.creating) await this.creating.catch(() => undefined);
    const current = this.currentStreamId();
    if (!current) return fail(404, "NO_ACTIVE_STREAM", "This user has no managed stream");
    try {
      return await this.env.STREAMS.getByName(current).deviceInfo(userId);
    } catch {
      return unavailable();
    }
  }

  /** The user's watch key (made on first use): GET /api/users/:userId/watch-link. */
  async watchLink(userId: string): Promise<Result<{ watchKey: string }>> {
    try {
      return { ok: true, watchKey: await this.watchKeys.ensure(userId, clock.now()) };
    } catch {
      return unavailable();
    }
  }

  /**
   * A new key: the old one resolves to nothing from now on. The running stream learns its new
   * `previewUrl` (best effort: if that call fails it shows the old link until the next start or join).
   */
  async rotateWatchKey(userId: string, origin: string): Promise<Result<{ watchKey: string }>> {
    let watchKey: string;
    try {
      watchKey = await this.watchKeys.rotate(userId, clock.now());
    } catch {
      return unavailable();
    }
    const current = this.currentStreamId();
    if (current) {
      await this.env.STREAMS.getByName(current)
        .setWatchUrl(origin + watchPath(watchKey))
        .catch((error: unknown) => console.error("could not give the stream its new watch link", error instanceof Error ? error.message : error));
    }
    return { ok: true, watchKey };
  }

  /**
   * `GET /w/:key`, resolved now: the user's running stream, else their last one (its recording), else
   * nothing. A key that is not the current one gets the same 404 as a key nobody ever had.
   */
  async watch(key: string, hit: WatchHit | null): Promise<Result<{ view: WatchView }>> {
    if (!this.watchKeys.matches(key)) return watchLinkNotFound();
    if (this.creating) await this.creating.catch(() => undefined);
    const streamId = this.currentStreamId() ?? this.watchKeys.lastStream();
    if (!streamId) return { ok: true, view: OFFLINE };
    try {
      return { ok: true, view: (await this.env.STREAMS.getByName(streamId).watchView(hit)) ?? OFFLINE };
    } catch {
      return unavailable();
    }
  }

  private currentStreamId(): string | null {
    return this.sql.one<{ stream_id: string }>(`SELECT stream_id FROM current_stream WHERE id = 1`)?.stream_id ?? null;
  }

  private setCurrent(streamId: string): void {
    this.sql.run(
      `INSERT INTO current_stream (id, stream_id) VALUES (1, ?) ON CONFLICT(id) DO UPDATE SET stream_id = excluded.stream_id`,
      streamId,
    );
  }

  private clearIf(streamId: string): void {
    this.sql.run(`DELETE FROM current_stream WHERE id = 1 AND stream_id = ?`, streamId);
  }
}

const OFFLINE: WatchView = { state: "offline", streamId: null, hlsUrl: null, dashUrl: null, webrtcUrl: null, thumbnailUrl: null, latestRecording: null };

export function watchLinkNotFound() {
  return fail(404, "WATCH_LINK_NOT_FOUND", "No such watch link");
}

function unavailable() {
  return fail(503, "SERVICE_UNAVAILABLE", "The stream is briefly unavailable; retry shortly", 1);
}
