// Issue 22: the survivors of checkStatement's first Stryker run (lint-messages.test.ts was its only new
// file then): boundaries of PostgreSQL versions, what counts as a new column or a proven NOT NULL,
// several objects in one statement, option values, and checkStatement given only the context it requires.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { checkStatement, lintSql, type LintConfig } from "../../../src/core/migrations/lint";

const lint = async (sql: string, config: LintConfig = {}) =>
  (await lintSql(sql, "x.sql", { timeoutsSetByRunner: true, ...config })).map(
    (f) => `${f.rule}: ${f.message}`,
  );

const CASES: Array<[string, string, string[], LintConfig?]> = [
  [
    "VACUUM FULL: each statement its own table; off in every spelling; a value lint cannot read as off counts as FULL",
    "VACUUM (FULL false) f; VACUUM (FULL 0) z; VACUUM (FULL off) o; VACUUM (FULL 1) one; VACUUM (FULL 'xoff') x; VACUUM (FULL 'offx') y;",
    // Better a warning too many than a rewrite unseen.
    ["vacuum-full: VACUUM FULL one", "vacuum-full: VACUUM FULL x", "vacuum-full: VACUUM FULL y"],
  ],
  [
    "several objects in one DROP are all named",
    "DROP SCHEMA a, b CASCADE; DROP INDEX i, s.j;",
    [
      "drop-schema: DROP SCHEMA a, b",
      "drop-index-without-concurrently: DROP INDEX i, s.j without CONCURRENTLY",
    ],
  ],
  [
    "a table-level UNIQUE is not a primary key",
    "CREATE TABLE u (id int, UNIQUE (id));",
    ["table-without-primary-key: CREATE TABLE u without a primary key"],
  ],
  [
    "a constraint named like a column: dropping the column is not validating the constraint",
    "BEGIN; ALTER TABLE t ADD CONSTRAINT a CHECK (a > 0) NOT VALID; ALTER TABLE t DROP COLUMN a; COMMIT;",
    ["drop-column: DROP COLUMN a on t"],
  ],
  [
    "PostgreSQL 12: a validated CHECK (f IS NOT NULL) lets SET NOT NULL f pass; another column still scans",
    "ALTER TABLE t ADD CONSTRAINT c CHECK (f IS NOT NULL) NOT VALID; ALTER TABLE t VALIDATE CONSTRAINT c; ALTER TABLE t ALTER COLUMN f SET NOT NULL; ALTER TABLE t ALTER COLUMN g SET NOT NULL;",
    ["set-not-null: SET NOT NULL on t.g"],
    { pgVersion: 12 },
  ],
  [
    "a CHECK (f IS NOT NULL) validated at once proves the column too (and is reported itself)",
    "ALTER TABLE t ADD CONSTRAINT c CHECK (f IS NOT NULL); ALTER TABLE t ALTER COLUMN f SET NOT NULL;",
    ["constraint-missing-not-valid: ADD CONSTRAINT c without NOT VALID on t"],
  ],
  [
    "a validated CHECK that is not a NULL test proves no column",
    'ALTER TABLE t ADD CONSTRAINT c CHECK (a > 0) NOT VALID; ALTER TABLE t VALIDATE CONSTRAINT c; ALTER TABLE t ALTER COLUMN "undefined" SET NOT NULL;',
    ["set-not-null: SET NOT NULL on t.undefined"],
  ],
  [
    "VALIDATE of a constraint added without NOT VALID in the same BEGIN is no second finding",
    "BEGIN; ALTER TABLE t ADD CONSTRAINT c CHECK (a > 0); ALTER TABLE t VALIDATE CONSTRAINT c; COMMIT;",
    ["constraint-missing-not-valid: ADD CONSTRAINT c without NOT VALID on t"],
  ],
  [
    "DETACH PARTITION on PostgreSQL 14 has CONCURRENTLY",
    "ALTER TABLE m DETACH PARTITION m1;",
    ["detach-partition-without-concurrently: DETACH PARTITION m1 from m without CONCURRENTLY"],
    { pgVersion: 14 },
  ],
  [
    "backfill: a column added with a DEFAULT is not all NULL; DEFAULT NULL or only a CHECK is",
    "ALTER TABLE t ADD COLUMN c int DEFAULT 0, ADD COLUMN d int DEFAULT NULL, ADD COLUMN e int CHECK (e > 0); UPDATE t SET c = 1 WHERE c IS NULL; UPDATE t SET d = 1 WHERE d IS NULL; UPDATE t SET e = 1 WHERE e IS NULL;",
    [
      "backfill-in-one-statement: UPDATE t WHERE d IS NULL right after ADD COLUMN d: every row, in one statement",
      "backfill-in-one-statement: UPDATE t WHERE e IS NULL right after ADD COLUMN e: every row, in one statement",
    ],
  ],
  [
    "only ADD COLUMN adds a column (no command adds one named undefined)",
    'ALTER TABLE t DROP COLUMN x; UPDATE t SET a = 1 WHERE "undefined" IS NULL;',
    ["drop-column: DROP COLUMN x on t"],
  ],
  [
    "serial, serial4 fill the rows themselves; myserial or serialnumber (a domain) do not",
    "ALTER TABLE t ADD COLUMN a serial NOT NULL, ADD COLUMN b serial4 NOT NULL, ADD COLUMN c myserial NOT NULL, ADD COLUMN d serialnumber NOT NULL;",
    [
      "add-column-rewrites-table: ADD COLUMN a of type serial on t",
      "add-column-rewrites-table: ADD COLUMN b of type serial4 on t",
      "add-column-not-null-without-default: ADD COLUMN c NOT NULL without DEFAULT on t",
      "add-column-not-null-without-default: ADD COLUMN d NOT NULL without DEFAULT on t",
    ],
  ],
  [
    "ALTER DOMAIN that adds no constraint",
    "ALTER DOMAIN d DROP CONSTRAINT c; ALTER DOMAIN d DROP DEFAULT;",
    [],
  ],
  [
    "REINDEX: another option is not CONCURRENTLY; a database named by the connection",
    "REINDEX (VERBOSE) TABLE t; REINDEX DATABASE;",
    [
      "reindex-without-concurrently: REINDEX t without CONCURRENTLY",
      "reindex-without-concurrently: REINDEX without CONCURRENTLY",
    ],
  ],
  [
    "REINDEX on PostgreSQL 12 has CONCURRENTLY",
    "REINDEX TABLE t;",
    ["reindex-without-concurrently: REINDEX t without CONCURRENTLY"],
    { pgVersion: 12 },
  ],
];

