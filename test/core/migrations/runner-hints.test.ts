// What a failed migration run tells the operator, word for word (issue 22 part D: src/core/migrations/
// runner.ts lines 160-300, pure): lock_timeout with the sessions that blocked it, statement_timeout,
// Prisma's half-applied migrations, INVALID indexes left by CONCURRENTLY.
import { test } from "node:test";
import assert from "node:assert/strict";
import { failedMigration, failureHints, isLockTimeout, toolEnv } from "../../../src/core/migrations/runner";

test("isLockTimeout: PostgreSQL's and the drivers' wordings, any case; other errors are not", () => {
  const yes = [
    "error: canceling statement due to lock timeout",
    "ERROR:  CANCELING STATEMENT DUE TO LOCK TIMEOUT",
    "psycopg2.errors.LockNotAvailable: canceling statement",
    "lock timeout",
  ];
  const no = [
    "error: canceling statement due to statement timeout",
    "deadlock detected",
    "the block timeouts were raised", // `lock timeout` only as whole words
    "",
  ];
  for (const o of yes) assert.equal(isLockTimeout(o), true, o);
  for (const o of no) assert.equal(isLockTimeout(o), false, o);
});

const base = { output: "", blockers: [], newInvalid: [], attempts: 1 };
const LOCK = "error: canceling statement due to lock timeout";

test("failureHints: lock_timeout with blockers names them and the command that ends each", () => {
  assert.deepEqual(
    failureHints({
      ...base,
      output: LOCK,
      lockTimeout: "2s",
      attempts: 3,
      blockers: [
        { pid: 41, text: 'pid 41 (application_name "psql", idle in transaction)' },
        { pid: 42, text: "pid 42 (x)" },
      ],
    }),
    [
      'lock_timeout (2s) cancelled the migration on each of 3 attempts: blocked by pid 41 (application_name "psql", ' +
        "idle in transaction); pid 42 (x). Nothing of that migration was kept; wait for it to finish, or end it " +
        "with SELECT pg_terminate_backend(41); SELECT pg_terminate_backend(42), then re-run. A session that keeps " +
        "a transaction open blocks every ALTER: run migrations in a quiet window, or raise --lock-retries",
    ],
  );
});

test("failureHints: lock_timeout with the blocker gone, one attempt, the default limit", () => {
  assert.deepEqual(failureHints({ ...base, output: LOCK }), [
    "lock_timeout (5s) cancelled the migration: the session holding the lock had gone before it could be " +
      "named. Nothing of that migration was kept; re-run. A session that keeps a transaction open blocks " +
      "every ALTER: run migrations in a quiet window, or raise --lock-retries",
  ]);
});

test("failureHints: an INVALID index left behind is not 'nothing kept', and says how to drop it", () => {
  assert.deepEqual(failureHints({ ...base, output: LOCK, newInvalid: ["public.i1"] }), [
    "lock_timeout (5s) cancelled the migration: the session holding the lock had gone before it could be " +
      "named. re-run. A session that keeps a transaction open blocks every ALTER: run migrations in a quiet " +
      "window, or raise --lock-retries",
    'the run left INVALID index public.i1 (a CREATE INDEX CONCURRENTLY cut short); re-running fails with "already ' +
      'exists" until you DROP INDEX CONCURRENTLY public.i1',
  ]);
  assert.deepEqual(failureHints({ ...base, newInvalid: ["a", "b"] }), [
    'the run left INVALID indexes a, b (a CREATE INDEX CONCURRENTLY cut short); re-running fails with "already ' +
      'exists" until you DROP INDEX CONCURRENTLY a; DROP INDEX CONCURRENTLY b',
  ]);
});

test("failureHints: statement_timeout, with its limit or the default", () => {
  const st = "ERROR: Canceling statement due to statement timeout";
  const hint = (limit: string) =>
    `statement_timeout (${limit}) cancelled a statement: raise --statement-timeout for this migration, or make ` +
    "it cheaper (batches, CONCURRENTLY)";
  assert.deepEqual(failureHints({ ...base, output: st }), [hint("15min")]);
  assert.deepEqual(failureHints({ ...base, output: st, statementTimeout: "1h" }), [hint("1h")]);
});

test("failureHints: Prisma's P3009/P3018 only for Prisma, with the migration's name or NAME", () => {
  const p = (name: string) =>
    "prisma does not promise to run a migration in a transaction (its docs cover half-applied migrations), so " +
    "statements before the failing one may have stayed applied: check the schema (`safe-deploy drift`) or " +
    "restore the pre-deploy backup, then mark the migration with `npx prisma migrate resolve --rolled-back " +
    `${name}\` and re-run; until then every deploy stops with P3009`;
  assert.deepEqual(failureHints({ ...base, tool: "prisma", output: "Error: P3009" }), [p("NAME")]);
  assert.deepEqual(failureHints({ ...base, tool: "prisma", failed: "2024_x", output: "Error: P3018" }), [
    p("2024_x"),
  ]);
  assert.deepEqual(failureHints({ ...base, tool: "node-pg-migrate", output: "Error: P3009" }), []);
  assert.deepEqual(failureHints({ ...base, tool: "prisma", output: "Error: P1001" }), []);
});

test("failedMigration: the last one named, down migrations too, and Alembic's trailing comma", () => {
  const cases: Array<[Parameters<typeof failedMigration>[0], string, string | undefined]> = [
    ["node-pg-migrate", "### MIGRATION 3_c (DOWN) ###\nerror", "3_c"],
    ["node-pg-migrate", "x ### MIGRATION 3_c (UP) ###", undefined], // only a whole line
    ["alembic", "Running downgrade b2 -> a1, drop\nRunning downgrade a1 -> base,", "base"],
    [
      "alembic",
      'File "/v/a.py", line 1, in upgrade\nFile "/app/versions/b_x.py", line 9, in downgrade',
      "versions/b_x.py",
    ],
    ["alembic", 'File "/app/versions/b_x.py", line 9, in helper', undefined],
    ["prisma", "Migration name: a\nMigration name: b", "b"],
    ["prisma", "nothing", undefined],
    ["command", "### MIGRATION 1_a (UP) ###", undefined],
  ];
  for (const [tool, output, want] of cases)
    assert.equal(failedMigration(tool, output), want, `${tool}: ${output}`);
});

test("toolEnv: DATABASE_URL for every tool, postgresql:// for Alembic, the same URL under databaseUrlEnv; a bad name refused", () => {
  const url = "postgres://app:pw@db:5432/app";
  assert.deepEqual(toolEnv("node-pg-migrate", url), { DATABASE_URL: url });
  assert.deepEqual(toolEnv("prisma", url, "NEXT_PRIVATE_DATABASE_URL"), {
    DATABASE_URL: url,
    NEXT_PRIVATE_DATABASE_URL: url,
  });
  const sa = "postgresql://app:pw@db:5432/app";
  assert.deepEqual(toolEnv("alembic", url, "_DB1"), { DATABASE_URL: sa, _DB1: sa });
  for (const bad of ["", "1DB", "APP-URL", "A B", "DB;x"])
    assert.throws(
      () => toolEnv("command", url, bad),
      (e: Error) =>
        e.name === "ConfigError" &&
        e.message ===
          `\`migrations.databaseUrlEnv\` (\`--database-url-env\`) must be an environment variable name such as NEXT_PRIVATE_DATABASE_URL, got "${bad}"`,
    );
});
