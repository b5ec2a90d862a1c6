#!/usr/bin/env node
// npm run mutate [-- <files or folders…>] [--changed] [--concurrency=N] [--checker] [--list]
//
// Mutation testing with StrykerJS (docs/testing.md#mutation-testing). Each module is mutated against the
// tests that keep its promises (TESTS below), not the whole suite: under the workers pool a test file costs
// seconds of module import inside workerd, so the test files named per mutant decide the run time.
//
//   npm run mutate                               every module of src/ and emulator/, one Stryker run per folder
//   npm run mutate -- src/stream/presence.ts     one module (or several, or a folder)
//   npm run mutate -- --changed                  the modules changed against main (committed or not), incremental
//   --concurrency=N  test runners in parallel (default 2; use 1 while others are testing)
//   --checker        also run @stryker-mutator/typescript-checker (≈ 8× slower here; off by default)
//   --force          re-test every mutant (ignore the incremental file; it is rewritten)
//   --list           print the module → tests plan and stop
//
// Reports go to .build/mutation/ (git-ignored): <group>.html, <group>.json, incremental-<group>.json, and
// summary.md (the score per module, the table docs/testing.md quotes).
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { basename, dirname, join, relative } from "node:path";

const ROOT = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
const OUT = join(ROOT, ".build/mutation");

/**
 * The tests that reach each module, beyond its mirror (test/x/y.test.ts for src/x/y.ts, always included
 * when it exists). Durable Object modules are reached through SELF and bindings, which no import graph
 * shows (why vitest's `related` mode misses them, BRIEF §7), so they are named here. A module with no
 * entry and no mirror falls back to the tests of its folder.
 */
