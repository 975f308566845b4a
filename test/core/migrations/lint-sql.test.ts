// Issue 22: what lintSql adds around the rules: allow comments and where they reach, the line a
// finding names, transactions opened and closed, require-timeouts, tables created here, DO blocks,
// fingerprints and the statement count. Each case is the exact list a user reads.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { lintSql, newLintState, type LintConfig } from "../../../src/core/migrations/lint";

const lint = async (sql: string, config: LintConfig = {}) =>
  (await lintSql(sql, "x.sql", { timeoutsSetByRunner: true, ...config })).map(
    (f) => `${f.line} ${f.rule}: ${f.message}`,
  );

const CASES: Array<[string, string, string[], LintConfig?]> = [
  [
    "an allow comment reaches its statement from above, at the line's end or inline, not the next one",
    "-- safe-deploy: allow drop-table\nDROP TABLE a;\nDROP TABLE b; -- safe-deploy: allow drop-table\nDROP TABLE c;\n/* safe-deploy: allow truncate */ TRUNCATE d; DROP TABLE e;\n",
    ["4 drop-table: DROP TABLE c", "5 drop-table: DROP TABLE e"],
  ],
  [
    "the previous statement's trailing allow is its own",
    "DROP TABLE a; -- safe-deploy: allow drop-table\nDROP TABLE b;\n",
    ["2 drop-table: DROP TABLE b"],
  ],
  [
    "the former id require-lock-timeout still allows require-timeouts",
    "-- safe-deploy: allow require-lock-timeout\nALTER TABLE a ADD COLUMN b int;\n",
    [],
    { timeoutsSetByRunner: false },
  ],
  [
    "the line is the statement's first, past comments; multibyte names do not shift it",
    "-- head\n\n/* block\n   comment */\n  -- more\n  DROP TABLE ñandú; DROP TABLE €x;\nDROP TABLE y;",
    ["6 drop-table: DROP TABLE ñandú", "6 drop-table: DROP TABLE €x", "7 drop-table: DROP TABLE y"],
  ],
  [
    "a parse error names the line the parser stopped at, after multibyte text",
    "-- ñ €\nSELECT 1;\nSELEC 2;",
    ['3 parse-error: syntax error at or near "SELEC"'],
  ],
  [
    "a parse error at the first character is line 1",
    "SELEC 2;",
    ['1 parse-error: syntax error at or near "SELEC"'],
  ],
  [
    "BEGIN and COMMIT in a file the runner wraps; after COMMIT, CONCURRENTLY is outside any transaction",
    "-- Up Migration\nBEGIN;\nCOMMIT;\nCREATE INDEX CONCURRENTLY i ON t (a);\n",
    [
      "2 transaction-nesting: BEGIN inside the transaction the runner wraps this file in",
      "3 transaction-nesting: COMMIT ends the transaction the runner wraps this file in: the rest runs without one",
    ],
  ],
  [
    "ROLLBACK in a file the runner wraps",
    "-- Up Migration\nROLLBACK;\n",
    [
      "2 transaction-nesting: ROLLBACK ends the transaction the runner wraps this file in: the rest runs without one",
    ],
  ],
  [
    "START TRANSACTION opens one; BEGIN inside it; a BEGIN never committed is named at its line",
    "START TRANSACTION;\nBEGIN;\nCOMMIT;\nBEGIN;\nDROP TABLE x;\n",
    [
      "2 transaction-nesting: BEGIN inside an open transaction",
      "5 drop-table: DROP TABLE x",
      "4 uncommitted-transaction: BEGIN without a COMMIT before the end of the file",
    ],
  ],
  [
    "inTransaction from the caller (a JS migration without noTransaction) wraps the file",
    "CREATE INDEX CONCURRENTLY i ON t (a);",
    ["1 concurrently-in-transaction: CREATE INDEX CONCURRENTLY inside a transaction"],
    { inTransaction: true },
  ],
  [
    "require-timeouts names both SETs when neither came first",
    "ALTER TABLE a ADD COLUMN b int;",
    ["1 require-timeouts: AlterTable before any SET lock_timeout / statement_timeout"],
    { timeoutsSetByRunner: false },
  ],
  [
    "require-timeouts names the SET still missing",
    "SET lock_timeout = '1s';\nALTER TABLE a ADD COLUMN b int;",
    ["2 require-timeouts: AlterTable before any SET statement_timeout"],
    { timeoutsSetByRunner: false },
  ],
  [
    "require-timeouts waits for a statement that locks an existing table (not CONCURRENTLY, INSERT or a new table)",
    "SET statement_timeout = '1s';\nCREATE INDEX CONCURRENTLY i ON a (b);\nINSERT INTO a VALUES (1);\nCREATE TABLE n (id int PRIMARY KEY);\nALTER TABLE n ADD COLUMN c int;\nTRUNCATE n;\nCOMMENT ON TABLE a IS 'x';\nALTER TABLE a ADD COLUMN d int;",
    ["7 require-timeouts: Comment before any SET lock_timeout"],
    { timeoutsSetByRunner: false },
  ],
  [
    "CREATE TABLE AS and SELECT INTO create tables; IF NOT EXISTS may find an old one",
    "CREATE TABLE c1 AS SELECT 1 AS id; SELECT 1 AS id INTO c2; CREATE TABLE IF NOT EXISTS c3 (id int PRIMARY KEY); CREATE TABLE IF NOT EXISTS c4 AS SELECT 1; DROP TABLE c1, c2, c3, c4;",
    ["1 drop-table: DROP TABLE c3, c4"],
  ],
  [
    "DO blocks: each statement at its line, EXECUTE of a built string cut at 60 characters, other languages and non-SQL skipped, BEGIN/COMMIT inside are PL/pgSQL",
    "DO $$ BEGIN\n  DROP TABLE a;\n  BEGIN\n    EXECUTE 'x' || y || 'a very long string that goes on and on beyond sixty characters';\n  END;\n  NOT SQL AT ALL;\nEND $$;\nDO LANGUAGE plpgsql $$ BEGIN TRUNCATE b; END $$;\nDO $$ SELECT 1 $$ LANGUAGE sql;\nDO $x$ BEGIN COMMIT; UPDATE t SET a = 1; END $x$;",
    [
      "2 drop-table: in DO block: DROP TABLE a",
      "4 unchecked-dynamic-sql: in DO block: EXECUTE 'x' || y || 'a very long string that goes on and on ",
      "8 truncate: in DO block: TRUNCATE b",
      "10 update-without-where: in DO block: UPDATE t without WHERE",
    ],
  ],
];

