// Issue 22 (s11): lintSql's edges that its first mutation run left open: where an allow comment reaches,
// the line of a statement on the last line or after a blank first line, what sets the timeouts, DO
// blocks in other languages or in '...' quotes. Each case is the exact list a user reads.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { lintSql, type LintConfig } from "../../../src/core/migrations/lint";

const lint = async (sql: string, config: LintConfig = {}) =>
  (await lintSql(sql, "x.sql", { timeoutsSetByRunner: true, ...config })).map(
    (f) => `${f.line} ${f.rule}: ${f.message}`,
  );

const CASES: Array<[string, string, string[], LintConfig?]> = [
  [
    "a file that starts with a blank line: every line number counts it",
    "\nDROP TABLE a;\n\nDROP TABLE b;",
    ["2 drop-table: DROP TABLE a", "4 drop-table: DROP TABLE b"],
  ],
  [
    "an allow comment at the end of a later line does not reach an earlier statement",
    "DROP TABLE a;\nDROP TABLE b; -- safe-deploy: allow drop-table\n",
    ["1 drop-table: DROP TABLE a"],
  ],
  [
    "an allow comment at the end of the file's last line, without a newline, reaches its statement",
    "TRUNCATE t;\nDROP TABLE a; -- safe-deploy: allow drop-table",
    ["1 truncate: TRUNCATE t"],
  ],
  [
    "on the last line without a newline, a second statement is not allowed by the comment above the first",
    "-- safe-deploy: allow drop-table\nDROP TABLE x; DROP TABLE a;",
    ["2 drop-table: DROP TABLE a"],
  ],
  [
    "on the last line without a newline, a second statement is named at that line",
    "SELECT 1;\nSELECT 2; DROP TABLE a;",
    ["2 drop-table: DROP TABLE a"],
  ],
  [
    "--Up Migration without a space still marks the file the runner wraps",
    "--Up Migration\nBEGIN;\nCOMMIT;\n",
    [
      "2 transaction-nesting: BEGIN inside the transaction the runner wraps this file in",
      "3 transaction-nesting: COMMIT ends the transaction the runner wraps this file in: the rest runs without one",
    ],
  ],
  [
    "a COMMIT in a file nobody wraps ends nothing: no transaction-nesting",
    "COMMIT;\nDROP TABLE a;",
    ["2 drop-table: DROP TABLE a"],
  ],
  [
    "PREPARE statements named lock_timeout and statement_timeout set no timeout",
    "PREPARE lock_timeout AS SELECT 1;\nPREPARE statement_timeout AS SELECT 1;\nALTER TABLE a ADD COLUMN b int;",
    ["3 require-timeouts: AlterTable before any SET lock_timeout / statement_timeout"],
    { timeoutsSetByRunner: false },
  ],
  [
    "DROP INDEX CONCURRENTLY still waits for its lock: it wants the timeouts (only CREATE INDEX CONCURRENTLY is left out)",
    "DROP INDEX CONCURRENTLY i;",
    ["1 require-timeouts: Drop before any SET lock_timeout / statement_timeout"],
    { timeoutsSetByRunner: false },
  ],
  ["a DO block in another language is not read as SQL", "DO LANGUAGE plperl $$ DROP TABLE a $$;", []],
  [
    "a DO body in '...' with '' escapes is read (before: skipped, its DROP passed), named at the DO's line",
    "SELECT 1;\nDO 'BEGIN\n  DROP TABLE a;\n  RAISE NOTICE ''done'';\nEND';",
    ["2 drop-table: in DO block: DROP TABLE a"],
  ],
  [
    "EXECUTE of a built string: the message is the statement without its trailing blanks",
    "DO $$ BEGIN EXECUTE 'x' || y   \n ; END $$;",
    ["1 unchecked-dynamic-sql: in DO block: EXECUTE 'x' || y"],
  ],
  [
    "EXECUTE of a literal that starts with blank lines: named at the EXECUTE's line (before: one line below)",
    "DO $$ BEGIN\n  EXECUTE '\n\n\n\n\n\n\n\n\n\nDROP TABLE b';\nEND $$;",
    ["2 drop-table: in DO block: DROP TABLE b"],
  ],
  [
    "a file that starts with a NUL byte: the parser's error has no position, the finding is at line 1 (not a TypeError)",
    "\u0000DROP TABLE a;",
    ["1 parse-error: Failed to allocate memory for parse result"],
  ],
];

describe("lintSql edges (s11)", () => {
  for (const [name, sql, want, config] of CASES)
    it(name, async () => {
      assert.deepEqual(await lint(sql, config), want);
    });

  it("a parse error's fingerprint keeps where the blanks were: SELEC 2 and SELEC2 differ, one blank or three do not", async () => {
    const one = async (sql: string) =>
      (await lintSql(sql, "x.sql", { timeoutsSetByRunner: true }))[0].fingerprint;
    assert.equal(await one("SELEC   2;"), await one("SELEC 2;"));
    assert.notEqual(await one("SELEC2;"), await one("SELEC 2;"));
  });
});
