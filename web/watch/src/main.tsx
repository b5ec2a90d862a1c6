// The watch page (GET /w/:key with Accept: text/html; docs/console.md#the-watch-page): the console's player
// on the user's watch link. It reads the link's JSON every 2 s and follows by itself: a new stream, or a
// return to live after the glasses reconnected, mounts a fresh player; while reconnecting the player stays.
// A stream ingested over WebRTC has no HLS: it plays over WHEP (`webrtcUrl`, whep-player.tsx) instead.
import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { Player } from "../../console/src/player";
import { WhepPlayer } from "./whep-player";

const POLL_MS = 2_000;

interface WatchView {
  state: "live" | "reconnecting" | "offline";
  streamId: string | null;
  hlsUrl: string | null;
  webrtcUrl?: string | null;
  thumbnailUrl: string | null;
  latestRecording: { hlsUrl?: string | null; thumbnailUrl?: string | null } | null;
}

const WORDS: Record<WatchView["state"], string> = {
  live: "Live",
  reconnecting: "Reconnecting — the picture comes back by itself",
  offline: "Offline",
};

function Watch({ link }: { link: string }) {
  const [view, setView] = useState<WatchView | null>(null);
  const [generation, setGeneration] = useState(0);
  const [problem, setProblem] = useState("");

  useEffect(() => {
    let stopped = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let last: WatchView | null = null;
    const tick = async () => {
      try {
        const res = await fetch(link, { headers: { accept: "application/json" }, cache: "no-store" });
        const body = (await res.json()) as WatchView & { message?: string };
        if (!res.ok) {
          setProblem(body.message ?? `HTTP ${res.status}`);
        } else {
          setProblem("");
          // Back to live (after a reconnect, or a new stream): a fresh player loads the manifest again.
          if (last && body.state === "live" && (last.state !== "live" || last.streamId !== body.streamId)) setGeneration((g) => g + 1);
          last = body;
          setView(body);
        }
      } catch {
        setProblem("The server cannot be reached; trying again.");
      }
      if (!stopped) timer = setTimeout(tick, POLL_MS);
    };
    void tick();
    return () => {
      stopped = true;
      clearTimeout(timer);
    };
  }, [link]);

  const recording = view?.state === "offline" ? view.latestRecording : null;
  const hlsUrl = view ? (view.state === "offline" ? (recording?.hlsUrl ?? null) : view.hlsUrl) : null;
  return (
    <>
      <h1>
        <span class={`badge badge-${view?.state ?? "offline"}`} role="status" data-testid="watch-state">
          {view ? WORDS[view.state] : "Loading…"}
        </span>
      </h1>
      {problem && <p role="alert">{problem}</p>}
      {view?.webrtcUrl && view.state !== "offline" && <WhepPlayer key={`${view.streamId ?? "none"}:${generation}`} webrtcUrl={view.webrtcUrl} />}
      {view && !(view.webrtcUrl && view.state !== "offline") && (
        <Player
          key={`${view.streamId ?? "none"}:${generation}`}
          hlsUrl={hlsUrl}
          thumbnailUrl={view.thumbnailUrl ?? recording?.thumbnailUrl ?? null}
          live={hlsUrl !== null}
        />
      )}
      {view?.state === "offline" && !recording && <p>The stream appears here when it goes live.</p>}
    </>
  );
}

const root = document.getElementById("app");
if (root) {
  root.textContent = "";
  render(<Watch link={location.pathname.replace(/\/+$/, "")} />, root);
}
