// Issue 22: the helpers at the top of lint.ts, through what a user sees: the PostgreSQL version read from
// a database image, the part of a node-pg-migrate file that is linted, the allow comments. In process.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  allowedRules,
  lintSql,
  migrationName,
  pgVersionFromImage,
  upPart,
  type LintConfig,
} from "../../../src/core/migrations/lint";

const lint = async (sql: string, config: LintConfig = {}) =>
  (await lintSql(sql, "x.sql", { timeoutsSetByRunner: true, ...config })).map(
    (f) => `${f.line} ${f.rule}: ${f.message}`,
  );

const DIGEST = "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

describe("pgVersionFromImage", () => {
  it("reads the tag's leading major version, whatever the registry, path or digest around it", () => {
    const cases: Array<[string, number | undefined]> = [
      ["postgres:16", 16],
      ["postgres:9", 9],
      ["postgres:99-alpine", 99],
      [`postgres:17@${DIGEST}`, 17],
      ["localhost:5000/postgres:15", 15],
      [`localhost:5000/team/postgres:14.2@${DIGEST}`, 14],
      // A digest is no tag: its hex says nothing about the version (it read as 9 here, then 12).
      [`postgres@${DIGEST}`, undefined],
      [`postgres@sha256:12${DIGEST.slice(9)}`, undefined],
      [`localhost:5000/postgres@${DIGEST}`, undefined],
      // Out of range or not a leading number.
      ["postgres:8.4", undefined],
      ["postgres:100", undefined],
      ["postgres:release-16", undefined],
      ["postgres", undefined],
      ["postgres:", undefined],
    ];
    for (const [image, want] of cases) assert.equal(pgVersionFromImage(image), want, image);
  });
});

describe("upPart: what of a node-pg-migrate file is linted", () => {
  it("blanks what precedes the Up part (lines kept), cuts the Down part, leaves a file without markers as is", () => {
    const cases: Array<[string, string]> = [
      ["-- head\n-- Up Migration\nA;\n-- Down Migration\nB;\n", "       \n-- Up Migration\nA;\n"],
      // Down only: everything before it runs on deploy.
      ["A;\n-- Down Migration\nB;\n", "A;\n"],
      // A Down part written first is not the end of the Up part.
      ["-- Down Migration\nB;\n-- Up Migration\nA;\n", "                 \n  \n-- Up Migration\nA;\n"],
      ["x\n--up migration", " \n--up migration"],
      ["x\n--  UP MIGRATION (generated)\nA;", " \n--  UP MIGRATION (generated)\nA;"],
      // Not a marker: mid-line, or another word.
      ["SELECT 1; -- Up Migration\nA;", "SELECT 1; -- Up Migration\nA;"],
      ["x\n-- Up Migrations follow\nA;", "x\n-- Up Migrations follow\nA;"],
      ["A;\n-- Down Migrationsx\nB;", "A;\n-- Down Migrationsx\nB;"],
      ["A; -- Down Migration\nB;", "A; -- Down Migration\nB;"],
      ["A;\n--Down Migration\nB;", "A;\n"],
      ["C;", "C;"],
    ];
    for (const [sql, want] of cases) assert.equal(upPart(sql), want, JSON.stringify(sql));
  });

  it("a finding of the Up part keeps its line; the Down part's statements are not judged", async () => {
    assert.deepEqual(
      await lint("DROP TABLE before_up;\n-- Up Migration\nTRUNCATE a;\n-- Down Migration\nDROP TABLE a;\n"),
      ["3 truncate: TRUNCATE a"],
    );
  });
});

describe("allow comments", () => {
  it("allowedRules: any case, blanks between, one rule id per comment, lowercased", () => {
    assert.deepEqual(
      [
        ...allowedRules(
          "-- SAFE-DEPLOY:  ALLOW\tDROP-TABLE, truncate\n--safe-deploy:allow x2 -- safe-deploy: allow \t vacuum-full",
        ),
      ],
      ["drop-table", "x2", "vacuum-full"],
    );
    assert.deepEqual([...allowedRules("-- safe-deploy: allow")], []);
    assert.deepEqual([...allowedRules("-- safe-deploy allow truncate")], []);
  });

  it("an allow comment in capitals silences its rule on that statement only", async () => {
    assert.deepEqual(await lint("-- SAFE-DEPLOY: ALLOW TRUNCATE\nTRUNCATE a;\nTRUNCATE b;"), [
      "3 truncate: TRUNCATE b",
    ]);
  });
});

describe("what a SET leaves in force", () => {
  it("a timeout given as a decimal number: 0.0 turns it off, 1.5 (ms) is a limit", async () => {
    const warned = async (sql: string) =>
      (await lint(sql, { timeoutsSetByRunner: false })).filter((f) => f.includes("require-timeouts"));
    const set = "SET lock_timeout = 1.5; SET statement_timeout = 2.5;";
    assert.deepEqual(await warned(`${set}\nALTER TABLE a ADD COLUMN b int;`), []);
    assert.deepEqual(await warned(`${set}\nSET statement_timeout = 0.0;\nALTER TABLE a ADD COLUMN b int;`), [
      "3 require-timeouts: AlterTable before any SET statement_timeout",
    ]);
  });
});

