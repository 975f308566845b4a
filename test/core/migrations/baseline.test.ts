import assert from "node:assert/strict";
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { runLint } from "../../../src/cli/commands/lint";
import { applyBaseline, baselineOf, readBaseline } from "../../../src/core/migrations/baseline";
import { lintMigrations } from "../../../src/core/migrations/lint";

const FIX = join(__dirname, "../../fixtures/migrations");
const root = mkdtempSync(join(tmpdir(), "sd-baseline-"));
after(() => rmSync(root, { recursive: true, force: true }));

/** Runs `safe-deploy lint` in-process; its printed lines and the exit class of its error, if any. */
async function lint(o: Parameters<typeof runLint>[0]): Promise<{ text: string; error?: string }> {
  const lines: string[] = [];
  try {
    await runLint({ ...o, out: (t) => lines.push(t) });
    return { text: lines.join("\n") };
  } catch (e) {
    return { text: lines.join("\n"), error: `${(e as Error).name}: ${(e as Error).message}` };
  }
}

describe("lint baseline (issue 21)", () => {
  it("an accepted finding survives reformatting, comments and moved lines; a changed statement is reported again", async () => {
    const dir = join(root, "sql");
    cpSync(join(FIX, "npm"), dir, { recursive: true });
    const file = join(dir, "1700000004000_drop.sql");
    writeFileSync(
      file,
      "-- Up Migration\nDROP TABLE sessions;\nCREATE INDEX orders_total ON orders (total);\n",
    );
    const before = (await lintMigrations(dir, { timeoutsSetByRunner: true })).findings;
    assert.deepEqual(
      before.map((f) => f.rule),
      ["drop-table", "create-index-without-concurrently"],
    );
    const base = baselineOf(before, root);
    assert.deepEqual(
      base.entries.map((e) => `${e.rule} ${e.file}`),
      [
        "create-index-without-concurrently sql/1700000004000_drop.sql",
        "drop-table sql/1700000004000_drop.sql",
      ],
    );
    writeFileSync(
      file,
      "-- Up Migration\n-- the team's new header\n\ncreate   index orders_total\n  on orders(total);\n/* moved */ drop table\n  sessions;\n",
    );
    assert.deepEqual(
      applyBaseline((await lintMigrations(dir, { timeoutsSetByRunner: true })).findings, base.entries, root),
      [],
    );
    writeFileSync(
      file,
      "-- Up Migration\nDROP TABLE sessions_archive;\nCREATE INDEX orders_total ON orders (id);\n",
    );
    assert.deepEqual(
      applyBaseline(
        (await lintMigrations(dir, { timeoutsSetByRunner: true })).findings,
        base.entries,
        root,
      ).map((f) => f.message),
      ["DROP TABLE sessions_archive", "CREATE INDEX orders_total on orders without CONCURRENTLY"],
    );
  });

  it("`lint --write-baseline` then `lint`: TypeScript node-pg-migrate migrations pass, saying how many were accepted; a new one is judged", async () => {
    const dir = join(root, "ts");
    cpSync(join(FIX, "npm-ts"), dir, { recursive: true });
    const baseline = join(root, ".safe-deploy/lint-baseline.json");
    const first = await lint({ paths: [dir], baseline });
    assert.match(first.error ?? "", /^CheckFailedError: lint found 3 error\(s\).*--write-baseline/);
    assert.match(
      first.text,
      /1700000003000_drop-legacy\.ts:1: error \[drop-table\] in up\(\): DROP TABLE legacy_sessions/,
    );
    const wrote = await lint({ paths: [dir], baseline, writeBaseline: true });
    assert.equal(wrote.error, undefined);
    assert.match(wrote.text, /^wrote 4 accepted finding\(s\) to .*lint-baseline\.json: commit it/);
    const entries = (await readBaseline(baseline))!;
    assert.ok(entries.every((e) => e.file.startsWith("ts/") && /^[0-9a-f]{16}$/.test(e.fingerprint)));
    assert.ok(!readFileSync(baseline, "utf8").includes(root), "paths are relative to the project");
    const again = await lint({ paths: [dir], baseline });
    assert.equal(again.error, undefined);
    assert.match(
      again.text,
      /^0 error\(s\), 0 warning\(s\) \(PostgreSQL 15\); 4 accepted in the baseline .*; 1 not checkable offline$/m,
    );
    writeFileSync(
      join(dir, "1700000006000_drop-orders.ts"),
      'import type { MigrationBuilder } from "node-pg-migrate";\n\nexport async function up(pgm: MigrationBuilder): Promise<void> {\n  pgm.dropTable("orders");\n}\n',
    );
    const next = await lint({ paths: [dir], baseline });
    assert.match(next.error ?? "", /lint found 1 error/);
    assert.match(
      next.text,
      /1700000006000_drop-orders\.ts:1: error \[drop-table\] in up\(\): DROP TABLE orders/,
    );
  });

  it("works for Alembic revisions (Python, where no allow comment can go): keyed by the revision file", async () => {
    const dir = join(root, "alembic");
    cpSync(join(FIX, "alembic"), dir, { recursive: true });
    const baseline = join(root, "alembic-baseline.json");
    assert.match((await lint({ paths: [dir], baseline })).error ?? "", /lint found 1 error/);
    await lint({ paths: [dir], baseline, writeBaseline: true });
    const entries = (await readBaseline(baseline))!;
    assert.deepEqual(
      entries.filter((e) => e.rule === "create-index-without-concurrently").map((e) => e.file),
      ["alembic/versions/b2_accounts_email_index.py"],
    );
    assert.match((await lint({ paths: [dir], baseline })).text, /accepted in the baseline/);
  });

  it("a damaged baseline file is a usage error naming the way back", async () => {
    const baseline = join(root, "broken.json");
    writeFileSync(baseline, "{ not json");
    const r = await lint({ paths: [join(FIX, "npm")], baseline });
    assert.match(
      r.error ?? "",
      /^ConfigError: the lint baseline .*broken\.json is not JSON.*--write-baseline/,
    );
  });
});
