// The console's shell: sign in (an app's package name and API key, or the admin token), then the list of
// streams (the app's own: GET /api/streams; the admin's: every running one, GET /api/admin/streams) beside
// the chosen stream's detail.
import type { ComponentChildren } from "preact";
import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import type { AdminClient, AppClient } from "../../../client/src/index.ts";
import type { AdminStreamListItem, StreamListItem } from "../../../client/src/types.ts";
import { AdminStreamDetail, AppStreamDetail } from "./stream-detail";
import { adminClient, appClient, clearSession, describeError, loadSession, saveSession, type Session } from "./session";
import { ErrorText, StatusBadge, dateTime } from "./ui";

type Item = StreamListItem | AdminStreamListItem;
interface Page {
  streams: Item[];
  nextCursor: string | null;
}

const PAGE = 20;

type Clients = { kind: "app"; client: AppClient; who: string } | { kind: "admin"; client: AdminClient; who: string };

function clientsFor(session: Session): Clients {
  return session.kind === "app"
    ? { kind: "app", client: appClient(session), who: `app ${session.packageName}` }
    : { kind: "admin", client: adminClient(session), who: "the admin" };
}

function listPage(clients: Clients, cursor: string | null): Promise<Page> {
  return clients.kind === "app" ? clients.client.listStreams({ cursor, limit: PAGE }, { retry: false }) : clients.client.listStreams({ cursor, limit: PAGE }, { retry: false });
}

export function App() {
  const [session, setSession] = useState<Session | null>(() => loadSession());
  const [first, setFirst] = useState<Page | null>(null);
  if (!session) {
    return (
      <Shell>
        <SignIn
          onSignedIn={(s, page) => {
            saveSession(s);
            setFirst(page);
            setSession(s);
          }}
        />
      </Shell>
    );
  }
  return (
    <Shell
      signedIn={session.kind === "app" ? `Signed in as app ${session.packageName}` : "Signed in as the admin"}
      onSignOut={() => {
        clearSession();
        setFirst(null);
        setSession(null);
      }}
    >
      <Console session={session} first={first} />
    </Shell>
  );
}

function Shell({ children, signedIn, onSignOut }: { children: ComponentChildren; signedIn?: string; onSignOut?: () => void }) {
  return (
    <>
      <header class="top">
        <h1>Stream Coordinator console</h1>
        <nav aria-label="Links">
          <a href="../docs/">API reference</a>
        </nav>
        {signedIn ? (
          <div class="who">
            <span data-testid="signed-in">{signedIn}</span>{" "}
            <button type="button" onClick={onSignOut}>
              Sign out
            </button>
          </div>
        ) : null}
      </header>
      <main>{children}</main>
    </>
  );
}

// ── Sign in ────────────────────────────────────────────────────────────────────────────────────────

function SignIn({ onSignedIn }: { onSignedIn: (session: Session, page: Page) => void }) {
  const [packageName, setPackageName] = useState("");
  const [apiKey, setApiKey] = useState("");
  const [adminToken, setAdminToken] = useState("");
  const [busy, setBusy] = useState<"app" | "admin" | null>(null);
  const [appError, setAppError] = useState("");
  const [adminError, setAdminError] = useState("");

  /** Signing in is listing the first page: it proves the credentials and is what the console shows next. */
  const attempt = async (session: Session, setError: (text: string) => void) => {
    setBusy(session.kind);
    setError("");
    try {
      onSignedIn(session, await listPage(clientsFor(session), null));
    } catch (error) {
      setError(describeError(error));
      setBusy(null);
    }
  };

  return (
    <section class="sign-in" aria-labelledby="sign-in-heading">
      <h2 id="sign-in-heading">Sign in</h2>
      <p class="hint">Credentials stay in this tab (sessionStorage) and are sent only to this coordinator.</p>
      <div class="sign-in-forms">
        <form
          aria-labelledby="app-sign-in"
          onSubmit={(event) => {
            event.preventDefault();
            void attempt({ kind: "app", packageName: packageName.trim(), apiKey: apiKey.trim() }, setAppError);
          }}
        >
          <h3 id="app-sign-in">As an app</h3>
          <div class="field">
            <label for="package-name">Package name</label>
            <input
              id="package-name"
              name="packageName"
              type="text"
              autocomplete="username"
              spellcheck={false}
              required
              placeholder="com.example.camera"
              value={packageName}
              onInput={(e) => setPackageName((e.target as HTMLInputElement).value)}
              aria-describedby="app-sign-in-error"
            />
          </div>
          <div class="field">
            <label for="api-key">API key</label>
            <input
              id="api-key"
              name="apiKey"
              type="password"
              autocomplete="current-password"
              required
              placeholder="sc_…"
              value={apiKey}
              onInput={(e) => setApiKey((e.target as HTMLInputElement).value)}
              aria-describedby="app-sign-in-error"
            />
          </div>
          <button type="submit" disabled={busy !== null}>
            {busy === "app" ? "Signing in…" : "Sign in as app"}
          </button>
          <ErrorText id="app-sign-in-error">{appError}</ErrorText>
        </form>
        <form
          aria-labelledby="admin-sign-in"
          onSubmit={(event) => {
            event.preventDefault();
            void attempt({ kind: "admin", adminToken: adminToken.trim() }, setAdminError);
          }}
        >
          <h3 id="admin-sign-in">As the admin</h3>
          <div class="field">
            <label for="admin-token">Admin token</label>
            <input
              id="admin-token"
              name="adminToken"
              type="password"
              autocomplete="current-password"
              required
              value={adminToken}
              onInput={(e) => setAdminToken((e.target as HTMLInputElement).value)}
              aria-describedby="admin-sign-in-error"
            />
          </div>
          <button type="submit" disabled={busy !== null}>
            {busy === "admin" ? "Signing in…" : "Sign in as admin"}
          </button>
          <ErrorText id="admin-sign-in-error">{adminError}</ErrorText>
        </form>
      </div>
    </section>
  );
}

