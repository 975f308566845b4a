// Issue 22: the message of every rule, word for word. The fixtures only check rule@line, so a finding
// that named the wrong table, column or version (or none) passed; these are what a user reads.
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, it } from "node:test";
import { lintSql, RULES, type LintConfig } from "../../../src/core/migrations/lint";

const lint = async (sql: string, config: LintConfig = {}) =>
  (await lintSql(sql, "x.sql", { timeoutsSetByRunner: true, ...config })).map(
    (f) => `${f.rule}: ${f.message}`,
  );

const CASES: Array<[string, string, string[], LintConfig?]> = [
  [
    "a table without a key",
    "CREATE TABLE s.t (a int);",
    ["table-without-primary-key: CREATE TABLE s.t without a primary key"],
  ],
  [
    "a key on the column or the table; temporary tables and partitions publish nothing",
    "CREATE TABLE k (id int PRIMARY KEY); CREATE TABLE k2 (id int, PRIMARY KEY (id)); CREATE TEMP TABLE tt (a int); CREATE TABLE p1 PARTITION OF p FOR VALUES IN (1);",
    [],
  ],
  [
    "DROP INDEX CONCURRENTLY: refused inside BEGIN, fine after COMMIT",
    "BEGIN; DROP INDEX CONCURRENTLY s.i; COMMIT; DROP INDEX CONCURRENTLY j;",
    ["concurrently-in-transaction: DROP INDEX CONCURRENTLY inside a transaction"],
  ],
  [
    "renames",
    "ALTER TABLE s.t RENAME COLUMN a TO b; ALTER TABLE s.t RENAME TO u;",
    ["rename-column: RENAME COLUMN a on s.t", "rename-table: RENAME TABLE s.t"],
  ],
  [
    "ALTER TABLE's column commands, each named",
    "ALTER TABLE t DROP COLUMN c, ALTER COLUMN d TYPE bigint, ALTER COLUMN e DROP NOT NULL, ALTER COLUMN f SET NOT NULL;",
    [
      "drop-column: DROP COLUMN c on t",
      "change-column-type: ALTER COLUMN d TYPE on t",
      "drop-not-null: ALTER COLUMN e DROP NOT NULL on t",
      "set-not-null: SET NOT NULL on t.f",
    ],
  ],
  [
    "SET NOT NULL before PostgreSQL 12",
    "ALTER TABLE t ALTER COLUMN f SET NOT NULL;",
    ["set-not-null: SET NOT NULL on t.f (PostgreSQL 11 < 12 scans even with a validated CHECK)"],
    { pgVersion: 11 },
  ],
  [
    "VALIDATE in the BEGIN that added the constraint NOT VALID",
    "BEGIN; ALTER TABLE t ADD CONSTRAINT c CHECK (a > 0) NOT VALID; ALTER TABLE t VALIDATE CONSTRAINT c; COMMIT;",
    ["validate-in-same-transaction: VALIDATE CONSTRAINT c on t in the transaction that added it NOT VALID"],
  ],
  [
    "DETACH PARTITION without CONCURRENTLY, and with it inside BEGIN",
    "ALTER TABLE m DETACH PARTITION s.m1; BEGIN; ALTER TABLE m DETACH PARTITION m2 CONCURRENTLY; COMMIT;",
    [
      "detach-partition-without-concurrently: DETACH PARTITION s.m1 from m without CONCURRENTLY",
      "concurrently-in-transaction: DETACH PARTITION CONCURRENTLY inside a transaction",
    ],
  ],
  [
    "DETACH PARTITION before PostgreSQL 14",
    "ALTER TABLE m DETACH PARTITION m1;",
    [
      "detach-partition-without-concurrently: DETACH PARTITION m1 from m (PostgreSQL 13 has no CONCURRENTLY: 14+)",
    ],
    { pgVersion: 13 },
  ],
  [
    "ADD COLUMN: NOT NULL without a value, and each reason a column rewrites the table",
    "ALTER TABLE t ADD COLUMN a int NOT NULL, ADD COLUMN b bigserial, ADD COLUMN c int GENERATED ALWAYS AS IDENTITY, ADD COLUMN d int GENERATED ALWAYS AS (a + 1) STORED, ADD COLUMN e float DEFAULT random(), ADD COLUMN f int DEFAULT (SELECT 1);",
    [
      "add-column-not-null-without-default: ADD COLUMN a NOT NULL without DEFAULT on t",
      "add-column-rewrites-table: ADD COLUMN b of type bigserial on t",
      "add-column-rewrites-table: ADD COLUMN c GENERATED AS IDENTITY on t",
      "add-column-rewrites-table: ADD COLUMN d GENERATED ALWAYS AS (...) STORED on t",
      "add-column-rewrites-table: ADD COLUMN e with DEFAULT random(), not known to be immutable or stable on t",
      "add-column-rewrites-table: ADD COLUMN f with a subquery in DEFAULT, which PostgreSQL rejects on t",
    ],
  ],
  [
    "a constant DEFAULT before PostgreSQL 11",
    "ALTER TABLE t ADD COLUMN a int DEFAULT 0;",
    [
      "add-column-rewrites-table: ADD COLUMN a with a DEFAULT (PostgreSQL 10 < 11 rewrites for any DEFAULT) on t",
    ],
    { pgVersion: 10 },
  ],
  [
    "ADD COLUMN with an inline index or foreign key",
    "ALTER TABLE t ADD COLUMN a int UNIQUE, ADD COLUMN b int PRIMARY KEY DEFAULT 0, ADD COLUMN c int REFERENCES u (id);",
    [
      "add-column-inline-index: ADD COLUMN a UNIQUE on t",
      "add-column-inline-index: ADD COLUMN b PRIMARY KEY on t",
      "add-column-inline-foreign-key: ADD COLUMN c REFERENCES on t",
    ],
  ],
  [
    "ADD CONSTRAINT, named or not; USING INDEX builds nothing",
    "ALTER TABLE t ADD CONSTRAINT ck CHECK (a > 0), ADD CHECK (b > 0), ADD FOREIGN KEY (c) REFERENCES u (id), ADD UNIQUE (a), ADD PRIMARY KEY (a), ADD CONSTRAINT pk UNIQUE USING INDEX i;",
    [
      "constraint-missing-not-valid: ADD CONSTRAINT ck without NOT VALID on t",
      "constraint-missing-not-valid: ADD CONSTRAINT without NOT VALID on t",
      "constraint-missing-not-valid: ADD CONSTRAINT without NOT VALID on t",
      "add-unique-constraint: ADD UNIQUE constraint on t",
      "add-unique-constraint: ADD PRIMARY KEY constraint on t",
    ],
  ],
  [
    "ALTER DOMAIN ADD CONSTRAINT, and NOT VALID; SET NOT NULL (no NOT VALID form), DROP NOT NULL",
    "ALTER DOMAIN s.d ADD CONSTRAINT c CHECK (VALUE > 0); ALTER DOMAIN d ADD CONSTRAINT c CHECK (VALUE > 0) NOT VALID; ALTER DOMAIN s.d SET NOT NULL; ALTER DOMAIN d DROP NOT NULL;",
    [
      "alter-domain-add-constraint: ALTER DOMAIN s.d ADD CONSTRAINT without NOT VALID",
      "alter-domain-add-constraint: ALTER DOMAIN s.d SET NOT NULL",
    ],
  ],
  [
    "CREATE INDEX named or not, and CONCURRENTLY inside BEGIN",
    "CREATE INDEX i ON s.t (a); CREATE INDEX ON t (a); BEGIN; CREATE INDEX CONCURRENTLY j ON t (a); COMMIT;",
    [
      "create-index-without-concurrently: CREATE INDEX i on s.t without CONCURRENTLY",
      "create-index-without-concurrently: CREATE INDEX on t without CONCURRENTLY",
      "concurrently-in-transaction: CREATE INDEX CONCURRENTLY inside a transaction",
    ],
  ],
  [
    "REINDEX of a table, an index, a database; CONCURRENTLY false is none; CONCURRENTLY inside BEGIN",
    "REINDEX TABLE s.t; REINDEX INDEX i; REINDEX DATABASE d; REINDEX (CONCURRENTLY false) TABLE t; REINDEX (CONCURRENTLY) TABLE t; BEGIN; REINDEX (CONCURRENTLY true) TABLE t; COMMIT;",
    [
      "reindex-without-concurrently: REINDEX s.t without CONCURRENTLY",
      "reindex-without-concurrently: REINDEX i without CONCURRENTLY",
      "reindex-without-concurrently: REINDEX d without CONCURRENTLY",
      "reindex-without-concurrently: REINDEX t without CONCURRENTLY",
      "concurrently-in-transaction: REINDEX CONCURRENTLY inside a transaction",
    ],
  ],
  [
    "REINDEX before PostgreSQL 12",
    "REINDEX TABLE t;",
    ["reindex-without-concurrently: REINDEX t without CONCURRENTLY (PostgreSQL 11 has none: 12+)"],
    { pgVersion: 11 },
  ],
  [
    "TRUNCATE names only the old tables; UPDATE without WHERE, a column set twice (subscripts are not)",
    "CREATE TABLE n (id int PRIMARY KEY); TRUNCATE n, s.t; UPDATE s.t SET a = 1, a = 2; UPDATE t SET a[1] = 1, a[2] = 2 WHERE id = 1;",
    [
      "truncate: TRUNCATE s.t",
      "update-without-where: UPDATE s.t without WHERE",
      "duplicate-column-assignment: UPDATE s.t sets a twice",
    ],
  ],
  [
    "a backfill WHERE made only of IS NULL tests on new columns; any other test is a batch",
    "ALTER TABLE t ADD COLUMN c int, ADD COLUMN d int; UPDATE t SET c = 1, d = 2 WHERE c IS NULL AND d IS NULL; UPDATE t SET c = 1 WHERE c IS NULL AND id < 10; UPDATE t SET c = 1 WHERE c IS NOT NULL; UPDATE t SET c = 1 WHERE NOT (c IS NULL);",
    [
      "backfill-in-one-statement: UPDATE t WHERE c / d IS NULL right after ADD COLUMN c, d: every row, in one statement",
    ],
  ],
  [
    "INSERT listing a column twice, ON CONFLICT setting one twice",
    "INSERT INTO s.t (a, a) VALUES (1, 2); INSERT INTO t (a) VALUES (1) ON CONFLICT (a) DO UPDATE SET b = 1, b = 2;",
    [
      "duplicate-column-assignment: INSERT INTO s.t lists a twice",
      "duplicate-column-assignment: ON CONFLICT DO UPDATE on t sets b twice",
    ],
  ],
  [
    "a view's output names: alias, column, function, ?column?, the view's own list; t.* is unknown",
    "CREATE VIEW s.v AS SELECT a, b AS a FROM t; CREATE VIEW v2 (x, x) AS SELECT 1, 2; CREATE VIEW v3 AS SELECT lower(a), lower(b) FROM t; CREATE VIEW v4 AS SELECT 1, 2; CREATE VIEW v5 AS SELECT t.*, a FROM t; CREATE VIEW v6 (a) AS SELECT x, a FROM t;",
    [
      "view-duplicate-column: CREATE VIEW s.v has two columns named a",
      "view-duplicate-column: CREATE VIEW v2 has two columns named x",
      "view-duplicate-column: CREATE VIEW v3 has two columns named lower",
      "view-duplicate-column: CREATE VIEW v4 has two columns named ?column?",
      "view-duplicate-column: CREATE VIEW v6 has two columns named a",
    ],
  ],
  [
    "DELETE without WHERE; VACUUM FULL in every spelling, off in every spelling; CLUSTER",
    "DELETE FROM s.t; VACUUM (FULL) a, s.b; VACUUM FULL; VACUUM (FULL false) a; VACUUM (FULL 0) a; VACUUM (FULL off) a; VACUUM (FULL 1) a; CLUSTER; CLUSTER s.t;",
    [
      "delete-without-where: DELETE FROM s.t without WHERE",
      "vacuum-full: VACUUM FULL a, s.b",
      "vacuum-full: VACUUM FULL",
      "vacuum-full: VACUUM FULL a",
      "vacuum-full: CLUSTER",
      "vacuum-full: CLUSTER s.t",
    ],
  ],
];

