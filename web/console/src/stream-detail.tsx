// One stream: its status and message, viewers, glasses and ingest, the live preview, the outputs and
// a timeline of status changes. As an app the console is a viewer: it opens the viewer socket (with a
// single-use ticket, as browsers cannot send headers on a WebSocket) and the timeline is what the socket
// pushes; outputs are added, removed and toggled through the same REST calls every app uses. As the
// admin, the stream is read from GET /api/admin/streams every 2 s (no socket: tickets are for apps).
import { Fragment, type ComponentChildren } from "preact";
import { useEffect, useRef, useState } from "preact/hooks";
import type { AdminClient, AppClient } from "../../../client/src/index.ts";
import type { AdminStreamListItem, ManagedStreamStatus, OutputView, StreamSnapshot } from "../../../client/src/types.ts";
import { describeError } from "./session";
import { Player } from "./player";
import { AnalyticsPanel } from "./analytics";
import { ErrorText, OutputBadge, StatusBadge, clock, dateTime } from "./ui";

export interface TimelineEntry {
  at: number;
  kind: "status" | "note";
  status?: string;
  message: string;
  viewers?: number;
}

const TIMELINE_MAX = 200;

function useTimeline() {
  const [entries, setEntries] = useState<TimelineEntry[]>([]);
  const last = useRef<{ status?: string; message?: string }>({});
  return {
    entries,
    /** A status entry, only when status or message changed (every push repeats them). */
    status(at: number, status: string, message: string, viewers?: number) {
      if (last.current.status === status && last.current.message === message) return;
      last.current = { status, message };
      setEntries((list) => [{ at, kind: "status" as const, status, message, viewers }, ...list].slice(0, TIMELINE_MAX));
    },
    note(message: string) {
      setEntries((list) => [{ at: Date.now(), kind: "note" as const, message }, ...list].slice(0, TIMELINE_MAX));
    },
  };
}

// ── As an app ──────────────────────────────────────────────────────────────────────────────────────

