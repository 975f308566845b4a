// Issue 22 (s11): require-timeouts for every statement kind that locks an existing table (lint.ts's
// LOCKING set): one name missing there and that statement ran without timeouts, unwarned.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { lintSql, type LintConfig } from "../../../src/core/migrations/lint";

const lint = async (sql: string, config: LintConfig = {}) =>
  (await lintSql(sql, "x.sql", { timeoutsSetByRunner: true, ...config })).map(
    (f) => `${f.line} ${f.rule}: ${f.message}`,
  );

describe("require-timeouts by statement kind", () => {
  it("require-timeouts: each statement that locks an existing table wants the timeouts first; reads and new objects do not", async () => {
    const locking: Array<[string, string]> = [
      ["ALTER TABLE a ADD COLUMN b int", "AlterTable"],
      ["CREATE INDEX i ON a (b)", "Index"],
      ["ALTER TABLE a RENAME TO b", "Rename"],
      ["DROP TABLE a", "Drop"],
      ["TRUNCATE a", "Truncate"],
      ["LOCK TABLE a", "Lock"],
      ["COMMENT ON TABLE a IS 'x'", "Comment"],
      ["CREATE TYPE e AS ENUM ('a')", "CreateEnum"],
      ["CREATE TYPE c AS (x int)", "CompositeType"],
      ["CREATE TYPE r AS RANGE (subtype = int4)", "CreateRange"],
      ["ALTER TYPE e ADD VALUE 'b'", "AlterEnum"],
      ["ALTER DOMAIN d SET NOT NULL", "AlterDomain"],
      ["REINDEX TABLE a", "Reindex"],
      ["VACUUM a", "Vacuum"],
      ["CLUSTER a", "Cluster"],
      ["CREATE TRIGGER t BEFORE INSERT ON a FOR EACH ROW EXECUTE FUNCTION f()", "CreateTrig"],
      ["ALTER TABLE a SET SCHEMA s", "AlterObjectSchema"],
    ];
    for (const [sql, kind] of locking)
      assert.deepEqual(
        (await lint(sql, { timeoutsSetByRunner: false })).filter((f) => f.includes("require-timeouts")),
        [`1 require-timeouts: ${kind} before any SET lock_timeout / statement_timeout`],
        sql,
      );
    for (const sql of [
      "INSERT INTO a VALUES (1)",
      "SELECT 1",
      "CREATE TABLE n (id int PRIMARY KEY)",
      "CREATE INDEX CONCURRENTLY i ON a (b)",
    ])
      assert.deepEqual(await lint(sql, { timeoutsSetByRunner: false }), [], sql);
  });

  it("require-timeouts: RESET, TO DEFAULT and a 0 turn a timeout off again, so the statement after them is reported", async () => {
    const warned = async (sql: string) =>
      (await lint(sql, { timeoutsSetByRunner: false })).filter((f) => f.includes("require-timeouts"));
    const set = "SET lock_timeout = '5s'; SET statement_timeout = '5min';";
    assert.deepEqual(await warned(`${set}\nALTER TABLE a ADD COLUMN b int;`), []);
    assert.deepEqual(
      await warned(`SET lock_timeout = 1000; SET statement_timeout = '1.5min';\nDROP TABLE a;`),
      [],
    );
    for (const [off, missing] of [
      ["RESET lock_timeout;", "lock_timeout"],
      ["SET lock_timeout TO DEFAULT;", "lock_timeout"],
      ["SET lock_timeout = 0;", "lock_timeout"],
      ["SET LOCAL statement_timeout = '0ms';", "statement_timeout"],
      ["SET statement_timeout = '0';", "statement_timeout"],
    ])
      assert.deepEqual(
        await warned(`${set}\n${off}\nALTER TABLE a ADD COLUMN b int;`),
        [`3 require-timeouts: AlterTable before any SET ${missing}`],
        off,
      );
  });

  it("only a SET of lock_timeout or statement_timeout counts: another setting set to 0 is not asked for, a PREPARE named lock_timeout unsets nothing", async () => {
    assert.deepEqual(
      await lint("SET work_mem = 0;\nALTER TABLE a ADD COLUMN b int;", { timeoutsSetByRunner: false }),
      ["2 require-timeouts: AlterTable before any SET lock_timeout / statement_timeout"],
    );
    assert.deepEqual(
      await lint(
        "SET lock_timeout = '1s';\nSET statement_timeout = '5s';\nPREPARE lock_timeout AS SELECT 1;\nALTER TABLE a ADD COLUMN b int;",
        { timeoutsSetByRunner: false },
      ),
      [],
    );
  });
});
