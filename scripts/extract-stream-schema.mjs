#!/usr/bin/env node
// Extracts the Stream live-input and video part of Cloudflare's published OpenAPI schema (the `openapi.json` of the
// cloudflare/api-schemas repository) into a small fixture the emulator tests validate against
// (test/emulator/openapi.ts).
//
//   node scripts/extract-stream-schema.mjs <openapi.json> --commit <sha> --date <iso> [--out <file>]
//   node scripts/extract-stream-schema.mjs --git-dir <api-schemas git dir> [--rev <rev>] [--newest-present] [--out <file>]
//
// The second form reads `<rev>:openapi.json` (default HEAD) from a clone and names its commit and date. With
// --newest-present it takes the newest commit at or before <rev> whose openapi.json blob the clone really has
// and that contains the live-input paths (a shallow or size-limited clone may lack the newest, multi-MiB blobs);
// `x-source.selection` then says so.
// Kept: the live-input and video paths below with every operation, and every component they reference ($ref,
// resolved transitively), plus a top-level `x-source` {repository, commit, date, paths, missingPaths}.
// Keys are sorted, so the same input always gives the same file.

import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { parseArgs } from "node:util";

const REPOSITORY = "cloudflare/api-schemas";
const BASE = "/accounts/{account_id}/stream/live_inputs";
export const LIVE_INPUT_PATHS = [
  BASE,
  `${BASE}/{live_input_identifier}`,
  `${BASE}/{live_input_identifier}/outputs`,
  `${BASE}/{live_input_identifier}/outputs/{output_identifier}`,
  `${BASE}/{live_input_identifier}/rotate_keys`,
  `${BASE}/{live_input_identifier}/videos`,
];
const STREAM = "/accounts/{account_id}/stream";
/** The video paths the emulator serves: the recordings of live inputs, storage use and the video webhook. */
export const VIDEO_PATHS = [STREAM, `${STREAM}/{identifier}`, `${STREAM}/storage-usage`, `${STREAM}/webhook`];
const DEFAULT_OUT = "test/fixtures/cloudflare-stream-openapi.json";

/** Pure extraction: `spec` is the parsed openapi.json, `source` is {repository, commit, date}. */
export function extractStreamSchema(spec, source) {
  const paths = {};
  const missingPaths = [];
  for (const p of [...LIVE_INPUT_PATHS, ...VIDEO_PATHS]) {
    if (spec.paths?.[p]) paths[p] = spec.paths[p];
    else missingPaths.push(p);
  }
  if (Object.keys(paths).length === 0) throw new Error("none of the live-input paths is in this schema");

  // Walk every $ref reachable from the kept paths: "#/components/<kind>/<name>".
  const components = {};
  const seen = new Set();
  const queue = [paths];
  while (queue.length > 0) {
    const node = queue.pop();
    if (Array.isArray(node)) {
      queue.push(...node);
      continue;
    }
    if (node === null || typeof node !== "object") continue;
    for (const [key, value] of Object.entries(node)) {
      if (key === "$ref" && typeof value === "string") {
        if (seen.has(value)) continue;
        seen.add(value);
        const m = /^#\/components\/([^/]+)\/([^/]+)$/.exec(value);
        if (!m) throw new Error(`unsupported $ref ${value}`);
        const [, kind, name] = m;
        const target = spec.components?.[kind]?.[decodePointer(name)];
        if (target === undefined) throw new Error(`dangling $ref ${value}`);
        (components[kind] ??= {})[decodePointer(name)] = target;
        queue.push(target);
      } else {
        queue.push(value);
      }
    }
  }

  return sortKeys({
    openapi: spec.openapi,
    info: { title: spec.info?.title, version: spec.info?.version },
    "x-source": {
      repository: source.repository ?? REPOSITORY,
      commit: source.commit,
      date: source.date,
      ...(source.selection ? { selection: source.selection } : {}),
      file: "openapi.json",
      paths: Object.keys(paths),
      missingPaths,
      note: "Extracted by scripts/extract-stream-schema.mjs; test/emulator/openapi.ts lists the patches applied on top.",
    },
    paths,
    components,
  });
}

