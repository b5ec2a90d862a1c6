// hls.js ships types for its full build only; the light build (no subtitles, alternate audio or DRM,
// which a live preview does not need: ~370 KB instead of ~600 KB minified) has the same API.
declare module "hls.js/light" {
  export * from "hls.js";
  export { default } from "hls.js";
}