describe("each rule's message names what it found", () => {
  for (const [name, sql, want, config] of CASES)
    it(name, async () => {
      assert.deepEqual(await lint(sql, config), want);
    });
});

describe("docs/lint-rules.md", () => {
  it("gives each rule the severity, why, safe pattern and versions the findings carry", async () => {
    const doc = await readFile(join(__dirname, "../../../docs/lint-rules.md"), "utf8");
    const rows = new Map<string, string[]>();
    for (const m of doc.matchAll(/^\| `([a-z0-9-]+)` \| (.*) \|$/gm))
      rows.set(m[1], m[2].replace(/`/g, "").split(" | "));
    assert.deepEqual([...rows.keys()].sort(), Object.keys(RULES).sort());
    for (const [id, rule] of Object.entries(RULES)) {
      const [severity, , why, instead, versions] = rows.get(id) ?? [];
      // The table sets code in backticks; the finding's text has them where the code has them.
      const plain = (t: string | undefined) => t?.replace(/`/g, "");
      assert.deepEqual(
        { severity, why, instead, versions },
        {
          severity: rule.severity,
          why: plain(rule.why),
          instead: plain(rule.instead),
          versions: plain(rule.versions) ?? "all",
        },
        id,
      );
      assert.match(rule.severity, /^(error|warning)$/, id);
    }
  });
});