// ── Signed in ──────────────────────────────────────────────────────────────────────────────────────

function Console({ session, first }: { session: Session; first: Page | null }) {
  const clients = useMemo(() => clientsFor(session), [session]);
  const [items, setItems] = useState<Item[]>(first?.streams ?? []);
  const [nextCursor, setNextCursor] = useState<string | null>(first?.nextCursor ?? null);
  const [loaded, setLoaded] = useState(first !== null);
  const [error, setError] = useState("");
  const [selected, setSelected] = useState<string | null>(null);
  const [loadingMore, setLoadingMore] = useState(false);
  const [notice, setNotice] = useState("");
  const listHeading = useRef<HTMLHeadingElement>(null);
  /** Pages loaded with "Load more" beyond the first. */
  const extraPages = useRef(0);

  /** The first page again. Entries of later pages stay (refreshed when they are loaded again). */
  const refresh = async () => {
    try {
      const page = await listPage(clients, null);
      if (extraPages.current === 0) {
        setItems(page.streams);
        setNextCursor(page.nextCursor);
      } else {
        setItems((shown) => {
          const fresh = new Set(page.streams.map((s) => s.streamId));
          return [...page.streams, ...shown.slice(PAGE).filter((s) => !fresh.has(s.streamId))];
        });
      }
      setError("");
    } catch (e) {
      setError(describeError(e));
    } finally {
      setLoaded(true);
    }
  };

  useEffect(() => {
    listHeading.current?.focus();
    if (!first) void refresh();
    // The admin's detail is read from this list, so it is read more often.
    const timer = setInterval(() => void refresh(), clients.kind === "admin" ? 2_000 : 5_000);
    return () => clearInterval(timer);
  }, [clients]);

  const more = async () => {
    if (!nextCursor) return;
    setLoadingMore(true);
    try {
      const page = await listPage(clients, nextCursor);
      extraPages.current += 1;
      setItems((shown) => [...shown, ...page.streams.filter((s) => !shown.some((x) => x.streamId === s.streamId))]);
      setNextCursor(page.nextCursor);
    } catch (e) {
      setError(describeError(e));
    } finally {
      setLoadingMore(false);
    }
  };

  const current = items.find((s) => s.streamId === selected) ?? null;
  return (
    <div class="layout">
      <nav class="streams" aria-labelledby="streams-heading">
        <h2 id="streams-heading" tabIndex={-1} ref={listHeading}>
          {clients.kind === "app" ? "Your streams" : "Running streams"}
        </h2>
        <p class="hint">
          {clients.kind === "app" ? "Streams this app started or joined (stopped ones for 24 h)." : "Every stream that is running, newest first."}
        </p>
        <button type="button" onClick={() => void refresh()}>
          Refresh
        </button>
        <ErrorText>{error}</ErrorText>
        <p role="status" class="done">
          {notice}
        </p>
        {loaded && items.length === 0 ? <p data-testid="no-streams">No streams yet.</p> : null}
        <ul class="stream-list" data-testid="stream-list">
          {items.map((s) => (
            <li key={s.streamId}>
              <button type="button" class="stream-item" aria-current={s.streamId === selected ? "true" : undefined} data-stream-id={s.streamId} onClick={() => setSelected(s.streamId)}>
                <StatusBadge status={s.status} />
                <span class="stream-id">{s.streamId}</span>
                <span class="hint">
                  {s.userId} · {dateTime(s.createdAt)}
                </span>
              </button>
            </li>
          ))}
        </ul>
        {nextCursor ? (
          <button type="button" disabled={loadingMore} onClick={more}>
            {loadingMore ? "Loading…" : "Load more"}
          </button>
        ) : null}
      </nav>
      <section class="main-pane" aria-label="Stream details">
        {current === null ? (
          <p class="hint pick">{items.length ? "Choose a stream to see its health, preview and outputs." : "Start a stream (POST /api/streams) and it appears here."}</p>
        ) : clients.kind === "app" ? (
          <AppStreamDetail
            key={current.streamId}
            client={clients.client}
            streamId={current.streamId}
            initial={current}
            onStatus={(pushed) =>
              setItems((shown) => shown.map((s) => (s.streamId === pushed.streamId ? { ...s, status: pushed.status, message: pushed.message } : s)))
            }
          />
        ) : (
          <AdminStreamDetail key={current.streamId} client={clients.client} item={current as AdminStreamListItem} onStopped={(message) => {
              setNotice(`Stream ${current.streamId}: ${message}`);
              void refresh();
            }} />
        )}
      </section>
    </div>
  );
}