export function AppStreamDetail({
  client,
  streamId,
  initial,
  onStatus,
}: {
  client: AppClient;
  streamId: string;
  initial: StreamSnapshot & { userId: string };
  /** Every pushed status, so the list shows it too without waiting for its next read. */
  onStatus: (status: ManagedStreamStatus) => void;
}) {
  const [snapshot, setSnapshot] = useState<StreamSnapshot>(initial);
  const [pushed, setPushed] = useState<ManagedStreamStatus | null>(null);
  const [socket, setSocket] = useState("connecting");
  const [outputs, setOutputs] = useState<OutputView[] | null>(null);
  const [outputsError, setOutputsError] = useState("");
  const timeline = useTimeline();
  const outputsSignature = useRef("");

  const refreshSnapshot = () =>
    client.getStream(streamId, { retry: false }).then(setSnapshot, () => {
      // The socket says what matters; a failed refresh only leaves ingest and glasses as they were.
    });
  // Lists are asked for by pushes and by our own actions, and may come back out of order (separate
  // connections): only the newest request's answer is shown, so a list read before a removal can never
  // put the removed row back after the removal's own list.
  const outputsRequest = useRef(0);
  const refreshOutputs = () => {
    const request = ++outputsRequest.current;
    return client.listOutputs(streamId, { retry: false }).then(
      (list) => {
        if (request !== outputsRequest.current) return;
        setOutputs(list.outputs);
        setOutputsError("");
      },
      (error: unknown) => {
        if (request === outputsRequest.current) setOutputsError(describeError(error));
      },
    );
  };

  useEffect(() => {
    const viewer = client.viewer(streamId);
    const offs = [
      viewer.on("status", (status) => {
        setPushed(status);
        onStatus(status);
        timeline.status(Date.parse(status.timestamp) || Date.now(), status.status, status.message, status.viewers);
        void refreshSnapshot();
        const signature = JSON.stringify(status.outputs.map((o) => [o.outputId, o.status, o.error ?? null]));
        if (signature !== outputsSignature.current || outputsSignature.current === "") {
          outputsSignature.current = signature;
          void refreshOutputs();
        }
      }),
      viewer.on("open", ({ reconnected }) => {
        setSocket("open");
        timeline.note(reconnected ? "Viewer socket reconnected" : "Viewer socket connected");
      }),
      viewer.on("reconnecting", ({ reason, delayMs }) => {
        setSocket("reconnecting");
        timeline.note(`Viewer socket lost (${reason}); reconnecting in ${Math.round(delayMs)} ms`);
      }),
      viewer.on("close", ({ reason, message }) => {
        setSocket(`closed (${reason})`);
        timeline.note(`Viewer socket closed: ${message}`);
      }),
    ];
    // Glasses and ingest are in the snapshot, not in the pushed status: read it now and then.
    const poll = setInterval(() => void refreshSnapshot(), 5_000);
    return () => {
      clearInterval(poll);
      for (const off of offs) off();
      void viewer.close("the console closed the stream");
    };
  }, [client, streamId]);

  const status = pushed?.status ?? snapshot.status;
  const message = pushed?.message ?? snapshot.message;
  const hlsUrl = pushed ? (pushed.hlsUrl ?? null) : snapshot.hlsUrl;
  const thumbnailUrl = pushed ? (pushed.thumbnailUrl ?? null) : snapshot.thumbnailUrl;
  return (
    <StreamLayout
      streamId={streamId}
      userId={initial.userId}
      status={status}
      message={message}
      facts={[
        ["Viewers", `${pushed?.viewers ?? snapshot.viewers} app${(pushed?.viewers ?? snapshot.viewers) === 1 ? "" : "s"} watching (this console is one)`],
        ["Glasses", snapshot.deviceConnected ? "Connected" : "Not connected"],
        ["Ingest", snapshot.ingest],
        ["Viewer socket", socket],
        ["Created", dateTime(snapshot.createdAt)],
        ...(snapshot.stoppedAt ? ([["Stopped", dateTime(snapshot.stoppedAt)]] as [string, string][]) : []),
      ]}
      hlsUrl={hlsUrl}
      thumbnailUrl={thumbnailUrl}
      timeline={timeline.entries}
      timelineSource="as pushed over the viewer socket"
    >
      <Outputs
        outputs={outputs}
        loadError={outputsError}
        owner={client.packageName}
        actions={{
          add: async (url, name) => {
            const added = await client.addOutput(streamId, { url, ...(name ? { name } : {}) });
            await refreshOutputs();
            return `Output added (${added.outputId}).`;
          },
          remove: async (output) => {
            const removed = await client.removeOutput(streamId, output.outputId);
            await refreshOutputs();
            return removed.pending ? "Removal accepted; Cloudflare confirms it shortly." : "Output removed.";
          },
          setEnabled: async (output, enabled) => {
            const answer = await client.setOutputEnabled(streamId, output.outputId, enabled);
            await refreshOutputs();
            return `${answer.message}.`;
          },
        }}
      />
      <AnalyticsPanel streamId={streamId} load={() => client.getAnalytics(streamId, { retry: false })} />
    </StreamLayout>
  );
}

// ── As the admin ───────────────────────────────────────────────────────────────────────────────────

export function AdminStreamDetail({ client, item, onStopped }: { client: AdminClient; item: AdminStreamListItem; onStopped: (message: string) => void }) {
  const timeline = useTimeline();
  const [confirming, setConfirming] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState("");
  const stopButton = useRef<HTMLButtonElement>(null);

  useEffect(() => {
    timeline.status(Date.now(), item.status, item.message, item.viewers);
  }, [item.status, item.message]);

  const stop = async () => {
    setBusy(true);
    setError("");
    try {
      const snapshot = await client.stopStream(item.streamId);
      timeline.status(Date.now(), snapshot.status, snapshot.message, snapshot.viewers);
      setConfirming(false);
      onStopped(snapshot.message);
    } catch (e) {
      setError(describeError(e));
    } finally {
      setBusy(false);
    }
  };

  return (
    <StreamLayout
      streamId={item.streamId}
      userId={item.userId}
      status={item.status}
      message={item.message}
      facts={[
        ["Viewers", `${item.viewers} app${item.viewers === 1 ? "" : "s"} watching`],
        ["Glasses", item.deviceConnected ? "Connected" : "Not connected"],
        ["Ingest", item.ingest],
        ["Created by", item.createdBy],
        ["Participants", item.participants.join(", ") || "—"],
        ["Created", dateTime(item.createdAt)],
      ]}
      hlsUrl={item.hlsUrl}
      thumbnailUrl={item.thumbnailUrl}
      timeline={timeline.entries}
      timelineSource="as read every 2 s (the admin has no viewer socket)"
    >
      <Outputs outputs={item.outputs} loadError="" owner={null} actions={null} />
      <section aria-labelledby="operator-heading" class="panel">
        <h3 id="operator-heading">Operator</h3>
        {confirming ? (
          <p>
            Stop this stream for every app now?{" "}
            <button type="button" class="danger" disabled={busy} onClick={stop}>
              Yes, stop the stream
            </button>{" "}
            <button
              type="button"
              onClick={() => {
                setConfirming(false);
                stopButton.current?.focus();
              }}
            >
              Cancel
            </button>
          </p>
        ) : (
          <button type="button" ref={stopButton} class="danger" disabled={item.status === "stopping"} onClick={() => setConfirming(true)}>
            Stop stream…
          </button>
        )}
        <ErrorText>{error}</ErrorText>
      </section>
      <AnalyticsPanel streamId={item.streamId} load={() => client.getAnalytics(item.streamId, { retry: false })} />
    </StreamLayout>
  );
}

