#!/usr/bin/env node
// Builds the client's runtime: client/src/*.ts → client/dist/index.js (one ESM file, no dependencies),
// plus dist/index.d.ts pointing TypeScript at the sources (whose types come from src/schemas). esbuild
// erases every `import type`; the build fails if a runtime import would leave client/ (e.g. pull zod or
// server code into the client). Run by `npm ci` / `npm install` (prepare) and the client e2e test;
// by hand: `npm run build:client`. Takes ~60 ms.
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));

/** Fails the build on any runtime import from outside client/src (type-only imports never get here). */
const selfContained = {
  name: "self-contained",
  setup(b) {
    b.onResolve({ filter: /.*/ }, (args) => {
      if (args.kind === "entry-point") return undefined;
      const resolved = path.resolve(args.resolveDir, args.path);
      if (!args.path.startsWith(".") || !resolved.startsWith(path.join(here, "src") + path.sep)) {
        return { errors: [{ text: `runtime import of "${args.path}" from ${path.relative(here, args.importer)}: the client must not depend on anything outside client/src at runtime (use \`import type\`)` }] };
      }
      return undefined;
    });
  },
};

export async function buildClient({ quiet = true } = {}) {
  const started = Date.now();
  const { build } = await import("esbuild");
  await build({
    entryPoints: [path.join(here, "src/index.ts")],
    outfile: path.join(here, "dist/index.js"),
    bundle: true,
    format: "esm",
    platform: "neutral",
    target: "es2022",
    sourcemap: true,
    logLevel: quiet ? "error" : "info",
    plugins: [selfContained],
  });
  mkdirSync(path.join(here, "dist"), { recursive: true });
  writeFileSync(path.join(here, "dist/index.d.ts"), 'export * from "../src/index.js";\n');
  return Date.now() - started;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  // --optional (the `prepare` script): an install without devDependencies has no esbuild; skip, do not fail.
  const optional = process.argv.includes("--optional");
  try {
    const ms = await buildClient();
    console.log(`client/dist/index.js built in ${ms} ms`);
  } catch (error) {
    if (!(optional && error?.code === "ERR_MODULE_NOT_FOUND")) throw error;
    console.log("client/dist not built: esbuild is not installed (devDependencies); run `npm run build:client` after installing them");
  }
}
