#!/usr/bin/env node
// Builds the static files wrangler serves through `assets` (wrangler.jsonc): `.build/assets/`, gitignored
// build output. Each site is a folder of our own files under web/<mount>/ plus files copied from npm
// packages, served at /<mount>/; nothing comes from a CDN (deployments and test machines may have no
// internet). Today: the API reference at /docs/ (Swagger UI from swagger-ui-dist, reading /openapi.json).
// A later site (the web console at /console/) is one more SITES entry, with a `build` step if it needs
// bundling.
//
// `npm start` (scripts/start.mjs) and vitest.config.ts call buildAssets() before wrangler or workerd
// read the directory, so a fresh clone needs no extra step; `npm run build:assets` runs it alone (e.g.
// before `wrangler deploy`). It is cheap when nothing changed and safe when several stacks start at
// once (the e2e suite): a file is written only when its content differs, through a temporary file and
// a rename, so wrangler dev sees no change (and does not reload) and nobody reads half a file.
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

export const ASSETS_DIR = ".build/assets";

/** @type {{ mount: string, vendor: { pkg: string, files: string[], to: string }[] }[]} */
export const SITES = [
  {
    mount: "docs",
    vendor: [
      {
        pkg: "swagger-ui-dist",
        files: ["swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png", "favicon-16x16.png", "LICENSE", "NOTICE"],
        to: "vendor/swagger-ui",
      },
    ],
  },
];

/** Writes ASSETS_DIR under `root`; returns how many files it wrote and how many were already current. */
export function buildAssets(root = path.dirname(path.dirname(fileURLToPath(import.meta.url)))) {
  const require = createRequire(path.join(root, "package.json"));
  const out = path.join(root, ASSETS_DIR);
  /** @type {Map<string, Buffer>} relative path → content */
  const files = new Map();
  for (const site of SITES) {
    const source = path.join(root, "web", site.mount);
    for (const file of walk(source)) files.set(path.join(site.mount, path.relative(source, file)), readFileSync(file));
    for (const { pkg, files: names, to } of site.vendor) {
      const dir = path.dirname(require.resolve(`${pkg}/package.json`));
      for (const name of names) files.set(path.join(site.mount, to, name), readFileSync(path.join(dir, name)));
    }
  }
  let written = 0;
  for (const [rel, content] of files) {
    const dest = path.join(out, rel);
    if (existsSync(dest) && readFileSync(dest).equals(content)) continue;
    mkdirSync(path.dirname(dest), { recursive: true });
    const tmp = `${dest}.tmp-${process.pid}`;
    writeFileSync(tmp, content);
    renameSync(tmp, dest);
    written += 1;
  }
  // Files a previous build made that this one does not (a site or vendor file removed) go; another
  // builder's temporary files are left alone.
  for (const file of walk(out)) {
    const rel = path.relative(out, file);
    if (!files.has(rel) && !/\.tmp-\d+$/.test(rel)) rmSync(file, { force: true });
  }
  return { dir: out, written, current: files.size - written };
}

function walk(dir) {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).flatMap((name) => {
    const full = path.join(dir, name);
    return statSync(full).isDirectory() ? walk(full) : [full];
  });
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const { dir, written, current } = buildAssets();
  console.log(`assets: ${written} written, ${current} current in ${path.relative(process.cwd(), dir) || dir}`);
}
