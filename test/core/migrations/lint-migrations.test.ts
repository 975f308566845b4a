// Issue 22: lintMigrations, lintPaths, sqlFiles, migrationName and formatFindings in the test process
// (no server): which files of a directory are migrations, the name each finding is recorded under, what
// is skipped as applied or accepted by the baseline, and the counts `safe-deploy lint` prints.
import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import {
  formatFindings,
  lintMigrations,
  lintPaths,
  migrationName,
  sqlFiles,
  type LintFinding,
} from "../../../src/core/migrations/lint";

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), "sd-lint-migrations-"));
});
after(async () => rm(dir, { recursive: true, force: true }));

/** A directory holding `files` (path relative to it -> content). */
async function tree(name: string, files: Record<string, string>): Promise<string> {
  const root = join(dir, name);
  for (const [rel, text] of Object.entries(files)) {
    await mkdir(join(root, rel, ".."), { recursive: true });
    await writeFile(join(root, rel), text);
  }
  return root;
}

const show = (root: string, f: LintFinding) =>
  `${f.file.slice(root.length + 1)}:${f.line} ${f.migration} ${f.rule}: ${f.message}`;

describe("lintMigrations over a directory", () => {
  it("lints .sql files at any depth (Prisma's NAME/migration.sql), top-level code migrations, nothing else", async () => {
    const root = await tree("mixed", {
      "1700000000000_a.sql": "-- Up Migration\nDROP TABLE a;\n-- Down Migration\nDROP TABLE z;\n",
      "1700000001000_b.js": 'exports.up = (pgm) => { pgm.sql("TRUNCATE b"); };\n',
      "1700000002000_types.d.ts": "export {};\n",
      "20260101000000_p/migration.sql": "\nDROP TABLE p;\n",
      "notes.txt": "DROP TABLE n;\n",
      "sub/1800000000000_c.js": 'exports.up = (pgm) => { pgm.sql("DROP TABLE c"); };\n',
    });
    const r = await lintMigrations(root, { timeoutsSetByRunner: true });
    assert.deepEqual(
      r.findings.map((f) => show(root, f)),
      [
        "1700000000000_a.sql:2 1700000000000_a drop-table: DROP TABLE a",
        "1700000001000_b.js:1 1700000001000_b truncate: in up(): TRUNCATE b",
        "20260101000000_p/migration.sql:2 20260101000000_p drop-table: DROP TABLE p",
      ],
    );
    assert.equal(r.migrations, 3);
    assert.equal(r.skippedApplied, 0);
    assert.equal(r.accepted, 0);
    assert.equal(r.statements, 3);
    assert.deepEqual(r.unchecked, []);
  });

  it("skips applied migrations (by their /-separated path) and counts them; statements counts only what was read", async () => {
    const root = await tree("applied", {
      "1_a.sql": "DROP TABLE a;\n",
      "2_p/migration.sql": "DROP TABLE p;\n",
      "3_c.sql": "SELECT 1; TRUNCATE c;\n",
    });
    const r = await lintMigrations(root, {
      timeoutsSetByRunner: true,
      applied: new Set(["1_a.sql", "2_p/migration.sql"]),
    });
    assert.deepEqual(
      r.findings.map((f) => show(root, f)),
      ["3_c.sql:1 3_c truncate: TRUNCATE c"],
    );
    assert.equal(r.migrations, 3);
    assert.equal(r.skippedApplied, 2);
    assert.equal(r.statements, 2);
  });

  it("the baseline's accept drops findings and says how many", async () => {
    const root = await tree("accept", { "1_a.sql": "DROP TABLE a;\nDROP TABLE b;\nTRUNCATE c;\n" });
    const seen: string[] = [];
    const r = await lintMigrations(root, {
      timeoutsSetByRunner: true,
      accept: (found) => {
        seen.push(...found.map((f) => f.message));
        return found.filter((f) => f.rule !== "drop-table");
      },
    });
    assert.deepEqual(seen, ["DROP TABLE a", "DROP TABLE b", "TRUNCATE c"]);
    assert.deepEqual(
      r.findings.map((f) => f.message),
      ["TRUNCATE c"],
    );
    assert.equal(r.accepted, 2);
  });

  it("require-timeouts is one finding for the directory, across .sql and code migrations", async () => {
    const root = await tree("timeouts", {
      "1_a.sql": "ALTER TABLE a ADD COLUMN x int;\n",
      "2_b.js": 'exports.up = (pgm) => { pgm.sql("ALTER TABLE b ADD COLUMN y int"); };\n',
      "3_c.sql":
        "SET lock_timeout = '1s'; SET statement_timeout = '1min';\nALTER TABLE c ADD COLUMN z int;\n",
    });
    const r = await lintMigrations(root);
    assert.deepEqual(
      r.findings.map((f) => show(root, f)),
      [
        "1_a.sql:1 1_a require-timeouts: AlterTable before any SET lock_timeout / statement_timeout (and in 1 later migration(s); said once)",
      ],
    );
  });

  it("a code migration that cannot be rendered offline is named with its reason, not linted, not a finding", async () => {
    const root = await tree("unchecked", {
      "1_reads.js":
        'exports.up = async (pgm) => { await pgm.db.query("SELECT 1"); pgm.sql("DROP TABLE r"); };\n',
      "2_b.sql": "DROP TABLE b;\n",
    });
    const r = await lintMigrations(root, { timeoutsSetByRunner: true });
    assert.deepEqual(
      r.unchecked.map((u) => u.file),
      [join(root, "1_reads.js")],
    );
    assert.match(r.unchecked[0].reason, /queries the database while it runs/);
    assert.deepEqual(
      r.findings.map((f) => show(root, f)),
      ["2_b.sql:1 2_b drop-table: DROP TABLE b"],
    );
    assert.equal(r.migrations, 2);
  });

  it("a code migration without noTransaction() runs in a transaction: CONCURRENTLY there is refused", async () => {
    const root = await tree("tx", {
      "1_idx.js":
        'exports.up = (pgm) => { pgm.sql("CREATE INDEX CONCURRENTLY i ON t (a)"); };\n' +
        "exports.down = () => {};\n",
      "2_idx.js":
        'exports.up = (pgm) => { pgm.noTransaction(); pgm.sql("CREATE INDEX CONCURRENTLY j ON t (a)"); };\n',
    });
    const r = await lintMigrations(root, { timeoutsSetByRunner: true });
    assert.deepEqual(
      r.findings.map((f) => show(root, f)),
      [
        "1_idx.js:1 1_idx concurrently-in-transaction: in up(): CREATE INDEX CONCURRENTLY inside a transaction",
      ],
    );
  });

  it("one file: linted on its own, named by its file name, the directory beside it ignored", async () => {
    const root = await tree("one", { "1_a.sql": "DROP TABLE a;\n", "2_b.sql": "DROP TABLE b;\n" });
    const r = await lintMigrations(join(root, "2_b.sql"), { timeoutsSetByRunner: true });
    assert.deepEqual(
      r.findings.map((f) => show(root, f)),
      ["2_b.sql:1 2_b drop-table: DROP TABLE b"],
    );
    assert.equal(r.migrations, 1);
    const skipped = await lintMigrations(join(root, "2_b.sql"), {
      timeoutsSetByRunner: true,
      applied: new Set(["2_b.sql"]),
    });
    assert.deepEqual(skipped.findings, []);
    assert.equal(skipped.skippedApplied, 1);
  });

  it("lintPaths joins the findings of each path in order, each directory with its own state", async () => {
    const a = await tree("paths-a", { "1_a.sql": "ALTER TABLE a ADD COLUMN x int;\n" });
    const b = await tree("paths-b", { "1_b.sql": "ALTER TABLE b ADD COLUMN x int;\nDROP TABLE b;\n" });
    const found = await lintPaths([b, a]);
    assert.deepEqual(
      found.map((f) => `${f.file.slice(dir.length + 1)}:${f.line} ${f.rule}: ${f.message}`),
      [
        "paths-b/1_b.sql:1 require-timeouts: AlterTable before any SET lock_timeout / statement_timeout",
        "paths-b/1_b.sql:2 drop-table: DROP TABLE b",
        "paths-a/1_a.sql:1 require-timeouts: AlterTable before any SET lock_timeout / statement_timeout",
      ],
    );
  });
});