const TESTS = {
  "src/clock.ts": ["test/stream/inbound.test.ts", "test/http/auth.test.ts"],
  "src/config.ts": ["test/config.test.ts"],
  "src/index.ts": ["test/sweep/leak-sweep.test.ts", "test/http/runtime-failures.test.ts"],
  "src/env.ts": [],

  // The ledger and the stream index are driven on the AppAccount stub by their mirrors (fast); outputs.test.ts and
  // stream-lists.test.ts reach them end to end, but their race tests cost 10–30 s a mutant (1 h+ for src/apps).
  "src/apps/app-account.ts": ["test/apps/admin.test.ts", "test/http/auth.test.ts", "test/apps/output-ledger.test.ts", "test/apps/app-streams.test.ts"],
  "src/apps/app-streams.ts": [],
  "src/apps/credentials.ts": ["test/apps/admin.test.ts", "test/http/auth.test.ts"],
  "src/apps/output-ledger.ts": ["test/apps/app-account.test.ts"],

  "src/budget/api-budget.ts": ["test/budget/budgeted-api.test.ts", "test/http/admin-stats.test.ts"],
  "src/budget/budgeted-api.ts": ["test/budget/api-budget.test.ts", "test/http/admin-stats.test.ts"],
  "src/budget/lease-pool.ts": ["test/budget/api-budget.test.ts", "test/budget/budgeted-api.test.ts"],

  // Its mirror drives every call and fault path against the emulator (in Node under mutation testing);
  // fault-matrix.test.ts and lifecycle-faults.test.ts prove the same end to end, at seconds a mutant.
  "src/cloudflare/stream-api.ts": [],
  "src/cloudflare/call-error.ts": [],
  "src/cloudflare/live-input-index.ts": [],

  "src/http/router.ts": ["test/http/streams.test.ts", "test/http/bad-input.test.ts"],
  "src/http/auth.ts": ["test/apps/user-grants.test.ts", "test/stream/presence.test.ts"],
  "src/http/body.ts": ["test/http/bad-input.test.ts"],
  "src/http/errors.ts": ["test/http/bad-input.test.ts", "test/http/runtime-failures.test.ts"],
  "src/http/openapi.ts": ["test/http/openapi.test.ts"],
  "src/http/openapi-routes.ts": ["test/http/openapi.test.ts"],
  "src/http/asyncapi.ts": ["test/http/openapi.test.ts"],
  "src/http/stream-webhook.ts": ["test/stream/status-sync.test.ts"],

  "src/ops/counters.ts": ["test/http/admin-stats.test.ts"],
  "src/ops/stats-buffer.ts": ["test/http/admin-stats.test.ts"],

  // Pure: pinned by their mirrors, Node unit tests (the group runs in Node). Their callers' workerd tests
  // (outputs.test.ts, status-sync.test.ts, app-requests.test.ts) reach them too, but would put the group
  // under workerd for no promise the mirrors do not state.
  "src/outputs/output-status.ts": [],
  "src/outputs/output-view.ts": [],
  "src/outputs/restream-destinations.ts": [],

  "src/schemas/api.ts": ["test/http/bad-input.test.ts", "test/http/openapi.test.ts"],
  "src/schemas/protocol.ts": ["test/stream/inbound.test.ts", "test/stream/presence.test.ts"],
  "src/schemas/responses.ts": ["test/http/openapi.test.ts"],
  "src/schemas/webhook.ts": ["test/stream/status-sync.test.ts"],

  "src/stream/app-requests.ts": ["test/apps/app-account.test.ts"],
  "src/stream/cloudflare-facts.ts": ["test/stream/status-sync.test.ts"],
  "src/stream/context.ts": [],
  "src/stream/device.ts": ["test/stream/presence.test.ts", "test/stream/recovery.test.ts"],
  "src/stream/idempotent-adds.ts": ["test/stream/outputs.test.ts"],
  "src/stream/inbound.ts": [],
  "src/stream/ledger-outbox.ts": ["test/stream/outputs.test.ts"],
  "src/stream/lifecycle.ts": ["test/stream/lifecycle-faults.test.ts", "test/stream/recovery.test.ts"],
  "src/stream/outputs.ts": ["test/stream/fault-matrix.test.ts"],
  "src/stream/output-store.ts": ["test/stream/outputs.test.ts", "test/stream/fault-matrix.test.ts"],
  "src/stream/participation-outbox.ts": ["test/http/stream-lists.test.ts"],
  "src/stream/presence.ts": ["test/stream/recovery.test.ts"],
  "src/stream/publisher.ts": ["test/stream/fanout.test.ts", "test/stream/presence.test.ts"],
  "src/stream/schedule.ts": ["test/stream/recovery.test.ts"],
  "src/stream/shutdown.ts": ["test/stream/lifecycle-faults.test.ts", "test/stream/presence.test.ts", "test/stream/recovery.test.ts"],
  "src/stream/sockets.ts": ["test/stream/presence.test.ts", "test/stream/fanout.test.ts"],
  "src/stream/sql.ts": ["test/stream/schedule.test.ts"],
  "src/stream/status.ts": [],
  "src/stream/status-sync.ts": ["test/sync/poll-policy.test.ts"],
  "src/stream/store.ts": ["test/stream/presence.test.ts", "test/stream/recovery.test.ts"],
  "src/stream/stream-coordinator.ts": ["test/stream/presence.test.ts", "test/stream/app-requests.test.ts", "test/stream/recovery.test.ts"],
  "src/stream/parts.ts": ["test/stream/presence.test.ts", "test/stream/recovery.test.ts"],
  "src/stream/wake.ts": ["test/stream/recovery.test.ts", "test/stream/fanout.test.ts"],
  "src/stream/creation.ts": ["test/stream/lifecycle-faults.test.ts", "test/stream/recovery.test.ts", "test/http/streams.test.ts"],
  "src/stream/connections.ts": ["test/stream/presence.test.ts", "test/stream/app-requests.test.ts"],
  "src/stream/stream-reads.ts": ["test/http/stream-lists.test.ts", "test/http/watch-link.test.ts", "test/stream/analytics.test.ts"],
  "src/stream/output-requests.ts": ["test/stream/outputs.test.ts"],
  "src/stream/recording-access.ts": ["test/stream/recordings.test.ts"],
  "src/stream/timers.ts": ["test/stream/presence.test.ts", "test/stream/recovery.test.ts"],
  "src/stream/failures.ts": ["test/stream/presence.test.ts"],
  "src/stream/tombstones.ts": ["test/stream/lifecycle-faults.test.ts", "test/stream/fault-matrix.test.ts"],
  "src/stream/views.ts": ["test/stream/presence.test.ts", "test/stream/app-requests.test.ts"],

  "src/sync/poll-policy.ts": [],
  "src/sweep/leak-sweep.ts": ["test/stream/recovery.test.ts", "test/http/admin-stats.test.ts"],
  "src/sweep/video-sweep.ts": ["test/sweep/leak-sweep.test.ts"],
  "src/users/user-streams.ts": ["test/http/streams.test.ts", "test/http/auth.test.ts", "test/http/watch-link.test.ts"],
  "src/users/watch-link.ts": ["test/http/watch-link.test.ts", "test/users/user-streams.test.ts"],
  "src/users/watch-key-index.ts": ["test/http/watch-link.test.ts", "test/users/watch-link.test.ts"],

  // emulator/*: every test of test/emulator (the folder fallback), run in Node with the emulator in the
  // tests' isolate (vitest.emulator.config.ts): under workerd it is an auxiliary worker, another isolate,
  // where Stryker cannot switch mutants.
};

