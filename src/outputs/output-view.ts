import type { OutputView } from "../schemas/responses";
import { deriveOutputStatus } from "./output-status";

/**
 * How one restream output looks to one viewer: its derived status, and its URL and error text masked
 * unless the viewer is the app that added it (the stream key is the owner's secret; an upstream error
 * such as a relay's last log line may quote the destination). The shape is the REST schema's
 * (src/schemas/responses.ts, `OutputView`).
 */
export type { OutputView };

/** The stored facts of an output that its view needs. */
export interface OutputFacts {
  output_id: string;
  added_by: string;
  url: string;
  masked_url: string;
  stream_key: string;
  name: string | null;
  state: string;
  enabled: number;
  error: string | null;
}

export function viewOutput(
  row: OutputFacts,
  viewer: string | null,
  stream: { ingestStable: boolean; stale: boolean; inputError: string | null },
): OutputView {
  const { status, error } = deriveOutputStatus({
    pending: row.state === "pending",
    enabled: row.enabled === 1,
    error: row.error ?? stream.inputError,
    ingestStable: stream.ingestStable,
    stale: stream.stale,
  });
  const owner = viewer === row.added_by;
  return {
    outputId: row.output_id,
    url: owner ? row.url : row.masked_url,
    name: row.name,
    addedBy: row.added_by,
    status,
    error: error && !owner ? maskSecrets(error, row) : error,
    enabled: row.enabled === 1,
  };
}

export function maskSecrets(text: string, row: Pick<OutputFacts, "url" | "masked_url" | "stream_key">): string {
  let masked = text.split(row.url).join(row.masked_url);
  if (row.stream_key) masked = masked.split(row.stream_key).join("****");
  const userinfo = /^rtmps?:\/\/([^@/]+)@/i.exec(row.url)?.[1];
  return userinfo ? masked.split(userinfo).join("****") : masked;
}
