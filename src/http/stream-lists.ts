import type { IRequest } from "itty-router";
import type { z } from "zod";
import type { AppStreamEntry, ListPosition } from "../apps/app-streams";
import { forgetInputStream, runningStreamsPage, type RunningEntry } from "../cloudflare/live-input-index";
import type { Env } from "../env";
import { ListStreamsQuery } from "../schemas/api";
import * as answers from "../schemas/responses";
import type { StreamListView } from "../stream/stream-reads";
import { authenticateAdmin, authenticateApp } from "./auth";
import { describeIssues } from "./body";
import { ApiError, reply } from "./errors";

/**
 * The stream lists, paged by cursor, newest first:
 *
 * - GET /api/streams (app): the streams the app takes part in, from the index in its own AppAccount
 *   (apps/app-streams.ts), which each stream object keeps up to date through its participation outbox;
 * - GET /api/admin/streams (admin): every running stream, from the live-input index's shards
 *   (cloudflare/live-input-index.ts), whose entries live exactly as long as a stream's input does.
 *
 * Either index names streams; each listed stream's object is asked for its current snapshot, in parallel.
 * An index entry whose stream is gone (purged; for the admin list also stopped) is dropped from the index
 * and skipped, and the next entries are read so that a page is still full when more exist.
 */

/**
 * At most 2 × limit + 10 index entries are examined for one page (those found gone included), so a page
 * costs a bounded number of calls; only a page that meets more gone entries than that comes out short,
 * with a nextCursor to go on from.
 */
const maxExamined = (limit: number) => 2 * limit + 10;

export async function handleListStreams(request: IRequest, env: Env): Promise<Response> {
  const app = await authenticateApp(request, env);
  const { after, limit } = parseListQuery(request);
  const account = env.APPS.getByName(app.packageName);
  const page = await collect<AppStreamEntry, z.infer<typeof answers.StreamListItem>>({
    limit,
    after,
    read: (from, n) => account.listStreams(from, n),
    position: (e) => ({ at: e.joinedAt, streamId: e.streamId }),
    resolve: async (e) => {
      const answer = await env.STREAMS.getByName(e.streamId).listView(app.packageName);
      if (!answer.ok) return null;
      return { ...snapshotOf(answer.view), userId: answer.view.userId, joinedAt: new Date(e.joinedAt).toISOString() };
    },
    prune: (gone) => account.forgetStreams(gone.map((e) => e.streamId)),
  });
  return reply(answers.StreamList, page);
}

export async function handleListRunningStreams(request: IRequest, env: Env): Promise<Response> {
  await authenticateAdmin(request, env);
  const { after, limit } = parseListQuery(request);
  const page = await collect<RunningEntry, answers.AdminStreamListItem>({
    limit,
    after,
    read: (from, n) => runningStreamsPage(env, from, n),
    position: (e) => ({ at: e.createdAt, streamId: e.streamId }),
    resolve: async (e) => {
      const answer = await env.STREAMS.getByName(e.streamId).listView(null);
      // Stopped (its input deleted) or gone: the index entry outlived a stop whose removal was lost.
      if (!answer.ok || answer.view.status === "stopped") return null;
      return answer.view;
    },
    prune: async (gone) => {
      await Promise.all(gone.map((e) => forgetInputStream(env, e.uid)));
    },
  });
  return reply(answers.AdminStreamList, page);
}

function parseListQuery(request: IRequest): { after: ListPosition | null; limit: number } {
  const url = new URL(request.url);
  const raw: Record<string, string> = {};
  for (const name of ["cursor", "limit"]) {
    const value = url.searchParams.get(name);
    if (value !== null) raw[name] = value;
  }
  const parsed = ListStreamsQuery.safeParse(raw);
  if (!parsed.success) throw new ApiError(400, "INVALID_REQUEST", describeIssues(parsed.error));
  const { cursor, limit } = parsed.data;
  if (!cursor) return { after: null, limit };
  const [at, streamId] = cursor.split(".") as [string, string];
  return { after: { at: Number(at), streamId }, limit };
}

function encodeCursor(position: ListPosition): string {
  return `${Math.max(0, Math.floor(position.at))}.${position.streamId}`;
}

/**
 * Reads index entries until `limit` resolve (or the index ends, or `maxExamined` were examined), dropping
 * the ones found gone. The cursor is the position of the last entry examined, so a gone entry is not
 * looked at again and an entry is never skipped.
 */
async function collect<E, T>(spec: {
  limit: number;
  after: ListPosition | null;
  read: (after: ListPosition | null, limit: number) => Promise<{ entries: E[]; more: boolean }>;
  position: (entry: E) => ListPosition;
  resolve: (entry: E) => Promise<T | null>;
  prune: (gone: E[]) => Promise<void>;
}): Promise<{ streams: T[]; nextCursor: string | null }> {
  const streams: T[] = [];
  const gone: E[] = [];
  const seen = new Set<string>();
  let after = spec.after;
  let more = true;
  let examined = 0;
  while (streams.length < spec.limit && more && examined < maxExamined(spec.limit)) {
    const want = Math.min(spec.limit - streams.length, maxExamined(spec.limit) - examined);
    const batch = await spec.read(after, want);
    more = batch.more;
    if (batch.entries.length === 0) {
      more = false;
      break;
    }
    const resolved = await Promise.all(batch.entries.map((entry) => spec.resolve(entry)));
    batch.entries.forEach((entry, i) => {
      const key = spec.position(entry).streamId;
      const item = resolved[i];
      if (item === null || item === undefined) gone.push(entry);
      else if (!seen.has(key)) {
        seen.add(key);
        streams.push(item);
      }
    });
    examined += batch.entries.length;
    after = spec.position(batch.entries.at(-1)!);
  }
  if (gone.length) await spec.prune(gone).catch((error: unknown) => console.error("could not prune a stream list", error instanceof Error ? error.message : error));
  return { streams, nextCursor: more && after ? encodeCursor(after) : null };
}

/** The snapshot part of a list view (the app's list shows no outputs or participants). */
function snapshotOf(view: StreamListView): z.infer<typeof answers.StreamSnapshot> {
  const { userId: _u, createdBy: _c, participants: _p, outputs: _o, ...snapshot } = view;
  return snapshot;
}
