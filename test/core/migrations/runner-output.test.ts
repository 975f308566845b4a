// Issue 22 (session 12): what runner.ts reads in a tool's output, beside runner-hints.test.ts (pure, in
// process, first in the mutation key): lock_timeout's words at their edges, and the failed migration's name
// in each tool's wording.
import { test } from "node:test";
import assert from "node:assert/strict";
import { failedMigration, isLockTimeout } from "../../../src/core/migrations/runner";

test("isLockTimeout: `lock timeout` only as whole words, at either end", () => {
  assert.equal(isLockTimeout("ERROR: lock timeout"), true);
  assert.equal(isLockTimeout("could not obtain lock: LockNotAvailable"), true);
  for (const o of ["the block timeout was raised", "lock timeouts were raised", "LockNotAvailabl"])
    assert.equal(isLockTimeout(o), false, o);
});

test("failedMigration: each tool's wording of the migration it was running", () => {
  const cases: Array<[Parameters<typeof failedMigration>[0], string, string | undefined]> = [
    [
      "node-pg-migrate",
      "> Migrating files:\n### MIGRATION 1700000002000_orders (UP) ###\nerror: x",
      "1700000002000_orders",
    ],
    ["node-pg-migrate", "### MIGRATION 2_b (UP) ### and more", undefined], // the whole line only
    ["node-pg-migrate", "### MIGRATION 2 b (UP) ###", undefined],
    ["alembic", "INFO  Running upgrade a1 -> b2, add index\nINFO  Running upgrade b2 -> c3, more", "c3"],
    ["alembic", "INFO  Running upgrade  -> a1, create accounts", "a1"],
    [
      "alembic",
      'File "/app/migrations/versions/c3_more.py", line 12, in upgrade\n    op.execute("...")',
      "versions/c3_more.py",
    ],
    ["alembic", 'File "/app/versions/c3_more.py", line 12, in upgrade_data', undefined],
    ["alembic", 'File "/app/versions/c3_more.pyc", line 12, in upgrade', undefined],
    ["alembic", 'File "c3_more.py", line 12, in upgrade', undefined], // no directory: not a revision file
    [
      "prisma",
      "Error: P3018\nThe `20260101000000_init` migration started at 2026-01-01 10:00:00 UTC failed",
      "20260101000000_init",
    ],
    ["prisma", "The `a` migration started at x\nMigration name: b", "b"],
    ["prisma", "Migration name: 20260101000000_init\nError: P3018", "20260101000000_init"],
    ["command", "Migration name: 20260101000000_init", undefined], // Prisma's words from another tool
  ];
  for (const [tool, output, want] of cases)
    assert.equal(failedMigration(tool, output), want, `${tool}: ${output}`);
});
