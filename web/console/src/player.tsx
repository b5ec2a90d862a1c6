// The live preview: hls.js (light build) on a <video>, the stream's thumbnail as its poster. Native HLS
// (Safari) when Media Source Extensions are missing. It plays only while the stream is live: before that
// the playback URL has no media yet; a load that fails is tried again every 2 s.
import Hls from "hls.js/light";
import { useEffect, useRef, useState } from "preact/hooks";

const RETRY_MS = 2_000;

export function Player({ hlsUrl, thumbnailUrl, live }: { hlsUrl: string | null; thumbnailUrl: string | null; live: boolean }) {
  const video = useRef<HTMLVideoElement>(null);
  const [note, setNote] = useState("");
  const [posterAt, setPosterAt] = useState(() => Date.now());

  // A fresh thumbnail every 10 s (it is a still of the live picture).
  useEffect(() => {
    const timer = setInterval(() => setPosterAt(Date.now()), 10_000);
    return () => clearInterval(timer);
  }, []);

  useEffect(() => {
    const el = video.current;
    if (!el) return;
    if (!hlsUrl) {
      setNote("No playback URL: the stream is not running, or playback is not configured.");
      return;
    }
    if (!live) {
      setNote("The picture appears here once the glasses stream.");
      return;
    }
    let hls: Hls | null = null;
    let retry: ReturnType<typeof setTimeout> | undefined;
    let done = false;
    const play = () => el.play().catch(() => setNote("Press play to start the preview."));
    const start = () => {
      if (done) return;
      if (Hls.isSupported()) {
        setNote("Loading the live picture…");
        const player = new Hls({ liveSyncDurationCount: 2, manifestLoadingMaxRetry: 2, levelLoadingMaxRetry: 4, fragLoadingMaxRetry: 4 });
        hls = player;
        player.on(Hls.Events.MANIFEST_PARSED, () => {
          setNote("");
          void play();
        });
        player.on(Hls.Events.ERROR, (_event, data) => {
          if (!data.fatal) return;
          const status = data.response?.code;
          setNote(`The picture is not available yet (${status ? `HTTP ${status}` : data.details}); trying again.`);
          player.destroy();
          if (hls === player) hls = null;
          retry = setTimeout(start, RETRY_MS);
        });
        player.loadSource(hlsUrl);
        player.attachMedia(el);
      } else if (el.canPlayType("application/vnd.apple.mpegurl")) {
        el.src = hlsUrl;
        setNote("");
        void play();
      } else {
        setNote("This browser cannot play HLS.");
      }
    };
    start();
    return () => {
      done = true;
      clearTimeout(retry);
      hls?.destroy();
      el.removeAttribute("src");
      el.load();
    };
  }, [hlsUrl, live]);

  const poster = thumbnailUrl ? `${thumbnailUrl}${thumbnailUrl.includes("?") ? "&" : "?"}t=${posterAt}` : undefined;
  return (
    <figure class="player">
      <video ref={video} data-testid="player" controls muted autoplay playsInline poster={poster} aria-label="Live preview of the stream" />
      <figcaption aria-live="polite">{note}</figcaption>
    </figure>
  );
}
