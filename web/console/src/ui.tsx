// Small shared pieces: status badges, error messages, formatting.
import type { ComponentChildren } from "preact";

const STREAM_LABEL: Record<string, string> = {
  initializing: "Initializing",
  preparing: "Preparing",
  active: "Live",
  reconnecting: "Reconnecting",
  stopping: "Stopping",
  stopped: "Stopped",
  error: "Error",
};

const OUTPUT_LABEL: Record<string, string> = { active: "Active", connecting: "Connecting", error: "Error", unknown: "Unknown" };

/** The stream's SDK status as a coloured badge; `data-status` carries the raw value (tests read it). */
export function StatusBadge({ status, testId, live }: { status: string; testId?: string; live?: boolean }) {
  return (
    <span class={`badge badge-${status}`} data-status={status} data-testid={testId} role={live ? "status" : undefined}>
      {STREAM_LABEL[status] ?? status}
    </span>
  );
}

export function OutputBadge({ status }: { status: string }) {
  return (
    <span class={`badge output-${status}`} data-status={status}>
      {OUTPUT_LABEL[status] ?? status}
    </span>
  );
}

/** An error for people: announced by screen readers (role=alert), with an id fields can point at. */
export function ErrorText({ id, children }: { id?: string; children: ComponentChildren }) {
  if (!children) return <p id={id} class="error" role="alert" hidden />;
  return (
    <p id={id} class="error" role="alert">
      {children}
    </p>
  );
}

export function clock(at: Date | string | number): string {
  const d = new Date(at);
  return `${d.toLocaleTimeString([], { hour12: false })}.${String(d.getMilliseconds()).padStart(3, "0")}`;
}

export function dateTime(at: string | null): string {
  return at ? new Date(at).toLocaleString([], { hour12: false }) : "—";
}