/** Node-only parts of the emulator (RTMP, ffmpeg, the Node host): tested end to end by test/e2e, not here. */
const NOT_MUTATED = new Set([
  "src/env.ts",
  "src/stream/context.ts",
  "emulator/server.ts",
  "emulator/rtmp.ts",
  "emulator/ffmpeg-relay.ts",
  "emulator/playback.ts",
  "emulator/playback-http.ts",
  "emulator/state-file.ts",
  "emulator/types.ts",
  "emulator/worker.ts",
]);

function parseArgs(argv) {
  const opts = { targets: [], changed: false, concurrency: 2, checker: false, list: false, force: false };
  for (const arg of argv) {
    if (arg === "--changed") opts.changed = true;
    else if (arg === "--checker") opts.checker = true;
    else if (arg === "--list") opts.list = true;
    else if (arg === "--force") opts.force = true;
    else if (arg.startsWith("--concurrency=")) opts.concurrency = Math.max(1, Number(arg.split("=")[1]) || 1);
    else if (arg.startsWith("--")) throw new Error(`unknown option ${arg}`);
    else opts.targets.push(arg.replace(/\/$/, ""));
  }
  return opts;
}

function modulesUnder(path) {
  const abs = join(ROOT, path);
  if (!existsSync(abs)) throw new Error(`${path} does not exist`);
  if (statSync(abs).isFile()) return [path];
  return readdirSync(abs, { recursive: true })
    .map((f) => join(path, String(f)))
    .filter((f) => f.endsWith(".ts") && !f.endsWith(".d.ts") && statSync(join(ROOT, f)).isFile())
    .sort();
}

function changedModules() {
  const git = (...args) => execFileSync("git", args, { cwd: ROOT, encoding: "utf8" }).split("\n").filter(Boolean);
  const base = git("merge-base", "main", "HEAD")[0];
  const files = new Set([
    ...git("diff", "--name-only", base, "--", "src", "emulator"),
    ...git("ls-files", "--others", "--exclude-standard", "--", "src", "emulator"),
  ]);
  return [...files].filter((f) => f.endsWith(".ts") && existsSync(join(ROOT, f))).sort();
}

function testsFor(module) {
  const tests = new Set(TESTS[module] ?? []);
  const [top, ...rest] = module.split("/");
  const mirror = join("test", ...(top === "src" ? rest : [top, ...rest])).replace(/\.ts$/, ".test.ts");
  if (existsSync(join(ROOT, mirror))) tests.add(mirror);
  if (tests.size === 0 && !(module in TESTS)) {
    const folder = dirname(mirror);
    if (existsSync(join(ROOT, folder))) for (const f of readdirSync(join(ROOT, folder))) if (f.endsWith(".test.ts")) tests.add(join(folder, f));
  }
  return [...tests].filter((t) => existsSync(join(ROOT, t))).sort();
}

/** The pure modules' unit tests that vitest.unit.config.ts runs in Node (its UNIT_TESTS list). */
const UNIT_TESTS = new Set(
  [...readFileSync(join(ROOT, "vitest.unit.config.ts"), "utf8").matchAll(/"(test\/[^"]+\.test\.ts)"/g)].map((m) => m[1]),
);