describe("checkStatement at its edges", () => {
  for (const [name, sql, want, config] of CASES)
    it(name, async () => {
      assert.deepEqual(await lint(sql, config), want);
    });
});

describe("checkStatement with only the context it requires", () => {
  it("reads no optional part of the context it was not given", async () => {
    const { loadModule, parseSync } = await import("libpg-query");
    await loadModule();
    const ctx = { inTransaction: false, createdTables: new Set<string>() };
    const check = (sql: string) =>
      ((parseSync(sql) as { stmts: Array<{ stmt: Record<string, unknown> }> }).stmts ?? []).flatMap((r) =>
        checkStatement(r.stmt, ctx).map((f) => f.rule),
      );
    assert.deepEqual(check("ALTER TABLE t ADD CONSTRAINT c CHECK (a IS NOT NULL) NOT VALID"), []);
    assert.deepEqual(check("ALTER TABLE t VALIDATE CONSTRAINT c"), []);
    assert.deepEqual(check("ALTER TABLE t ALTER COLUMN a SET NOT NULL"), ["set-not-null"]);
    assert.deepEqual(check("ALTER TABLE t ADD COLUMN b int"), []);
    assert.deepEqual(check("UPDATE t SET b = 1 WHERE b IS NULL"), []);
    assert.deepEqual(checkStatement({}, ctx), []);
    // A CHECK validated at once, and a NOT VALID one inside a transaction the caller names.
    assert.deepEqual(check("ALTER TABLE t ADD CONSTRAINT c CHECK (a IS NOT NULL)"), [
      "constraint-missing-not-valid",
    ]);
    const inTx = { inTransaction: true, createdTables: new Set<string>(), txKey: "tx1" };
    const [notValid] = (
      parseSync("ALTER TABLE t ADD CONSTRAINT d CHECK (a > 0) NOT VALID") as {
        stmts: Array<{ stmt: Record<string, unknown> }>;
      }
    ).stmts;
    assert.deepEqual(checkStatement(notValid.stmt, inTx), []);
    // With the NOT NULL checks but no proven set: a VALIDATE proves nothing it could not record.
    const checks = { ...ctx, notNullChecks: new Map([["t.c", "t.a"]]) };
    const [validate] = (
      parseSync("ALTER TABLE t VALIDATE CONSTRAINT c") as {
        stmts: Array<{ stmt: Record<string, unknown> }>;
      }
    ).stmts;
    assert.deepEqual(checkStatement(validate.stmt, checks), []);
  });
});