describe("lintSql around the rules", () => {
  for (const [name, sql, want, config] of CASES)
    it(name, async () => {
      assert.deepEqual(await lint(sql, config), want);
    });

  it("counts the statements it read, a DO block's inner ones included (0 means nothing was checked)", async () => {
    const state = newLintState();
    await lintSql(
      "SELECT 1; DO $$ BEGIN DELETE FROM t WHERE a = 1; UPDATE t SET a = 2 WHERE a = 1; END $$;",
      "a.sql",
      {},
      state,
    );
    assert.equal(state.statements, 3);
    await lintSql("SELECT 2;", "b.sql", {}, state);
    assert.equal(state.statements, 4);
    await lintSql("SELEC", "c.sql", {}, state);
    assert.equal(state.statements, 4);
  });

  it("fingerprints: the same statement anywhere and however formatted, another one differs; a parse error's by its text", async () => {
    const one = async (sql: string) =>
      (await lintSql(sql, "x.sql", { timeoutsSetByRunner: true }))[0].fingerprint;
    const drop = await one("DROP TABLE a;");
    assert.match(drop ?? "", /^[0-9a-f]{16}$/);
    assert.equal(await one("-- moved\n\n  drop   table\n a ;"), drop);
    assert.notEqual(await one("DROP TABLE b;"), drop);
    // The uncommitted BEGIN carries the BEGIN's own fingerprint, as its nesting finding does.
    const begin = (await lintSql("BEGIN; BEGIN;", "x.sql", { timeoutsSetByRunner: true })).map(
      (f) => f.fingerprint,
    );
    assert.equal(begin.length, 2);
    assert.equal(begin[0], begin[1]);
    assert.notEqual(begin[0], drop);
    const broken = await one("SELEC  2;\n");
    assert.match(broken ?? "", /^[0-9a-f]{16}$/);
    assert.equal(await one("\nSELEC 2;"), broken);
    assert.notEqual(await one("SELEC 3;"), broken);
  });
});
