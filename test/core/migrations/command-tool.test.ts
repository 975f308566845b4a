import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { runDrift } from "../../../src/cli/commands/drift";
import { runRehearse } from "../../../src/cli/commands/rehearse";
import { currentIndex, fileIds, sqlMigrationFiles } from "../../../src/core/migrations/command-files";
import { splitPassword } from "../../../src/core/migrations/rehearsal";
import { migrate } from "../../../src/core/migrations/runner";
import { startPostgres, type TestPostgres } from "../../helpers/postgres";

// Issue 21 point 3: `--tool command` in rehearse and drift, with a plain SQL directory and the team's
// own runner (test/fixtures/migrations/sql-runner: psql, one file per run, recorded in schema_migrations).
const WORK = join(__dirname, "../../fixtures/migrations/sql-runner");
const APPLY = "sh apply.sh {file}";
const CURRENT = "sh current.sh";

describe("command-files", () => {
  it("lists *.sql and NAME/migration.sql in order; a runner's record names a file by path, name, bare name or version", async () => {
    assert.deepEqual(await sqlMigrationFiles(join(WORK, "migrations")), [
      "20260101_create_items.sql",
      "20260102_items_price.sql",
      "20260103_items_sold.sql",
    ]);
    assert.deepEqual(fileIds("20260102_items_price.sql"), [
      "20260102_items_price.sql",
      "20260102_items_price",
      "20260102",
    ]);
    assert.deepEqual(fileIds("20260101000000_init/migration.sql"), [
      "20260101000000_init/migration.sql",
      "20260101000000_init",
      "20260101000000",
    ]);
    const files = ["1_a.sql", "2_b.sql"];
    assert.equal(currentIndex(files, "\n"), -1);
    assert.equal(currentIndex(files, "2\n"), 1);
    assert.throws(() => currentIndex(files, "7"), /printed "7", which names no migration file/);
  });
});

describe("--tool command with a plain SQL directory, real PostgreSQL", () => {
  let pg: TestPostgres;
  let tmp: string;
  let live: string;
  let backup: string;
  before(async () => {
    pg = await startPostgres();
    tmp = await mkdtemp(join(tmpdir(), "sd-command-tool-"));
    live = await pg.createDatabase("live");
    await migrate({
      action: "up",
      tool: "command",
      dir: "migrations",
      workDir: WORK,
      databaseUrl: live,
      custom: { up: "sh apply.sh migrations/20260101_create_items.sql" },
    });
    backup = join(tmp, "live.dump");
    const { url: bare, env } = splitPassword(live);
    await promisify(execFile)("/usr/lib/postgresql/15/bin/pg_dump", ["-Fc", "-f", backup, bare], {
      env: { ...process.env, ...env },
    });
  });
  after(async () => {
    await pg?.close();
    await rm(tmp, { recursive: true, force: true });
  });

  const base = () => ({
    backup,
    migrations: "migrations",
    tool: "command",
    workDir: WORK,
    databaseUrl: pg.url("postgres"),
  });

  it("rehearse with {file} applies each pending file as its own step, after the one --current-command names", async () => {
    const lines: string[] = [];
    await runRehearse({ ...base(), command: APPLY, currentCommand: CURRENT, out: (t) => lines.push(t) });
    const text = lines.join("\n");
    assert.match(text, /^20260102_items_price\.sql: \d+\.\d\d s\n {2}locks waited: none\n/m);
    assert.match(text, /^20260103_items_sold\.sql: \d+\.\d\d s\n/m);
    assert.doesNotMatch(text, /20260101_create_items/);
    assert.match(text, /public\.schema_migrations: 1 -> 3 \(\+2\)/);
  });

  it("rehearse without {file} runs the command once, as one step", async () => {
    const lines: string[] = [];
    await runRehearse({ ...base(), command: "sh apply-all.sh", out: (t) => lines.push(t) });
    assert.match(lines.join("\n"), /^all pending \(one run of --command\): \d+\.\d\d s\n/m);
  });

  it("a command that applies elsewhere: the runner's own table in the scratch copy did not move, so the rehearsal fails", async () => {
    // Another database at the same point (a staging copy, say), where the command really applies.
    const other = await pg.createDatabase("other");
    await migrate({
      action: "up",
      tool: "command",
      dir: "migrations",
      workDir: WORK,
      databaseUrl: other,
      custom: { up: "sh apply.sh migrations/20260101_create_items.sql" },
    });
    process.env.SD_TEST_OTHER_URL = other;
    try {
      const lines: string[] = [];
      await assert.rejects(
        runRehearse({
          ...base(),
          command: 'DATABASE_URL="$SD_TEST_OTHER_URL" sh apply.sh {file}',
          currentCommand: CURRENT,
          out: (t) => lines.push(t),
        }),
        /rehearsal failed: a migration failed/,
      );
      assert.match(
        lines.join("\n"),
        /migration failed: the command exited 0 for 20260102_items_price\.sql, but the `current` command on the scratch database says 20260101_create_items\.sql: the apply command did not act on the database in DATABASE_URL/,
      );
      const moved = await pg.query<{ v: string }>(
        "SELECT max(version) AS v FROM schema_migrations",
        [],
        "other",
      );
      assert.equal(moved[0].v, "20260102", "the command did apply to the other database");
    } finally {
      delete process.env.SD_TEST_OTHER_URL;
    }
  });

  it("drift with {file} and --current-command builds only the files the live database has applied; a manual change shows", async () => {
    const db = await pg.createDatabase("drift_live");
    for (const f of ["20260101_create_items.sql", "20260102_items_price.sql"])
      await migrate({
        action: "up",
        tool: "command",
        dir: "migrations",
        workDir: WORK,
        databaseUrl: db,
        custom: { up: `sh apply.sh migrations/${f}` },
      });
    const o = {
      migrations: "migrations",
      tool: "command",
      workDir: WORK,
      databaseUrl: db,
      command: APPLY,
      currentCommand: CURRENT,
    };
    const lines: string[] = [];
    await runDrift({ ...o, out: (t) => lines.push(t) });
    assert.equal(
      lines.join("\n"),
      "no drift: the live schema matches the migrations at version 20260102_items_price.sql",
    );
    await pg.query("CREATE INDEX manual_idx ON items (name)", [], "drift_live");
    await assert.rejects(runDrift({ ...o, out: () => {} }), /schema drift: 1 difference/);
  });
});
