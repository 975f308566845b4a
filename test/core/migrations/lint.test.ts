import assert from "node:assert/strict";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, it } from "node:test";
import {
  allowedRules,
  checkStatement,
  formatFindings,
  lintPaths,
  lintSql,
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

  it("a long file (40,000 statements): the finding's line is right (its speed: npm run bench:lint)", async () => {
    const sql =
      "SET lock_timeout = '5s';\n" + "INSERT INTO t VALUES (1, 'x');\n".repeat(40_000) + "DROP TABLE t;\n";
    const found = await lintSql(sql, "long.sql");
    assert.deepEqual(
      found.map((f) => `${f.rule}@${f.line}`),
      ["drop-table@40002"],
    );
  });

  it("lintPaths walks directories and formats file:line, rule, why and instead", async () => {
    const all = await lintPaths([FIXTURES]);
    assert.ok(all.some((f) => f.rule === "drop-table" && f.file.endsWith("destructive.sql") && f.line === 4));
    const text = formatFindings(all.filter((f) => f.rule === "drop-table"));
    assert.match(text, /destructive\.sql:4: error \[drop-table\] DROP TABLE\n {2}why: .+\n {2}instead: .+/);
  });
});
