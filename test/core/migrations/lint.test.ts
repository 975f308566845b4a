import assert from "node:assert/strict";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import {
  allowedRules,
  checkStatement,
  formatFindings,
  lintPaths,
  lintSql,
  pgVersionFromImage,
  plpgsqlStatements,
  splitStatements,
  upPart,
} from "../../../src/core/migrations/lint";

const FIXTURES = join(__dirname, "../../fixtures/lint");

describe("lint fixtures (true and false positives)", async () => {
  const files = (await readdir(FIXTURES)).filter((f) => f.endsWith(".sql")).sort();
  for (const f of files) {
    it(f, async () => {
      const sql = await readFile(join(FIXTURES, f), "utf8");
      const head = /^-- expect: (.*)$/m.exec(sql)?.[1] ?? "";
      const expected = head === "none" ? [] : head.split(",").map((x) => x.trim());
      const got = (await lintSql(sql, f)).map((x) => `${x.rule}@${x.line}`);
      assert.deepEqual([...got].sort(), [...expected].sort());
    });
  }
});

describe("lint engine", () => {
  it("upPart keeps only the Up Migration with line numbers intact", () => {
    const sql = "-- x\n-- Up Migration\nA;\n-- Down Migration\nB;\n";
    const up = upPart(sql);
    assert.equal(up.split("\n")[2], "A;");
    assert.ok(!up.includes("B;"));
    assert.equal(upPart("C;"), "C;");
  });

  it("allowedRules reads one rule per comment", () => {
    assert.deepEqual(
      [...allowedRules("-- safe-deploy: allow drop-column\n-- safe-deploy:allow truncate")],
      ["drop-column", "truncate"],
    );
  });

  it("checkStatement exempts tables created in the same file", () => {
    const idx = { IndexStmt: { relation: { relname: "t" }, concurrent: false } };
    assert.equal(
      checkStatement(idx, { inTransaction: false, createdTables: new Set() })[0].rule,
      "create-index-without-concurrently",
    );
    assert.deepEqual(checkStatement(idx, { inTransaction: false, createdTables: new Set(["t"]) }), []);
  });

  it("splitStatements cuts at ; outside quotes, dollar quotes and comments", () => {
    const text = "A 'x;''y'; B $q$ c; $q$; -- d;\nE /* f; */";
    assert.deepEqual(
      splitStatements(text).map((p) => p.text.trim()),
      ["A 'x;''y'", "B $q$ c; $q$", "-- d;\nE /* f; */"],
    );
  });

  it("plpgsqlStatements strips block keywords, unquotes EXECUTE literals and marks built strings", () => {
    const body = " BEGIN IF x THEN DROP TABLE a; END IF; EXECUTE 'DROP TABLE ''b'''; EXECUTE 'x' || y; END ";
    assert.deepEqual(
      plpgsqlStatements(body).map((p) => [p.sql.trim(), p.dynamic ?? false]),
      [
        ["DROP TABLE a", false],
        ["END IF", false],
        ["DROP TABLE 'b'", false],
        ["EXECUTE 'x' || y", true],
        ["END", false],
      ],
    );
  });

  // 2,000 statements, not 40,000: the line search is the same at any length, and npm run bench:lint
  // lints 10,000 to 40,000 (checking the finding's line) for its speed. At 40,000 every mutant of the
  // line search cost a mutation run 20 s (issue 22).
  it("a long file (2,000 statements): the finding's line is right (its speed: npm run bench:lint)", async () => {
    const sql =
      "SET lock_timeout = '5s'; SET statement_timeout = '5min';\n" +
      "INSERT INTO t VALUES (1, 'x');\n".repeat(2_000) +
      "DROP TABLE t;\n";
    const found = await lintSql(sql, "long.sql");
    assert.deepEqual(
      found.map((f) => `${f.rule}@${f.line}`),
      ["drop-table@2002"],
    );
  });

  it("SET NOT NULL passes when an earlier migration of the directory validated CHECK (col IS NOT NULL)", async () => {
    const dir = join(FIXTURES, "history");
    const found = await lintPaths([dir], { timeoutsSetByRunner: true });
    assert.deepEqual(
      found.map((f) => `${f.file.slice(dir.length + 1)}:${f.line} ${f.rule} ${f.message}`),
      ["1700000000002_set-not-null.sql:3 set-not-null SET NOT NULL on notes.body"],
    );
    // Before PostgreSQL 12 SET NOT NULL scans whatever CHECK exists.
    const old = await lintPaths([dir], { timeoutsSetByRunner: true, pgVersion: 11 });
    assert.deepEqual(
      old.map((f) => `${f.line} ${f.rule}`),
      ["2 set-not-null", "3 set-not-null"],
    );
    assert.match(old[0].message, /PostgreSQL 11 < 12/);
  });

  it("the PostgreSQL version decides whether a constant DEFAULT rewrites the table", async () => {
    const sql =
      "SET lock_timeout = '1s'; SET statement_timeout = '1min';\nALTER TABLE t ADD COLUMN a int NOT NULL DEFAULT 0;\n";
    assert.deepEqual(await lintSql(sql, "x.sql", { pgVersion: 15 }), []);
    const old = await lintSql(sql, "x.sql", { pgVersion: 10 });
    assert.deepEqual(
      old.map((f) => `${f.rule}@${f.line}`),
      ["add-column-rewrites-table@2"],
    );
    assert.match(old[0].message, /PostgreSQL 10 < 11/);
    const detach = "ALTER TABLE m DETACH PARTITION m1;";
    assert.match(
      (await lintSql(detach, "d.sql", { pgVersion: 13, timeoutsSetByRunner: true }))[0].message,
      /no CONCURRENTLY: 14\+/,
    );
  });

  it("pgVersionFromImage reads the major version of a database image tag", () => {
    assert.equal(pgVersionFromImage("postgres:16-alpine"), 16);
    assert.equal(pgVersionFromImage("docker.io/library/postgres:9.6"), 9);
    assert.equal(pgVersionFromImage("postgis/postgis:14-3.4"), 14);
    assert.equal(pgVersionFromImage("localhost:5000/postgres"), undefined);
    assert.equal(pgVersionFromImage("postgres:latest"), undefined);
  });

  it("require-timeouts is left to the runner when it sets both (migrate passes them in PGOPTIONS)", async () => {
    const sql = "ALTER TABLE t ADD COLUMN a int;\n";
    assert.deepEqual(
      (await lintSql(sql, "x.sql")).map((f) => f.rule),
      ["require-timeouts"],
    );
    assert.deepEqual(await lintSql(sql, "x.sql", { timeoutsSetByRunner: true }), []);
  });

  it("require-timeouts is said once per directory, counting the later migrations without the SETs (issue 21)", async () => {
    const dir = await mkdtemp(join(tmpdir(), "sd-lint-timeouts-"));
    try {
      for (const [i, t] of ["a", "b", "c"].entries())
        await writeFile(join(dir, `170000000000${i}_${t}.sql`), `ALTER TABLE ${t} ADD COLUMN x text;\n`);
      const found = (await lintPaths([dir])).filter((f) => f.rule === "require-timeouts");
      assert.deepEqual(
        found.map((f) => `${f.file.slice(dir.length + 1)}: ${f.message}`),
        [
          "1700000000000_a.sql: AlterTable before any SET lock_timeout / statement_timeout (and in 2 later migration(s); said once)",
        ],
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("messages name the object: DROP, TRUNCATE, VACUUM FULL, CLUSTER", async () => {
    const sql =
      "DROP TABLE public.a, b; DROP SCHEMA s CASCADE; DROP INDEX i; DROP DATABASE d; TRUNCATE a, b; VACUUM FULL a; CLUSTER a;";
    const found = await lintSql(sql, "x.sql", { timeoutsSetByRunner: true });
    assert.deepEqual(
      found.map((f) => f.message),
      [
        "DROP TABLE public.a, b",
        "DROP SCHEMA s",
        "DROP INDEX i without CONCURRENTLY",
        "DROP DATABASE d",
        "TRUNCATE a, b",
        "VACUUM FULL a",
        "CLUSTER a",
      ],
    );
  });

  it("lintPaths walks directories and formats file:line, rule, why and instead", async () => {
    const all = await lintPaths([FIXTURES]);
    assert.ok(all.some((f) => f.rule === "drop-table" && f.file.endsWith("destructive.sql") && f.line === 4));
    const text = formatFindings(all.filter((f) => f.rule === "drop-table"));
    assert.match(
      text,
      /destructive\.sql:4: error \[drop-table\] DROP TABLE sessions\n {2}why: .+\n {2}instead: .+/,
    );
  });
});

describe("docs/lint-rules.md", () => {
  it("lists every rule id of the code in its table, and no other", async () => {
    const { RULES } = await import("../../../src/core/migrations/lint");
    const doc = await readFile(join(__dirname, "../../../docs/lint-rules.md"), "utf8");
    const ids = [...doc.matchAll(/^\| `([a-z0-9-]+)` \|/gm)].map((m) => m[1]);
    assert.deepEqual([...ids].sort(), Object.keys(RULES).sort());
    assert.equal(new Set(ids).size, ids.length, "a rule listed twice");
  });
});
