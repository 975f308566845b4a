import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { promisify } from "node:util";
import { after, before, describe, it } from "node:test";
import { runLint } from "../../../src/cli/commands/lint";
import { lintMigrations } from "../../../src/core/migrations/lint";
import { tsxNodeOptions } from "../../../src/core/migrations/presets";
import { migrate } from "../../../src/core/migrations/runner";
import { startPostgres, type TestPostgres } from "../../helpers/postgres";

// TypeScript node-pg-migrate migrations in the tool's own layout (its `create --migration-file-language ts`
// template), run by the real node-pg-migrate against a real PostgreSQL (issue 21 point 4).
const ROOT = join(__dirname, "../../..");
const TS = join(__dirname, "../../fixtures/migrations/npm-ts");
const tmp = mkdtempSync(join(tmpdir(), "sd-npgm-ts-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

describe("node-pg-migrate preset with TypeScript migrations", () => {
  let pg: TestPostgres;
  before(async () => {
    pg = await startPostgres();
  });
  after(async () => pg?.close());

  it('runs .ts migrations through tsx (before: Unknown file extension ".ts")', async () => {
    const url = await pg.createDatabase("ts");
    const r = await migrate({
      tool: "node-pg-migrate",
      action: "up",
      dir: "test/fixtures/migrations/npm-ts",
      workDir: ROOT,
      databaseUrl: url,
    });
    assert.equal(r.after, "1700000005000_fill-from-query");
    const [{ n }] = await pg.query<{ n: string }>(
      "SELECT count(*) AS n FROM accounts WHERE plan = 'free'",
      [],
      "ts",
    );
    assert.equal(n, "16", "20 accounts, 4 moved to trial by the migration that reads the database");
  });

  it("asks for tsx only where .ts migrations are, with a directory name the shell must quote", async () => {
    const run = promisify(execFile);
    const options = async (dir: string) =>
      (
        await run(
          "/bin/sh",
          ["-c", `${tsxNodeOptions(dir)} node -e "console.log(process.env.NODE_OPTIONS)"`],
          {
            cwd: ROOT,
            env: { ...process.env, NODE_OPTIONS: "--no-warnings" },
          },
        )
      ).stdout.trim();
    const withTs = join(tmp, "my migrations");
    mkdirSync(withTs);
    writeFileSync(join(withTs, "1_a.ts"), "export const up = () => {};\n");
    assert.equal(await options(withTs), "--import=tsx --no-warnings");
    assert.equal(await options(join(ROOT, "test/fixtures/migrations/npm-concurrently")), "--no-warnings");
  });
});

describe("lint of node-pg-migrate JS/TS migrations (the SQL their up() produces, offline)", () => {
  it("findings name the migration file; noTransaction() is known; a migration that reads the database is named", async () => {
    const r = await lintMigrations(TS, { timeoutsSetByRunner: true });
    assert.deepEqual(
      r.findings.map((f) => `${f.file.slice(TS.length + 1)}:${f.line} ${f.rule} ${f.message}`),
      [
        "1700000002000_accounts-plan.ts:1 backfill-in-one-statement in up(): UPDATE accounts WHERE plan IS NULL right after ADD COLUMN plan: every row, in one statement",
        "1700000002000_accounts-plan.ts:1 create-index-without-concurrently in up(): CREATE INDEX accounts_plan_index on accounts without CONCURRENTLY",
        "1700000003000_drop-legacy.ts:1 drop-table in up(): DROP TABLE legacy_sessions",
      ],
    );
    assert.deepEqual(
      r.findings.map((f) => f.migration),
      ["1700000002000_accounts-plan", "1700000002000_accounts-plan", "1700000003000_drop-legacy"],
    );
    assert.deepEqual(r.unchecked, [
      {
        file: join(TS, "1700000005000_fill-from-query.ts"),
        reason: "it queries the database while it runs (pgm.db.query / pgm.db.select)",
      },
    ]);
    assert.equal(r.migrations, 5);
  });

  it('`lint` exits 1 on a JS/TS folder\'s errors (before: exit 2, "no .sql file")', async () => {
    const lines: string[] = [];
    await assert.rejects(runLint({ paths: [TS], out: (t) => lines.push(t) }), /lint found 3 error\(s\)/);
    assert.match(
      lines.join("\n"),
      /1700000005000_fill-from-query\.ts: not checkable offline: it queries the database/,
    );
  });

  it('a folder whose migrations yield no statement says so: never "0 problems"', async () => {
    const dir = join(tmp, "empty-up");
    mkdirSync(dir);
    writeFileSync(join(dir, "1700000000000_noop.js"), "exports.up = () => {};\nexports.down = () => {};\n");
    writeFileSync(
      join(dir, "1700000000001_reads.js"),
      "exports.up = async (pgm) => { await pgm.db.query('SELECT 1'); };\n",
    );
    await assert.rejects(runLint({ paths: [dir], out: () => {} }), (e: Error) => {
      assert.equal(e.name, "ConfigError");
      assert.match(
        e.message,
        /2 migration\(s\) under .* but 0 statements could be checked \(not checkable offline: .*1700000000001_reads\.js: it queries the database.*\): nothing was judged/,
      );
      return true;
    });
  });

  it("a relative directory works too (the renderer runs in the project directory)", async () => {
    const rel = relative(process.cwd(), TS);
    const r = await lintMigrations(rel, { timeoutsSetByRunner: true });
    assert.deepEqual(
      r.unchecked.map((u) => u.file),
      [join(rel, "1700000005000_fill-from-query.ts")],
    );
    assert.equal(r.findings.length, 3);
    assert.ok(r.findings.every((f) => f.file.startsWith(rel)));
  });

  it("JavaScript CommonJS migrations with shorthands and a callback-style up() render too", async () => {
    const dir = join(tmp, "js");
    cpSync(join(ROOT, "test/fixtures/migrations/npm-concurrently"), dir, { recursive: true });
    writeFileSync(
      join(dir, "1700000003000_cb.js"),
      "exports.shorthands = { id: { type: 'serial', primaryKey: true } };\n" +
        "exports.up = (pgm, run) => { pgm.createTable('t2', { id: 'id' }); pgm.dropColumn('items', 'name'); run(); };\n",
    );
    const r = await lintMigrations(dir, { timeoutsSetByRunner: true });
    assert.deepEqual(
      r.findings.map((f) => `${f.rule} ${f.message}`),
      ["drop-column in up(): DROP COLUMN name on items"],
    );
  });
});