describe("tables created in the file", () => {
  it("public.t, pg_temp.t and t are one table; a schema or name only starting with public is another", async () => {
    assert.deepEqual(
      await lint(
        "CREATE TABLE public.a (id int PRIMARY KEY); CREATE INDEX ia ON a (id);\n" +
          "CREATE TEMP TABLE pg_temp.b (id int PRIMARY KEY); CREATE INDEX ib ON public.b (id);\n" +
          "CREATE TABLE publicx.c (id int PRIMARY KEY); CREATE INDEX ic ON c (id);\n" +
          'CREATE TABLE s."public.d" (id int PRIMARY KEY); CREATE INDEX id ON s.d (id);',
      ),
      [
        "3 create-index-without-concurrently: CREATE INDEX ic on c without CONCURRENTLY",
        "4 create-index-without-concurrently: CREATE INDEX id on s.d without CONCURRENTLY",
      ],
    );
  });
});

describe("NULL tests on an expression or a qualified column", () => {
  it("a CHECK (t.a IS NOT NULL) proves a; IS NULL or one on an expression proves nothing (PostgreSQL 12+)", async () => {
    const setNotNull = (check: string) =>
      lint(
        `ALTER TABLE t ADD CONSTRAINT c CHECK (${check}) NOT VALID;\nALTER TABLE t VALIDATE CONSTRAINT c;\n` +
          "ALTER TABLE t ALTER COLUMN a SET NOT NULL;",
        { pgVersion: 12 },
      );
    assert.deepEqual(await setNotNull("t.a IS NOT NULL"), []);
    assert.deepEqual(await setNotNull("a IS NULL"), ["3 set-not-null: SET NOT NULL on t.a"]);
    assert.deepEqual(await setNotNull("(a + b) IS NOT NULL"), ["3 set-not-null: SET NOT NULL on t.a"]);
  });

  it("a backfill WHERE t.c IS NULL is one; (c + 1) IS NULL, alone or OR-ed, is not lint's to judge", async () => {
    assert.deepEqual(
      await lint(
        "ALTER TABLE t ADD COLUMN c int;\nUPDATE t SET c = 1 WHERE (c + 1) IS NULL;\n" +
          "UPDATE t SET c = 1 WHERE t.c IS NULL;\nUPDATE t SET c = 1 WHERE c IS NULL OR (c + 1) IS NULL;",
      ),
      [
        "3 backfill-in-one-statement: UPDATE t WHERE c IS NULL right after ADD COLUMN c: every row, in one statement",
      ],
    );
  });
});

describe("why an added column rewrites the table", () => {
  it("before PostgreSQL 11 only a DEFAULT other than NULL rewrites; from 11 a constant does not", async () => {
    const sql =
      "ALTER TABLE t ADD COLUMN a int CHECK (a > 0), ADD COLUMN b int DEFAULT NULL, ADD COLUMN c int DEFAULT 0;";
    assert.deepEqual(await lint(sql, { pgVersion: 10 }), [
      "1 add-column-rewrites-table: ADD COLUMN c with a DEFAULT (PostgreSQL 10 < 11 rewrites for any DEFAULT) on t",
    ]);
    assert.deepEqual(await lint(sql, { pgVersion: 11 }), []);
  });

  it("a subquery among a safe function's arguments is still found", async () => {
    assert.deepEqual(await lint("ALTER TABLE t ADD COLUMN c text DEFAULT concat('a', (SELECT 'b'));"), [
      "1 add-column-rewrites-table: ADD COLUMN c with a subquery in DEFAULT, which PostgreSQL rejects on t",
    ]);
  });
});

describe("statements whose tree holds positions or other output names", () => {
  it("a fingerprint ignores where the statement's table name stands (TRUNCATE's RangeVar has a location)", async () => {
    const print = async (sql: string) =>
      (await lintSql(sql, "x.sql", { timeoutsSetByRunner: true }))[0].fingerprint;
    assert.equal(await print("-- moved\n\nTRUNCATE    a;"), await print("TRUNCATE a;"));
  });

  it("views from VALUES or a UNION, and a column list renaming a SELECT's outputs, are not duplicates", async () => {
    assert.deepEqual(
      await lint(
        "CREATE VIEW v AS VALUES (1, 2);\nCREATE VIEW w AS SELECT 1 AS a UNION SELECT 2;\n" +
          "CREATE VIEW x (a, b) AS SELECT c, a FROM t;",
      ),
      [],
    );
  });
});

describe("migrationName", () => {
  it("only a directory's migration.sql is Prisma's: migration.sql.sql beside it keeps its path", () => {
    assert.equal(migrationName("20260101000000_users/migration.sql"), "20260101000000_users");
    assert.equal(
      migrationName("20260101000000_users/migration.sql.sql"),
      "20260101000000_users/migration.sql.sql",
    );
  });
});