function decodePointer(segment) {
  return segment.replace(/~1/g, "/").replace(/~0/g, "~");
}

function sortKeys(value) {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value === null || typeof value !== "object") return value;
  return Object.fromEntries(
    Object.keys(value)
      .sort()
      .map((k) => [k, sortKeys(value[k])]),
  );
}

function git(gitDir, ...args) {
  return execFileSync("git", ["--git-dir", gitDir, ...args], { encoding: "utf8", maxBuffer: 256 * 1024 * 1024 });
}

/** Commits at or before `rev` that touched openapi.json and whose blob is present, newest first. */
function commitsWithBlob(gitDir, rev) {
  const commits = git(gitDir, "log", "--format=%H", rev, "--", "openapi.json").split("\n").filter(Boolean);
  const specs = commits.map((c) => `${c}:openapi.json`).join("\n");
  const out = execFileSync("git", ["--git-dir", gitDir, "cat-file", "--batch-check=%(objectname) %(objecttype) %(objectsize)"], {
    input: `${specs}\n`,
    encoding: "utf8",
    maxBuffer: 256 * 1024 * 1024,
  }).split("\n");
  // A blob the clone lacks is reported as "<spec> missing"; present ones as "<oid> blob <size>".
  return commits.filter((_, i) => / blob \d+$/.test(out[i] ?? ""));
}

function main() {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      "git-dir": { type: "string" },
      rev: { type: "string", default: "HEAD" },
      commit: { type: "string" },
      date: { type: "string" },
      repository: { type: "string", default: REPOSITORY },
      out: { type: "string", default: DEFAULT_OUT },
      "newest-present": { type: "boolean", default: false },
    },
  });
  let text;
  let commit = values.commit;
  let date = values.date;
  let selection;
  let spec;
  if (values["git-dir"]) {
    const gitDir = values["git-dir"];
    const wanted = git(gitDir, "rev-parse", `${values.rev}^{commit}`).trim();
    const candidates = values["newest-present"] ? commitsWithBlob(gitDir, wanted) : [wanted];
    for (const c of candidates) {
      try {
        const parsed = JSON.parse(git(gitDir, "show", `${c}:openapi.json`));
        if (values["newest-present"] && !LIVE_INPUT_PATHS.some((p) => parsed.paths?.[p])) continue;
        commit = c;
        spec = parsed;
        break;
      } catch (e) {
        if (!values["newest-present"]) {
          throw new Error(`${c}:openapi.json cannot be read from ${gitDir} (a partial clone may lack the blob; try --newest-present)`);
        }
      }
    }
    if (!spec) throw new Error(`no commit at or before ${wanted} has a usable openapi.json in ${gitDir}`);
    date = git(gitDir, "log", "-1", "--format=%cI", commit).trim();
    if (commit !== wanted) {
      const wantedDate = git(gitDir, "log", "-1", "--format=%cI", wanted).trim();
      selection = `newest commit whose openapi.json the clone holds; ${values.rev} (${wanted}, ${wantedDate}) lacks the blob`;
    }
  } else {
    const file = positionals[0];
    if (!file || !commit || !date) {
      console.error("usage: extract-stream-schema.mjs <openapi.json> --commit <sha> --date <iso> [--out <file>]");
      console.error("       extract-stream-schema.mjs --git-dir <dir> [--rev <rev>] [--out <file>]");
      process.exit(2);
    }
    text = readFileSync(file, "utf8");
    spec = JSON.parse(text);
  }
  const fixture = extractStreamSchema(spec, { repository: values.repository, commit, date, selection });
  const out = resolve(values.out);
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, `${JSON.stringify(fixture, null, 2)}\n`);
  const counts = Object.entries(fixture.components).map(([k, v]) => `${Object.keys(v).length} ${k}`);
  console.log(`wrote ${values.out}: ${Object.keys(fixture.paths).length} paths, ${counts.join(", ")} (source ${fixture["x-source"].repository}@${commit}, ${date})`);
  for (const p of fixture["x-source"].missingPaths) console.warn(`warning: ${p} is not in this schema`);
}

if (import.meta.url === `file://${process.argv[1]}`) main();
