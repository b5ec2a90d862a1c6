// Debian's Chromium for the end-to-end tests, driven by playwright-core (no browser download: the
// system's /usr/bin/chromium, or CHROMIUM_PATH). One launcher for every browser test, so they run it
// the same way. In CI a missing Chromium fails the tests that need it (.ci/run installs it); elsewhere
// they are skipped with `CHROMIUM_SKIP` as the reason.
import { existsSync } from "node:fs";

export const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
export const HAVE_CHROMIUM = existsSync(CHROMIUM);
/** A `skip` option for node:test: false when the tests can run (always in CI), else why not. */
export const CHROMIUM_SKIP = !HAVE_CHROMIUM && !process.env.CI && `no Chromium at ${CHROMIUM} (apt-get install chromium)`;

/** Flags for a camera without a camera: Chromium's generated test picture, granted without a prompt. */
export const FAKE_CAMERA = ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"];

/**
 * WebRTC on loopback only: host candidates as plain addresses, not mDNS `.local` names (pages without a
 * camera grant get those, and resolving or announcing them is multicast on the machine's network).
 */
export const WEBRTC_PLAIN_CANDIDATES = ["--disable-features=WebRtcHideLocalIpsWithMdns"];

/** Launches headless Chromium with `args` added to the ones every test needs. */
export async function launchChromium(args = []) {
  const { chromium } = await import("playwright-core");
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    // Root in a container: Chromium's sandbox needs user namespaces it does not get here.
    args: ["--no-sandbox", "--autoplay-policy=no-user-gesture-required", "--mute-audio", ...args],
  });
}
