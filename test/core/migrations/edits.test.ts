import { test } from "node:test";
import assert from "node:assert/strict";
import { appliedMigrationEdits, isMigrationFile } from "../../../src/core/migrations/edits";

test("which files are migrations, per tool", () => {
  const cases: Array<[Parameters<typeof isMigrationFile>[0], string, boolean]> = [
    ["node-pg-migrate", "1700000000000_add-notes.js", true],
    ["node-pg-migrate", "1700000000001_backfill.sql", true],
    ["node-pg-migrate", "README.md", false],
    ["node-pg-migrate", "lib/helpers.js", false],
    ["node-pg-migrate", ".eslintrc.js", false],
    ["prisma", "20260101000000_init/migration.sql", true],
    ["prisma", "migration_lock.toml", false],
    ["alembic", "versions/a1b2c3_add_notes.py", true],
    ["alembic", "alembic/versions/a1b2c3_add_notes.py", true],
    ["alembic", "env.py", false],
    ["alembic", "script.py.mako", false],
    ["command", "0001_init.up.sql", true],
    ["command", "sqitch.plan", false],
  ];
  for (const [tool, file, want] of cases) assert.equal(isMigrationFile(tool, file), want, `${tool} ${file}`);
});

test("applied migrations edited or removed are found; added ones and other files are not", () => {
  const diff = [
    "M\t1700000000000_add-notes.js",
    "D\t1700000000001_backfill.sql",
    "A\t1700000000002_new.js",
    "M\tREADME.md",
    "T\t1700000000003_link.sql",
  ].join("\n");
  assert.deepEqual(appliedMigrationEdits("node-pg-migrate", diff), [
    { file: "1700000000000_add-notes.js", change: "edited" },
    { file: "1700000000001_backfill.sql", change: "removed" },
    { file: "1700000000003_link.sql", change: "edited" },
  ]);
  assert.deepEqual(appliedMigrationEdits("node-pg-migrate", ""), []);
});
