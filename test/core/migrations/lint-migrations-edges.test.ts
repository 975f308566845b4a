// Issue 22 (s12): what lint-migrations.test.ts and lint-gate-edges.test.ts left open in lintMigrations
// and lintGate: an Alembic directory (real `alembic`, offline SQL) with applied and unreadable revisions,
// the project directory a code migration runs in, the PostgreSQL version and the default baseline file
// the gate uses, a blank --allow-lint reason. In process, no server.
import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { writeBaseline } from "../../../src/core/migrations/baseline";
import { checkAllowLint, lintGate, lintMigrations } from "../../../src/core/migrations/lint";

const FIXTURES = join(__dirname, "../../fixtures/migrations");

let tmp: string;
before(async () => {
  tmp = await mkdtemp(join(tmpdir(), "sd-lint-migrations-edges-"));
});
after(async () => rm(tmp, { recursive: true, force: true }));

describe("an Alembic directory", () => {
  it("each revision named by its id, linted through its offline SQL as upgrade(); applied ones skipped and counted", async () => {
    const dir = join(FIXTURES, "alembic");
    const all = await lintMigrations(dir, { timeoutsSetByRunner: true });
    assert.deepEqual(
      all.findings.map(
        (f) => `${f.file.slice(dir.length + 1)}:${f.line} ${f.migration} ${f.rule}: ${f.message}`,
      ),
      [
        "versions/b2_accounts_email_index.py:1 b2 create-index-without-concurrently: in upgrade(): CREATE INDEX accounts_email_idx on accounts without CONCURRENTLY",
      ],
    );
    assert.deepEqual(
      [all.migrations, all.skippedApplied, all.statements, all.unchecked.length],
      [2, 0, 10, 0],
    );
    const rest = await lintMigrations(dir, {
      timeoutsSetByRunner: true,
      applied: new Set(["versions/b2_accounts_email_index.py"]),
    });
    assert.deepEqual(rest.findings, []);
    assert.deepEqual([rest.migrations, rest.skippedApplied], [2, 1]);
  });

  it("a revision that needs a connection is named with its reason, the others still linted", async () => {
    const dir = join(FIXTURES, "alembic-adopt");
    const r = await lintMigrations(dir, { timeoutsSetByRunner: true });
    assert.deepEqual(
      r.unchecked.map((u) => u.file),
      [join(dir, "versions/3c4d_accounts_domain_backfill.py")],
    );
    assert.match(r.unchecked[0].reason, /needs a database connection/);
    assert.deepEqual(
      r.findings.map((f) => `${f.migration} ${f.rule}`),
      ["5e6f create-index-without-concurrently"],
    );
  });
});

describe("a code migration's working directory", () => {
  it("is the migrations directory's parent (the project), or the cwd given", async () => {
    const project = join(tmp, "project");
    await mkdir(join(project, "migrations"), { recursive: true });
    await mkdir(join(project, "sql"));
    await writeFile(join(project, "sql", "up.sql"), "DROP TABLE from_project");
    await mkdir(join(tmp, "elsewhere", "sql"), { recursive: true });
    await writeFile(join(tmp, "elsewhere", "sql", "up.sql"), "TRUNCATE from_elsewhere");
    // Read relative to the process's working directory, as a migration kept beside its SQL often is.
    await writeFile(
      join(project, "migrations", "1_read.js"),
      'const { readFileSync } = require("node:fs");\n' +
        'exports.up = (pgm) => { pgm.sql(readFileSync("sql/up.sql", "utf8")); };\n',
    );
    const messages = async (cwd?: string) =>
      (await lintMigrations(join(project, "migrations"), { timeoutsSetByRunner: true, cwd })).findings.map(
        (f) => f.message,
      );
    assert.deepEqual(await messages(), ["in up(): DROP TABLE from_project"]);
    assert.deepEqual(await messages(join(tmp, "elsewhere")), ["in up(): TRUNCATE from_elsewhere"]);
  });
});

describe("lintGate", () => {
  let dir: string;
  before(async () => {
    dir = join(tmp, "gate", "migrations");
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, "1_add.sql"), "-- Up Migration\nALTER TABLE t ADD COLUMN a int DEFAULT 0;\n");
  });

  it("judges for the PostgreSQL version it is given (a DEFAULT rewrites the table before 11)", async () => {
    assert.deepEqual(await lintGate({ command: "migrate up", dir }), []);
    await assert.rejects(
      lintGate({ command: "migrate up", dir, pgVersion: 10 }),
      /lint found 1 error\(s\) in the migrations:\n {2}.*1_add\.sql:2 \[add-column-rewrites-table\]/,
    );
  });

  it("reads .safe-deploy/lint-baseline.json of the working directory when no baseline is given", async () => {
    const project = join(tmp, "gate");
    const all = (await lintMigrations(dir, { timeoutsSetByRunner: true, pgVersion: 10 })).findings;
    assert.equal(all.length, 1);
    await mkdir(join(project, ".safe-deploy"));
    await writeBaseline(join(project, ".safe-deploy", "lint-baseline.json"), all);
    const cwd = process.cwd();
    process.chdir(project);
    try {
      assert.deepEqual(await lintGate({ command: "migrate up", dir, pgVersion: 10 }), []);
    } finally {
      process.chdir(cwd);
    }
    await assert.rejects(lintGate({ command: "migrate up", dir, pgVersion: 10 }), /lint found 1 error/);
  });

  it("a blank --allow-lint reason is a usage error (exit 2), before any lint; no flag at all is none", async () => {
    for (const reason of ["", "  \t"])
      await assert.rejects(checkAllowLint(reason), (e: Error & { exitCode?: number }) => {
        assert.equal(e.name, "ConfigError");
        assert.equal(e.exitCode, 2);
        assert.equal(e.message, '`--allow-lint` needs the reason, e.g. --allow-lint "table has 20 rows"');
        return true;
      });
    await checkAllowLint(undefined);
    await checkAllowLint("table has 20 rows");
    await assert.rejects(
      lintGate({ command: "rehearse", dir: join(tmp, "nope"), allowLint: " " }),
      /needs the reason/,
    );
  });
});