// ── Shared ─────────────────────────────────────────────────────────────────────────────────────────

function StreamLayout(props: {
  streamId: string;
  userId: string;
  status: string;
  message: string;
  facts: [string, string][];
  hlsUrl: string | null;
  thumbnailUrl: string | null;
  timeline: TimelineEntry[];
  timelineSource: string;
  children: ComponentChildren;
}) {
  const heading = useRef<HTMLHeadingElement>(null);
  // A newly chosen stream takes the focus to its heading, so keyboard and screen-reader users land on it.
  useEffect(() => heading.current?.focus(), [props.streamId]);
  return (
    <article class="detail" aria-labelledby="stream-heading">
      <header class="detail-head">
        <h2 id="stream-heading" tabIndex={-1} ref={heading}>
          Stream <code>{props.streamId}</code>
        </h2>
        <StatusBadge status={props.status} testId="status-badge" live />
        <p class="message" data-testid="status-message">
          {props.message}
        </p>
      </header>
      <div class="detail-grid">
        <section aria-labelledby="preview-heading" class="panel">
          <h3 id="preview-heading">Preview</h3>
          <Player hlsUrl={props.hlsUrl} thumbnailUrl={props.thumbnailUrl} live={props.status === "active"} />
        </section>
        <section aria-labelledby="facts-heading" class="panel">
          <h3 id="facts-heading">Health</h3>
          <dl class="facts">
            <dt>User</dt>
            <dd>{props.userId}</dd>
            {props.facts.map(([name, value]) => (
              <Fragment key={name}>
                <dt>{name}</dt>
                <dd data-fact={name}>{value}</dd>
              </Fragment>
            ))}
          </dl>
        </section>
      </div>
      {props.children}
      <section aria-labelledby="timeline-heading" class="panel">
        <h3 id="timeline-heading">Timeline</h3>
        <p class="hint">Status changes, newest first, {props.timelineSource}.</p>
        <ol class="timeline" data-testid="timeline">
          {props.timeline.map((entry) => (
            <li key={`${entry.at}-${entry.kind}-${entry.message}`} class={`timeline-${entry.kind}`}>
              <time dateTime={new Date(entry.at).toISOString()}>{clock(entry.at)}</time>{" "}
              {entry.status ? <StatusBadge status={entry.status} /> : null} {entry.message}
              {entry.viewers !== undefined ? <span class="hint"> · {entry.viewers} watching</span> : null}
            </li>
          ))}
        </ol>
      </section>
    </article>
  );
}

interface OutputActions {
  add(url: string, name: string): Promise<string>;
  remove(output: OutputView): Promise<string>;
  setEnabled(output: OutputView, enabled: boolean): Promise<string>;
}