describe("the pure helpers around it", () => {
  it("sqlFiles: a file as given, a directory's .sql files at any depth, sorted", async () => {
    const root = await tree("files", {
      "b.sql": "",
      "a/2.sql": "",
      "a/1.sql": "",
      "c.txt": "",
      "d.sql.bak": "",
    });
    assert.deepEqual(
      (await sqlFiles([join(root, "c.txt"), root])).map((f) => f.slice(root.length + 1)),
      ["c.txt", "a/1.sql", "a/2.sql", "b.sql"],
    );
  });

  it("migrationName: Prisma's directory, a file without its extension, a nested path as is", () => {
    const cases: Array<[string, string]> = [
      ["20260101000000_users/migration.sql", "20260101000000_users"],
      ["1700000000000_a.sql", "1700000000000_a"],
      ["1700000000000_a.up.sql", "1700000000000_a.up"],
      ["1700000000000_b.ts", "1700000000000_b"],
      ["noext", "noext"],
      ["x/y/migration.sql", "x/y/migration.sql"],
      ["x/other.sql", "x/other.sql"],
    ];
    for (const [rel, want] of cases) assert.equal(migrationName(rel), want, rel);
  });

  it("formatFindings: file:line: severity [rule] message, then why and instead, blocks joined by a newline", () => {
    const f = (n: number): LintFinding => ({
      file: `m/${n}.sql`,
      line: n,
      rule: "drop-table",
      severity: "error",
      message: `DROP TABLE t${n}`,
      why: "why text",
      instead: "instead text",
    });
    assert.equal(
      formatFindings([f(1), f(2)]),
      "m/1.sql:1: error [drop-table] DROP TABLE t1\n  why: why text\n  instead: instead text\n" +
        "m/2.sql:2: error [drop-table] DROP TABLE t2\n  why: why text\n  instead: instead text",
    );
    assert.equal(formatFindings([]), "");
  });
});