/**
 * Tests of our Cloudflare clients against the Stream emulator that also run in Node, with the emulator in the
 * tests' isolate (vitest.emulator.config.ts's EMULATED_TESTS).
 */
const EMULATED_TESTS = new Set(
  [...(readFileSync(join(ROOT, "vitest.emulator.config.ts"), "utf8").match(/EMULATED_TESTS = \[([^\]]*)\]/)?.[1] ?? "").matchAll(/"(test\/[^"]+\.test\.ts)"/g)].map((m) => m[1]),
);

/**
 * One Stryker run per folder (its dry run is paid once); per-test coverage then picks the tests per mutant.
 * Modules whose every test is a Node unit test get a group of their own run in Node (vitest.unit.config.ts);
 * those whose tests are unit or emulated tests, a group run in Node with the emulator (vitest.emulator.config.ts).
 */
function groupsOf(modules) {
  const groups = new Map();
  for (const module of modules) {
    if (NOT_MUTATED.has(module)) continue;
    const tests = testsFor(module);
    if (tests.length === 0) {
      console.warn(`(no tests reach ${module}: not mutated)`);
      continue;
    }
    const unit = tests.every((t) => UNIT_TESTS.has(t));
    const emulated = !unit && !module.startsWith("emulator/") && tests.every((t) => UNIT_TESTS.has(t) || EMULATED_TESTS.has(t));
    const name = dirname(module).replace(/\//g, "-") + (unit ? "-unit" : emulated ? "-node" : "");
    // Workerd groups use vitest.mutation.config.ts: vitest.config.ts with one workerd runtime kept across
    // mutants (scripts/persistent-workerd.ts), instead of a new workerd and module import per mutant.
    const config = unit ? "vitest.unit.config.ts" : emulated || module.startsWith("emulator/") ? "vitest.emulator.config.ts" : "vitest.mutation.config.ts";
    // In Node (unit and emulated groups) every run re-imports the modules: every test per mutant is cheap, and
    // mutants of module-level constants are switched.
    const node = unit || emulated;
    const group = groups.get(name) ?? { name, config, node, modules: [], tests: new Set() };
    group.modules.push(module);
    for (const t of tests) group.tests.add(t);
    groups.set(name, group);
  }
  return [...groups.values()];
}

function runGroup(group, opts) {
  const config = {
    $schema: "../../node_modules/@stryker-mutator/core/schema/stryker-schema.json",
    testRunner: "vitest",
    vitest: { configFile: group.config, related: false },
    mutate: group.modules,
    testFiles: [...group.tests],
    // Per-test coverage picks the tests per mutant (what makes the workerd groups affordable). A unit group's
    // files cost milliseconds, so it runs them all per mutant, which was 2–4× faster than measuring coverage.
    coverageAnalysis: group.node ? "all" : "perTest",
    // Mutants of module-level constants ("static") are not switched by the vitest runner under workerd (the
    // module is evaluated once per test worker): they would run every test and report survived. Left out of
    // those groups' score (Stryker allows it only with perTest); the timing constants are pinned by boundary
    // tests checked by hand (docs/testing.md).
    ignoreStatic: !group.node,
    concurrency: opts.concurrency,
    checkers: opts.checker ? ["typescript"] : [],
    tsconfigFile: "tsconfig.json",
    // Tests, not the type checker, reject mutants that do not compile (the checker is ≈ 8× slower here).
    disableTypeChecks: "{src,emulator}/**/*.ts",
    reporters: ["clear-text", "progress", "html", "json"],
    htmlReporter: { fileName: `.build/mutation/${group.name}.html` },
    jsonReporter: { fileName: `.build/mutation/${group.name}.json` },
    // Always incremental: a later run re-tests only the mutants whose code or covering tests changed.
    incremental: true,
    force: opts.force,
    incrementalFile: `.build/mutation/incremental-${group.name}.json`,
    // One per group, so runs of different folders can go side by side.
    tempDirName: `.stryker-tmp-${group.name}`,
    cleanTempDir: "always",
    ignorePatterns: [".build", ".wrangler", "client/dist", "bench/results", "test/e2e", ".stryker-tmp*", "reports"],
    // Workerd's first module import is slow on a busy machine: generous timeouts, so a slow run is not a "timeout" kill.
    timeoutMS: 30_000,
    timeoutFactor: 2,
    dryRunTimeoutMinutes: 20,
    thresholds: { high: 90, low: 80, break: null },
    clearTextReporter: { allowColor: false, logTests: false, reportScoreTable: true },
  };
  mkdirSync(OUT, { recursive: true });
  const file = join(OUT, `stryker-${group.name}.json`);
  writeFileSync(file, JSON.stringify(config, null, 2));
  console.log(`\n── ${group.name}: ${group.modules.length} module(s), tests: ${[...group.tests].join(" ")}`);
  const started = Date.now();
  const result = spawnSync("npx", ["stryker", "run", relative(ROOT, file)], {
    cwd: ROOT,
    stdio: "inherit",
    env: { ...process.env, MUTATION_TESTING: "1" },
  });
  const seconds = Math.round((Date.now() - started) / 1000);
  console.log(`── ${group.name}: ${seconds} s`);
  return { ok: result.status === 0, seconds };
}

/** Score per module from every group report present (the latest run of each). */
function summarize(timings) {
  const rows = [];
  for (const f of existsSync(OUT) ? readdirSync(OUT) : []) {
    if (!f.endsWith(".json") || f.startsWith("stryker-") || f.startsWith("incremental-")) continue;
    const report = JSON.parse(readFileSync(join(OUT, f), "utf8"));
    for (const [path, file] of Object.entries(report.files ?? {})) {
      const count = (s) => file.mutants.filter((m) => s.includes(m.status)).length;
      const killed = count(["Killed", "Timeout"]);
      const survived = count(["Survived"]);
      const noCoverage = count(["NoCoverage"]);
      const invalid = count(["CompileError", "RuntimeError", "Ignored"]);
      const valid = killed + survived + noCoverage;
      rows.push({ path: relative(ROOT, join(ROOT, path)), killed, survived, noCoverage, invalid, score: valid ? (100 * killed) / valid : 100 });
    }
  }
  rows.sort((a, b) => a.path.localeCompare(b.path));
  const byFolder = new Map();
  for (const r of rows) {
    const k = dirname(r.path);
    const t = byFolder.get(k) ?? { killed: 0, valid: 0 };
    t.killed += r.killed;
    t.valid += r.killed + r.survived + r.noCoverage;
    byFolder.set(k, t);
  }
  const pct = (k, v) => (v ? `${((100 * k) / v).toFixed(1)} %` : "–");
  const lines = [
    "| module | score | killed | survived | no coverage |",
    "|---|---:|---:|---:|---:|",
    ...rows.map((r) => `| ${r.path} | ${r.score.toFixed(1)} % | ${r.killed} | ${r.survived} | ${r.noCoverage} |`),
    "",
    "| folder | score |",
    "|---|---:|",
    ...[...byFolder].map(([k, t]) => `| ${k} | ${pct(t.killed, t.valid)} |`),
    "",
    ...timings.map((t) => `- ${t.name}: ${t.seconds} s`),
  ];
  writeFileSync(join(OUT, "summary.md"), lines.join("\n") + "\n");
  console.log(`\n${lines.join("\n")}\n\n(.build/mutation/summary.md; HTML reports beside it)`);
}

const opts = parseArgs(process.argv.slice(2));
const modules = opts.changed
  ? changedModules()
  : (opts.targets.length ? opts.targets : ["src", "emulator"]).flatMap(modulesUnder);
const groups = groupsOf([...new Set(modules)]);
if (opts.list || groups.length === 0) {
  for (const g of groups) console.log(`${g.name} (${g.config})\n  mutate: ${g.modules.join(" ")}\n  tests:  ${[...g.tests].join(" ")}`);
  if (groups.length === 0) console.log(opts.changed ? "No module changed against main." : "Nothing to mutate.");
  process.exit(0);
}
const timings = [];
let failed = false;
for (const group of groups) {
  const { ok, seconds } = runGroup(group, opts);
  timings.push({ name: group.name, seconds });
  failed ||= !ok;
}
summarize(timings);
process.exit(failed ? 1 : 0);