/** The outputs table; `actions` null: read only (the admin). URLs are shown as the API gives them (masked). */
function Outputs({ outputs, loadError, owner, actions }: { outputs: OutputView[] | null; loadError: string; owner: string | null; actions: OutputActions | null }) {
  const [url, setUrl] = useState("");
  const [name, setName] = useState("");
  const [busy, setBusy] = useState<string | null>(null);
  const [error, setError] = useState("");
  const [done, setDone] = useState("");
  const heading = useRef<HTMLHeadingElement>(null);
  const urlField = useRef<HTMLInputElement>(null);

  const run = async (key: string, action: () => Promise<string>, after?: () => void) => {
    setBusy(key);
    setError("");
    setDone("");
    try {
      setDone(await action());
      after?.();
    } catch (e) {
      setError(describeError(e));
    } finally {
      setBusy(null);
    }
  };

  return (
    <section aria-labelledby="outputs-heading" class="panel">
      <h3 id="outputs-heading" tabIndex={-1} ref={heading}>
        Restream outputs
      </h3>
      {loadError ? <ErrorText>{`Could not list the outputs: ${loadError}`}</ErrorText> : null}
      {outputs === null ? (
        <p class="hint">Loading…</p>
      ) : outputs.length === 0 ? (
        <p class="hint" data-testid="no-outputs">
          No outputs.
        </p>
      ) : (
        <table class="outputs" data-testid="outputs">
          <caption class="visually-hidden">Restream outputs of this stream</caption>
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">URL</th>
              <th scope="col">Added by</th>
              <th scope="col">Status</th>
              <th scope="col">Error</th>
              <th scope="col">Enabled</th>
              {actions ? <th scope="col">Actions</th> : null}
            </tr>
          </thead>
          <tbody>
            {outputs.map((o) => {
              const label = o.name ?? o.outputId;
              const mine = owner !== null && o.addedBy === owner;
              return (
                <tr key={o.outputId} data-output-id={o.outputId}>
                  <th scope="row">{o.name ?? <span class="hint">(no name)</span>}</th>
                  <td>
                    <code class="url">{o.url}</code>
                  </td>
                  <td>{o.addedBy}</td>
                  <td>
                    <OutputBadge status={o.status} />
                  </td>
                  <td class="output-error">{o.error ?? "—"}</td>
                  <td>{o.enabled ? "Yes" : "No"}</td>
                  {actions ? (
                    <td class="actions">
                      {mine ? (
                        <>
                          <button
                            type="button"
                            disabled={busy !== null}
                            aria-label={`${o.enabled ? "Disable" : "Enable"} output ${label}`}
                            onClick={() => run(`toggle:${o.outputId}`, () => actions.setEnabled(o, !o.enabled))}
                          >
                            {busy === `toggle:${o.outputId}` ? "…" : o.enabled ? "Disable" : "Enable"}
                          </button>{" "}
                          <button
                            type="button"
                            class="danger"
                            disabled={busy !== null}
                            aria-label={`Remove output ${label}`}
                            onClick={() => run(`remove:${o.outputId}`, () => actions.remove(o), () => heading.current?.focus())}
                          >
                            {busy === `remove:${o.outputId}` ? "Removing…" : "Remove"}
                          </button>
                        </>
                      ) : (
                        <span class="hint">another app's</span>
                      )}
                    </td>
                  ) : null}
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
      {actions ? (
        <form
          class="add-output"
          onSubmit={(event) => {
            event.preventDefault();
            void run("add", () => actions.add(url.trim(), name.trim()), () => {
              setUrl("");
              setName("");
              urlField.current?.focus();
            });
          }}
        >
          <div class="field">
            <label for="output-url">RTMP URL</label>
            <input
              id="output-url"
              ref={urlField}
              name="url"
              type="text"
              inputMode="url"
              autocomplete="off"
              spellcheck={false}
              required
              placeholder="rtmp://a.rtmp.youtube.com/live2/<stream key>"
              value={url}
              onInput={(e) => setUrl((e.target as HTMLInputElement).value)}
              aria-describedby="output-url-hint"
            />
            <small id="output-url-hint" class="hint">
              rtmp:// or rtmps://, ending with the stream key. Other apps see the key masked.
            </small>
          </div>
          <div class="field">
            <label for="output-name">Name (optional)</label>
            <input id="output-name" name="name" type="text" maxLength={100} value={name} onInput={(e) => setName((e.target as HTMLInputElement).value)} />
          </div>
          <button type="submit" disabled={busy !== null}>
            {busy === "add" ? "Adding…" : "Add output"}
          </button>
        </form>
      ) : null}
      <ErrorText>{error}</ErrorText>
      <p class="done" role="status">
        {done}
      </p>
    </section>
  );
}
