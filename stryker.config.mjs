// Mutation testing of the engine (issue 22): `npm run mutate` (everything below, hours on 2 cores) or
// `npm run mutate -- --mutate src/core/log/redact.ts` (one module: only the test files of that module
// run, see testFilesFor). Not part of CI; scores and the survivors judged equivalent are in
// docs/development.md. The tap runner runs each test file as its own `node --import tsx FILE` (node:test
// prints TAP when its output is not a terminal) and records which files cover which mutant, so a mutant
// runs only the files that reach it.
/** The modules measured (issue 22). */
const MODULES = [
  "src/core/backup/**/*.ts",
  "src/core/migrations/{integrity,runner,lint}.ts",
  "src/core/health/**/*.ts",
  "src/core/release/**/*.ts",
  "src/core/log/redact.ts",
  "src/core/notify/**/*.ts",
];

/** The test files that exercise a module (its mirror under test/, plus the few elsewhere that reach it). */
const TESTS = {
  backup: ["test/core/backup/*.test.ts", "test/cli/backup-syscalls.test.ts"],
  // Issue 22 (s10): the pure lint files first; lint-gate.test.ts reaches lintGate (PostgreSQL, ~8 s).
  // lint-postgres.test.ts is left out: it restates rule verdicts lint.test.ts holds, at 9 s a survivor.
  "migrations/lint": [
    "test/core/migrations/lint-messages.test.ts",
    // s12: the DEFAULT functions name by name (2 s; before it, each survived through every file below),
    // the helpers at the top of lint.ts.
    "test/core/migrations/lint-defaults.test.ts",
    "test/core/migrations/lint-helpers.test.ts",
    "test/core/migrations/lint-sql.test.ts",
    "test/core/migrations/lint-sql-edges.test.ts",
    "test/core/migrations/lint-timeouts.test.ts",
    "test/core/migrations/lint-edges.test.ts",
    "test/core/migrations/lint-split.test.ts",
    "test/core/migrations/lint-split-edges.test.ts",
    "test/core/migrations/lint.test.ts",
    "test/core/migrations/lint-corpus.test.ts",
    // s13: one file that is neither SQL nor code (no server, ~1 s): reaches only lintMigrations.
    "test/core/migrations/lint-one-file.test.ts",
    // s11: lintGate and lintMigrations in process (one server; the code migrations' render child, 9 s).
    "test/core/migrations/lint-gate-edges.test.ts",
    "test/core/migrations/lint-migrations.test.ts",
    // s12: an Alembic directory (real alembic), a code migration's cwd, the gate's version and default
    // baseline (~25 s: alembic renders 5 revisions).
    "test/core/migrations/lint-migrations-edges.test.ts",
    "test/core/migrations/lint-gate.test.ts",
  ],
  // The pure verdict has its own table test; the runner's tests reach it too, at a minute a mutant.
  "migrations/integrity": ["test/core/migrations/integrity*.test.ts"],
  migrations: ["test/core/migrations/{integrity,runner,guard,command,checksums,edits,alembic}.test.ts"],
  health: ["test/core/health/*.test.ts"],
  release: ["test/core/release/*.test.ts"],
  // Per file (issue 22 part B): the few test files that really reach it, so a mutant costs seconds.
  "release/labels": ["test/core/release/labels.test.ts"],
  "release/pin-image": [
    "test/core/release/config-only-release.test.ts",
    "test/core/release/pin-image.test.ts",
  ],
  "release/stack-port": [],
  // s13: checkpoints-race: a checkpoint deleted by another prune between list and rm (under a second).
  "release/checkpoints": [
    "test/core/release/checkpoints.test.ts",
    "test/core/release/checkpoints-race.test.ts",
  ],
  "release/changes": [
    "test/core/release/changes-watch.test.ts",
    "test/core/release/no-loss-restore.test.ts",
    "test/core/release/orchestrator-changes.test.ts",
    // s13: a restore keeping no old database, a slot on another database, a swap failing after the replay.
    "test/core/release/changes-edges.test.ts",
  ],
  "release/plan": [
    "test/core/release/ledger.test.ts",
    "test/core/release/config-only-release.test.ts",
    "test/core/release/plan.test.ts",
  ],
  // Issue 22 part C: per file, the health tests that reach it (container.test.ts runs Docker: ~17 s).
  "health/tcp": ["test/core/health/http-probe.test.ts", "test/core/health/checks.test.ts"],
  "health/postgres": ["test/core/health/postgres-probe.test.ts", "test/core/health/checks.test.ts"],
  "health/run": [
    "test/core/health/gate-spec.test.ts",
    "test/core/health/verdicts.test.ts",
    "test/core/health/schedule.test.ts",
    "test/core/health/checks.test.ts",
  ],
  "health/gate": [
    "test/core/health/gate-spec.test.ts",
    "test/core/health/verdicts.test.ts",
    "test/core/health/schedule.test.ts",
    "test/core/health/checks.test.ts",
  ],
  "health/http": [
    "test/core/health/http-probe.test.ts",
    "test/core/health/verdicts.test.ts",
    "test/core/health/checks.test.ts",
  ],
  // s11: container-probe.test.ts reaches containerProbe in process with a stand-in docker CLI (~4 s);
  // container.test.ts (real Docker, 20-40 s) runs only for a mutant the others let survive.
  "health/container": [
    "test/core/health/container-verdict.test.ts",
    "test/core/health/container-probe.test.ts",
    "test/core/health/verdicts.test.ts",
    "test/core/health/container.test.ts",
  ],
  // Issue 22 part D: the release engine's lock, ledger and orchestrator, and the migration runner.
  "release/lock": [
    "test/core/release/lock.test.ts",
    "test/core/release/lock-edges.test.ts",
    // s13: link and rename failing otherwise than the races (fs.promises swapped; under a second).
    "test/core/release/lock-faults.test.ts",
  ],
  // s13: db-lock-race (~10 s, one server) reaches only what the other two let survive: last.
  "release/db-lock": [
    "test/core/release/db-lock.test.ts",
    "test/core/release/db-lock-edges.test.ts",
    "test/core/release/db-lock-race.test.ts",
  ],
  "release/ledger": [
    "test/core/release/ledger.test.ts",
    "test/core/release/plan.test.ts",
    "test/core/release/ledger-edges.test.ts",
  ],
  // s11: orchestrator-fast.test.ts runs orchestrator-cases.ts without PostgreSQL (2 s a run);
  // the PostgreSQL files (35-40 s together) run for a mutant only when the fast ones let it survive.
  "release/orchestrator": [
    "test/core/release/orchestrator-pure.test.ts",
    "test/core/release/orchestrator-fast.test.ts",
    "test/core/release/orchestrator-edges.test.ts",
    "test/core/release/orchestrator.test.ts",
    "test/core/release/orchestrator-changes.test.ts",
    "test/core/release/config-only-release.test.ts",
  ],
  // s10: runner.test.ts and checksums.test.ts reach migrate() too, at a minute a run each (a survivor
  // would cost two); runner-core.test.ts covers what a user feels in ~20 s. The score is a lower bound.
  // s11: runner-edges.test.ts and runner-exits.test.ts (~10 s each, one server) reach what only those
  // two did, in process;
  // runner-loss.test.ts (~9 s: a real backup restored, lock_timeout retries) last.
  // s12: runner-output (pure) first; runner-run (one server: what the run and the not-moved check do
  // after the tool ran); runner-blockers (~15 s) reaches only connect and lockBlockers; runner-tools
  // (bounded runShell, the real node-pg-migrate, ~15 s); runner-alembic (~25 s) and runner-retry (waits
  // the product's 2 s + 4 s) late.
  "migrations/runner": [
    "test/core/migrations/runner-hints.test.ts",
    "test/core/migrations/runner-output.test.ts",
    // s13: node-pg-migrate's order of an 18-digit prefix, `down`'s listing session (one server, ~5 s).
    "test/core/migrations/runner-lists.test.ts",
    // s13: the retries' waits and a run that exited 0 (one server, ~6 s): first of the files that run
    // migrate; then runner-retry (the retry loop, ~15 s), before runner-run (~25 s at load 13), and
    // runner-core and runner-exits (a failed run's message, INVALID indexes) before the others.
    "test/core/migrations/runner-result.test.ts",
    "test/core/migrations/runner-retry.test.ts",
    "test/core/migrations/runner-run.test.ts",
    "test/core/migrations/runner-core.test.ts",
    "test/core/migrations/runner-exits.test.ts",
    "test/core/migrations/runner-session.test.ts",
    "test/core/migrations/runner-edges.test.ts",
    "test/core/migrations/runner-blockers.test.ts",
    // s13: a read-only verb beside a killed run's marker, the blockers' query failing (one server, ~7 s).
    "test/core/migrations/runner-quiet.test.ts",
    "test/core/migrations/runner-tools.test.ts",
    "test/core/migrations/runner-alembic.test.ts",
    // s13: a dependency named by its branch label (real Alembic, one server, ~10 s).
    "test/core/migrations/runner-alembic-deps.test.ts",
    // s13: the row-loss check's two tables, no backup, no kept copy (one server, ~9 s).
    "test/core/migrations/runner-loss-edges.test.ts",
    "test/core/migrations/runner-loss.test.ts",
  ],
  "backup/names": ["test/core/backup/retention.test.ts", "test/core/backup/names.test.ts"],
  "backup/manifest": ["test/core/backup/retention.test.ts", "test/core/backup/names.test.ts"],
  "backup/retention": ["test/core/backup/retention.test.ts", "test/core/backup/retention-edges.test.ts"],
  "backup/manifest-auth": ["test/core/backup/offsite.test.ts", "test/core/backup/manifest-auth.test.ts"],
  "backup/interrupt": ["test/core/backup/interrupt.test.ts"],
  // Issue 22 (session 10): the in-process files first (milliseconds a case, no server), then the
  // older ones that reach the same code with PostgreSQL; a mutant runs the next file only if it survived.
  "backup/streams": [
    "test/core/backup/archive-reader.test.ts",
    "test/core/backup/streams-stages.test.ts",
    // s13: zstd failing after its input ended (a stand-in zstd on PATH held on a fifo; ~1 s).
    "test/core/backup/stage-late-failure.test.ts",
    "test/core/backup/stage-exit.test.ts",
    // s11: one small server; only DUMP_TEXT_ENV (module scope) runs it.
    "test/core/backup/dump-text-env.test.ts",
  ],
  // s13: verify-stages (stand-in pg_restore, a wrapped read stream; no server, ~3 s) before the server's.
  "backup/verify": [
    // s14: verify-labels (the role reader, failures' texts; no server, ~2 s) first.
    "test/core/backup/verify-labels.test.ts",
    "test/core/backup/verify-checks.test.ts",
    "test/core/backup/verify-stages.test.ts",
    // s14: the restore test's late steps and edited manifests (one server, ~17 s).
    "test/core/backup/verify-scratch.test.ts",
    "test/core/backup/verify-content.test.ts",
    // s13: the restore test's steps, labels, a signal, version 1 and unreadable re-dumps (one server, ~19 s).
    "test/core/backup/verify-restore.test.ts",
  ],
  // s3rver only: the older offsite/fetch files start PostgreSQL too (10 s a run); they reach the same code.
  // s14: offsite-sockets (connections closed, ~6 s), offsite-types (the stored Content-Type, one PUT and
  // multipart; ~3 s), offsite-silent (a store that never answers, the idle timeout of 1 s; ~8 s) last.
  "backup/offsite": [
    "test/core/backup/offsite-edges.test.ts",
    "test/core/backup/offsite-sockets.test.ts",
    "test/core/backup/offsite-types.test.ts",
    "test/core/backup/offsite-silent.test.ts",
  ],
  // s12: fetch-edges (s3rver behind a loopback proxy that pages listings and answers some requests itself).
  // s14: fetch-order (the listing's order whatever order the store lists in, signed times; s3rver and a
  // reversing proxy, ~5 s) second: fetch-edges reaches as much and kills more.
  "backup/fetch": [
    "test/core/backup/fetch-edges.test.ts",
    "test/core/backup/fetch-order.test.ts",
    // s14: a refused backup under the object its manifest names, nothing left but the fetched files (~2 s).
    "test/core/backup/fetch-refused.test.ts",
    "test/core/backup/offsite-edges.test.ts",
    // s14: every operation closes its connections to the store (a proxy that keeps idle ones open; ~6 s).
    "test/core/backup/offsite-sockets.test.ts",
  ],
  // Issue 22, session 10: the backup engine's runner, session, create and restore (real PostgreSQL but
  // one small server a file; the older files take 15-30 s each and reach every line at once).
  // s13: runner-pgbin (staged version trees and stand-in stdbufs, no server; ~1 s) first.
  "backup/runner": ["test/core/backup/runner-pgbin.test.ts", "test/core/backup/runner.test.ts"],
  // s13: session-close (the lock given back before psql leaves, an imported id's quoting; ~7 s) last.
  "backup/session": [
    "test/core/backup/session-edges.test.ts",
    "test/core/backup/session.test.ts",
    "test/core/backup/session-close.test.ts",
    // s13: holdAdvisoryLock tried for 2 s and given back before psql exits (one server, ~3 s).
    "test/core/backup/advisory-lock.test.ts",
  ],
  // s13: create-paths (~9 s, one server) last: it reaches only the late-write and half-read-archive paths.
  // s14: create-link (linkFailure's codes, pure, ~1 s) first: create-edges fails the link with EPERM and EIO only.
  "backup/create": [
    "test/core/backup/create-link.test.ts",
    "test/core/backup/create-edges.test.ts",
    "test/core/backup/create-paths.test.ts",
  ],
  // s11: restore-sql (archiveDatabase, createLike, carryOverSql; ~4 s) and restore-load (loadArchive,
  // ~12 s) first, restore-steps (each step's failure, through stand-in psql/pg_restore; ~10 s) last.
  // s12: restore-pure (describeSession, previousName, localeError, parallelShare, keepFreeBytes; no
  // server, under a second) first; restore-entry (listSessions, the lock, the owner check, kept names;
  // one server), restore-disk (a tmpfs: the temp copy filling it, a read-only disk; root) and
  // restore-container (Docker, ~25 s) last: each reaches code the others do not.
  // s13: restore-tools (listSessions without psql; no server) first, restore-swap (the swap's races staged
  // through psql's `\!`, the kept-name search's bound, the load
  // overlapping the safety dump; one server, ~17 s) before restore-edges.
  "backup/restore": [
    "test/core/backup/restore-tools.test.ts",
    "test/core/backup/restore-pure.test.ts",
    "test/core/backup/restore-sql.test.ts",
    "test/core/backup/restore-load.test.ts",
    "test/core/backup/restore-swap.test.ts",
    "test/core/backup/restore-edges.test.ts",
    "test/core/backup/restore-steps.test.ts",
    "test/core/backup/restore-entry.test.ts",
    "test/core/backup/restore-disk.test.ts",
    "test/core/backup/restore-container.test.ts",
  ],
  log: ["test/core/log/*.test.ts", "test/core/hooks/redact-stream.test.ts"],
  notify: ["test/core/notify/*.test.ts"],
};

