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

  it("lintPaths walks directories and formats file:line, rule, why and instead", async () => {
    const all = await lintPaths([FIXTURES]);
    assert.ok(all.some((f) => f.rule === "drop-table" && f.file.endsWith("destructive.sql") && f.line === 4));
    const text = formatFindings(all.filter((f) => f.rule === "drop-table"));
    assert.match(text, /destructive\.sql:4: error \[drop-table\] DROP TABLE\n {2}why: .+\n {2}instead: .+/);
  });
});
