// Issue 22: lintGate in the test process, one small PostgreSQL server: what the target database lists as
// applied passes, a database that does not answer judges everything (the gate never fails on the
// connection), the baseline file, --allow-lint without a printer, the exact refusal.
import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, it } from "node:test";
import { writeBaseline } from "../../../src/core/migrations/baseline";
import { lintGate, lintMigrations } from "../../../src/core/migrations/lint";
import { startPostgres, type TestPostgres } from "../../helpers/postgres";

let tmp: string;
let dir: string;
let pg: TestPostgres;
before(async () => {
  tmp = await mkdtemp(join(tmpdir(), "sd-lint-gate-edges-"));
  dir = join(tmp, "migrations");
  await mkdir(dir);
  await writeFile(join(dir, "1700000000000_ok.sql"), "-- Up Migration\nALTER TABLE t ADD COLUMN a text;\n");
  await writeFile(join(dir, "1700000000001_bad.sql"), "-- Up Migration\nDROP TABLE old;\nTRUNCATE t;\n");
  // A warning only: never refused, always returned.
  await writeFile(join(dir, "1700000000002_warn.sql"), "-- Up Migration\nDROP INDEX i;\n");
  pg = await startPostgres();
});
after(async () => {
  await pg?.close();
  await rm(tmp, { recursive: true, force: true });
});

const refusal = (command: string, d: string) =>
  `${command} refused: lint found 2 error(s) in the migrations:\n` +
  `  ${d}/1700000000001_bad.sql:2 [drop-table] DROP TABLE old\n` +
  `  ${d}/1700000000001_bad.sql:3 [truncate] TRUNCATE t\n` +
  `Fix them (see \`safe-deploy lint ${d}\` and docs/lint-rules.md), allow one with \`-- safe-deploy: allow RULE\` in the file, ` +
  `or pass --allow-lint "REASON" to run them on purpose`;

it("refuses with every error listed and the three ways out, word for word (CheckFailedError)", async () => {
  await assert.rejects(
    lintGate({ command: "migrate up", dir, baseline: join(tmp, "none.json") }),
    (e: Error) => {
      assert.equal(e.name, "CheckFailedError");
      assert.equal(e.message, refusal("migrate up", dir));
      return true;
    },
  );
});

it("a directory that does not exist: nothing to judge", async () => {
  assert.deepEqual(await lintGate({ command: "migrate up", dir: join(tmp, "nope") }), []);
  const file = join(dir, "1700000000001_bad.sql");
  assert.deepEqual(await lintGate({ command: "migrate up", dir: file }), [], "a file is not a directory");
});

it("--allow-lint goes ahead with every finding returned, with or without a printer", async () => {
  const found = await lintGate({
    command: "rehearse",
    dir,
    allowLint: "old is empty",
    baseline: join(tmp, "none.json"),
  });
  assert.deepEqual(
    found.map((f) => f.rule),
    ["drop-table", "truncate", "drop-index-without-concurrently"],
  );
  const lines: string[] = [];
  await lintGate({ command: "rehearse", dir, allowLint: "old is empty", out: (t) => lines.push(t) });
  assert.deepEqual(lines, [
    `rehearse: lint found 2 error(s), allowed: old is empty\n` +
      `  ${dir}/1700000000001_bad.sql:2 [drop-table] DROP TABLE old\n` +
      `  ${dir}/1700000000001_bad.sql:3 [truncate] TRUNCATE t`,
  ]);
});

it("warnings alone pass and are returned; the baseline file accepts the errors it lists", async () => {
  const baseline = join(tmp, ".safe-deploy", "lint-baseline.json");
  await mkdir(join(tmp, ".safe-deploy"));
  const all = (await lintMigrations(dir, { timeoutsSetByRunner: true })).findings;
  await writeBaseline(
    baseline,
    all.filter((f) => f.severity === "error"),
  );
  const found = await lintGate({ command: "migrate up", dir, baseline });
  assert.deepEqual(
    found.map((f) => `${f.severity} ${f.rule}`),
    ["warning drop-index-without-concurrently"],
  );
});

it("the target database's version table: its applied migrations pass; a custom command's history is not read", async () => {
  const url = await pg.createDatabase("target");
  await pg.query(
    `CREATE TABLE pgmigrations (id serial PRIMARY KEY, name varchar(255) NOT NULL, run_on timestamp NOT NULL);
     INSERT INTO pgmigrations (name, run_on) VALUES ('1700000000000_ok', now()), ('1700000000001_bad', now());
     CREATE SCHEMA safe_deploy;
     CREATE TABLE safe_deploy.migration_history (name text, tool text);
     INSERT INTO safe_deploy.migration_history VALUES ('1700000000000_ok.sql', 'command'), ('1700000000001_bad.sql', 'command');`,
    [],
    "target",
  );
  const none = join(tmp, "none.json");
  const found = await lintGate({
    command: "migrate up",
    dir,
    baseline: none,
    database: { url, tool: "node-pg-migrate" },
  });
  assert.deepEqual(
    found.map((f) => f.rule),
    ["drop-index-without-concurrently"],
  );
  // `applied` given by the caller wins over the database.
  await assert.rejects(
    lintGate({
      command: "migrate up",
      dir,
      baseline: none,
      applied: new Set(),
      database: { url, tool: "node-pg-migrate" },
    }),
    /lint found 2 error/,
  );
  await assert.rejects(
    lintGate({ command: "migrate up", dir, baseline: none, database: { url, tool: "command" } }),
    /lint found 2 error/,
  );
  // Nothing listens on port 1: every migration is judged, and the refusal is lint's, not the connection's.
  await assert.rejects(
    lintGate({
      command: "migrate up",
      dir,
      baseline: none,
      database: { url: "postgres://nobody:pw@127.0.0.1:1/none", tool: "node-pg-migrate" },
    }),
    (e: Error) => {
      assert.equal(e.message, refusal("migrate up", dir));
      return true;
    },
  );
});
