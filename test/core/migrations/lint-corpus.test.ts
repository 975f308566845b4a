import assert from "node:assert/strict";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { it } from "node:test";
import { lintSql, newLintState } from "../../../src/core/migrations/lint";

// Our own corpus of dangerous and safe migrations (test/fixtures/lint/corpus, written for this project).
// A bad file names the rule it must trigger (`-- rule: ID`); a safe file must not make lint exit 1.
// `-- pg: N` sets the PostgreSQL version of a case. Goals (issue 16): >= 90% caught, <= 5% false alarms.
const CORPUS = join(__dirname, "../../fixtures/lint/corpus");

async function cases(kind: "bad" | "safe"): Promise<Array<{ name: string; sql: string }>> {
  const names = (await readdir(join(CORPUS, kind))).filter((n) => n.endsWith(".sql")).sort();
  return Promise.all(
    names.map(async (name) => ({ name, sql: await readFile(join(CORPUS, kind, name), "utf8") })),
  );
}

const lint = (sql: string, name: string) => {
  const pg = /^--\s*pg:\s*(\d+)/m.exec(sql)?.[1];
  return lintSql(sql, name, { pgVersion: pg ? Number(pg) : undefined }, newLintState());
};

it("the corpus: at least 90% of the dangerous cases caught, at most 5% false alarms", async () => {
  const bad = await cases("bad");
  const safe = await cases("safe");
  assert.ok(
    bad.length >= 60 && safe.length >= 60,
    `corpus too small: ${bad.length} bad, ${safe.length} safe`,
  );
  const missed: string[] = [];
  let exitOne = 0;
  for (const c of bad) {
    const rule = /^--\s*rule:\s*([a-z0-9-]+)/m.exec(c.sql)?.[1];
    assert.ok(rule, `${c.name}: no -- rule: line`);
    const found = await lint(c.sql, c.name);
    if (!found.some((f) => f.rule === rule))
      missed.push(`${c.name} (wants ${rule}, got ${found.map((f) => f.rule).join(", ") || "nothing"})`);
    if (found.some((f) => f.severity === "error")) exitOne++;
  }
  const alarms: string[] = [];
  let warned = 0;
  for (const c of safe) {
    const found = await lint(c.sql, c.name);
    const errors = found.filter((f) => f.severity === "error");
    if (errors.length) alarms.push(`${c.name} (${errors.map((f) => `${f.rule}@${f.line}`).join(", ")})`);
    if (found.length > errors.length) warned++;
  }
  const caught = (bad.length - missed.length) / bad.length;
  const falseAlarms = alarms.length / safe.length;
  console.log(
    `lint corpus: ${bad.length} bad, caught ${bad.length - missed.length} (${(caught * 100).toFixed(1)}%, ` +
      `${exitOne} with exit 1); ${safe.length} safe, false alarms ${alarms.length} (${(falseAlarms * 100).toFixed(1)}%), ` +
      `${warned} with a warning only`,
  );
  for (const m of missed) console.log(`  missed: ${m}`);
  for (const a of alarms) console.log(`  false alarm: ${a}`);
  assert.ok(caught >= 0.9, `caught ${(caught * 100).toFixed(1)}% < 90%`);
  assert.ok(falseAlarms <= 0.05, `false alarms ${(falseAlarms * 100).toFixed(1)}% > 5%`);
});
