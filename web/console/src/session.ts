// Who is signed in. Credentials live in sessionStorage only: they go with the tab, never to
// localStorage, cookies or the URL.
import { AdminClient, AppClient, isClientError } from "../../../client/src/index.ts";

export type Session = { kind: "app"; packageName: string; apiKey: string } | { kind: "admin"; adminToken: string };

const KEY = "stream-coordinator.console.session";

export function loadSession(): Session | null {
  try {
    const raw = sessionStorage.getItem(KEY);
    if (!raw) return null;
    const value = JSON.parse(raw) as Partial<Session> & Record<string, unknown>;
    if (value.kind === "app" && typeof value.packageName === "string" && typeof value.apiKey === "string") {
      return { kind: "app", packageName: value.packageName, apiKey: value.apiKey };
    }
    if (value.kind === "admin" && typeof value.adminToken === "string") return { kind: "admin", adminToken: value.adminToken };
  } catch {
    // unreadable: signed out
  }
  return null;
}

export function saveSession(session: Session): void {
  sessionStorage.setItem(KEY, JSON.stringify(session));
}

export function clearSession(): void {
  sessionStorage.removeItem(KEY);
}

/** The console talks to the coordinator that serves it. */
const baseUrl = location.origin;

export function appClient(session: Extract<Session, { kind: "app" }>): AppClient {
  return new AppClient({ baseUrl, apiKey: session.apiKey, packageName: session.packageName, timeoutMs: 20_000 });
}

export function adminClient(session: Extract<Session, { kind: "admin" }>): AdminClient {
  return new AdminClient({ baseUrl, adminToken: session.adminToken, timeoutMs: 20_000 });
}

/** An error as a person reads it: the server's message first, its code and status after. */
export function describeError(error: unknown): string {
  if (isClientError(error)) {
    switch (error.kind) {
      case "api": {
        const body = error.body as { message?: unknown } | null;
        const text = body && typeof body.message === "string" ? body.message : `The coordinator answered HTTP ${error.status}`;
        return `${text} (${error.code}, HTTP ${error.status})`;
      }
      case "network":
        return "Could not reach the coordinator. Is it running?";
      case "timeout":
        return `The coordinator did not answer within ${Math.round(error.timeoutMs / 1000)} s.`;
      case "aborted":
        return "The request was cancelled.";
    }
  }
  return error instanceof Error ? error.message : String(error);
}
