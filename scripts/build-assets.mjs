#!/usr/bin/env node
// Builds the static files wrangler serves through `assets` (wrangler.jsonc): `.build/assets/`, gitignored
// build output. Each site is a folder of our own files under web/<mount>/ plus files copied from npm
// packages, served at /<mount>/; nothing comes from a CDN (deployments and test machines may have no
// internet). Today: the API reference at /docs/ (Swagger UI from swagger-ui-dist, reading /openapi.json)
// the web console at /console/ (docs/console.md) and the watch page's script at /watch/, whose TypeScript under web/console/src/ is
// bundled by esbuild (`bundle`: preact, hls.js and the typed client, minified into one file) instead of
// being copied.
//
// `npm start` (scripts/start.mjs) and vitest.config.ts call buildAssets() before wrangler or workerd
// read the directory, so a fresh clone needs no extra step; `npm run build:assets` runs it alone (e.g.
// before `wrangler deploy`). It is cheap when nothing changed and safe when several stacks start at
// once (the e2e suite): a file is written only when its content differs, through a temporary file and
// a rename, so wrangler dev sees no change (and does not reload) and nobody reads half a file.
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { buildSync } from "esbuild";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

export const ASSETS_DIR = ".build/assets";

/**
 * `bundle`: web/<mount>/<bundle.entry> (and all it imports) → <mount>/<bundle.outfile>, one minified ES
 * module; the site's `src/` folder is its source and is not copied.
 * @type {{ mount: string, vendor: { pkg: string, files: string[], to: string }[], bundle?: { entry: string, outfile: string } }[]}
 */
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
  {
    mount: "console",
    vendor: [
      { pkg: "hls.js", files: ["LICENSE"], to: "licenses/hls.js" },
      { pkg: "preact", files: ["LICENSE"], to: "licenses/preact" },
    ],
    bundle: { entry: "src/main.tsx", outfile: "console.js" },
  },
  {
    // The watch page (GET /w/:key for browsers): the console's player on the user's watch link.
    mount: "watch",
    vendor: [
      { pkg: "hls.js", files: ["LICENSE"], to: "licenses/hls.js" },
      { pkg: "preact", files: ["LICENSE"], to: "licenses/preact" },
    ],
    bundle: { entry: "src/main.tsx", outfile: "watch.js" },
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
    const sources = site.bundle ? path.join(source, "src") + path.sep : null;
    for (const file of walk(source)) {
      if (sources && file.startsWith(sources)) continue;
      files.set(path.join(site.mount, path.relative(source, file)), readFileSync(file));
    }
    if (site.bundle) files.set(path.join(site.mount, site.bundle.outfile), bundle(root, path.join(source, site.bundle.entry), site.mount));
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

/**
 * One browser ES module from a TypeScript entry: minified, no source map (it would be the biggest file
 * served), licence comments kept at its end. Preact's JSX runtime for .tsx. About 350 ms, so the result
 * is kept in .build/bundles/ with the size and mtime of every input esbuild read: while none changed,
 * a build reuses it (a few ms; `npm start` and every e2e stack call this).
 */
function bundle(root, entry, name) {
  const cacheDir = path.join(root, ".build", "bundles");
  const stampFile = path.join(cacheDir, `${name}.json`);
  const outFile = path.join(cacheDir, `${name}.js`);
  const stat = (file) => {
    try {
      const st = statSync(path.resolve(root, file));
      return `${st.size}:${st.mtimeMs}`;
    } catch {
      return "missing";
    }
  };
  try {
    const stamp = JSON.parse(readFileSync(stampFile, "utf8"));
    if (stamp.entry === entry && Object.entries(stamp.inputs).every(([file, seen]) => stat(file) === seen)) return readFileSync(outFile);
  } catch {
    // no usable stamp: build
  }
  const result = buildSync({
    absWorkingDir: root,
    metafile: true,
    entryPoints: [entry],
    bundle: true,
    write: false,
    format: "esm",
    platform: "browser",
    target: "es2022",
    minify: true,
    jsx: "automatic",
    jsxImportSource: "preact",
    legalComments: "eof",
    logLevel: "error",
  });
  const content = Buffer.from(result.outputFiles[0].contents);
  // Inputs are paths relative to root; package.json files count too (a dependency's version change).
  const inputs = Object.fromEntries(Object.keys(result.metafile.inputs).map((file) => [file, stat(file)]));
  for (const file of ["package-lock.json", "scripts/build-assets.mjs"]) inputs[file] = stat(file);
  mkdirSync(cacheDir, { recursive: true });
  for (const [file, data] of [[outFile, content], [stampFile, JSON.stringify({ entry, inputs })]]) {
    const tmp = `${file}.tmp-${process.pid}`;
    writeFileSync(tmp, data);
    renameSync(tmp, file);
  }
  return content;
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