function testFilesFor(patterns) {
  const out = new Set();
  for (const p of patterns) {
    const m = /src\/core\/([^/*{]+)(?:\/([^/*{.]+))?/.exec(p);
    const key = m && (TESTS[`${m[1]}/${m[2]}`] ? `${m[1]}/${m[2]}` : m[1]);
    for (const t of TESTS[key] ?? Object.values(TESTS).flat()) out.add(t);
  }
  return [...out];
}

// `--mutate a,b` or `-m a,b` on the command line narrows both the mutants and the test files.
const i = process.argv.findIndex((a) => a === "--mutate" || a === "-m");
const mutate = i >= 0 ? process.argv[i + 1].split(",") : MODULES;

/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  mutate,
  testRunner: "tap",
  tap: {
    testFiles: testFilesFor(mutate),
    nodeArgs: ["--import", "tsx", "--import", "./test/helpers/test-tmpdir.ts"],
    forceBail: true,
  },
  checkers: ["typescript"],
  tsconfigFile: "tsconfig.json",
  typescriptChecker: { prioritizePerformanceOverAccuracy: true },
  coverageAnalysis: "perTest",
  // Two shared cores: one mutant at a time unless told otherwise (`--concurrency 2`).
  concurrency: 1,
  // Tests start real PostgreSQL servers and spawn tools: a slow machine must not count as a kill.
  timeoutMS: 60_000,
  timeoutFactor: 3,
  // A re-run after a change tests only the mutants whose code or tests changed. Local, not committed.
  incremental: true,
  incrementalFile: "reports/stryker-incremental.json",
  reporters: ["clear-text", "progress-append-only", "html", "json"],
  htmlReporter: { fileName: "reports/mutation/index.html" },
  jsonReporter: { fileName: "reports/mutation/mutation.json" },
  ignorePatterns: ["dist", "examples", "bench", "reports", ".pulumi", ".pulumi-state", "backups", "logs"],
  cleanTempDir: "always",
};
