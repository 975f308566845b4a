import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, it } from "node:test";
import { runRehearse } from "../../../src/cli/commands/rehearse";
import { lintGate } from "../../../src/core/migrations/lint";
import { PG_BIN, startPostgres } from "../../helpers/postgres";

const run = promisify(execFile);

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), "sd-lint-gate-"));
  await writeFile(join(dir, "1700000000000_ok.sql"), "-- Up Migration\nALTER TABLE t ADD COLUMN a text;\n");
  await writeFile(
    join(dir, "1700000000001_bad.sql"),
    "-- Up Migration\nALTER TABLE t ALTER COLUMN a SET NOT NULL;\n",
  );
});
after(async () => rm(dir, { recursive: true, force: true }));

it("lintGate refuses on a lint error, naming file, line, rule and the way out", async () => {
  await assert.rejects(lintGate({ command: "migrate up", dir }), (e: Error) => {
    assert.equal(e.name, "CheckFailedError");
    assert.match(e.message, /^migrate up refused: lint found 1 error\(s\)/);
    assert.match(e.message, /1700000000001_bad\.sql:2 \[set-not-null\]/);
    assert.match(e.message, /--allow-lint "REASON"/);
    return true;
  });
});

it("lintGate goes ahead with --allow-lint REASON and prints the reason; an empty reason is a usage error", async () => {
  const lines: string[] = [];
  const found = await lintGate({ command: "rehearse", dir, allowLint: "20 rows", out: (t) => lines.push(t) });
  assert.deepEqual(
    found.map((f) => f.rule),
    ["set-not-null"],
    "require-timeouts is left to the runner",
  );
  assert.match(lines.join("\n"), /rehearse: lint found 1 error\(s\), allowed: 20 rows/);
  await assert.rejects(lintGate({ command: "rehearse", dir, allowLint: " " }), /needs the reason/);
});

it(
  "rehearse judges only what the backup's database has not applied: a refusal leaves no scratch database",
  { timeout: 180_000 },
  async () => {
    const pg = await startPostgres();
    const dumps = await mkdtemp(join(tmpdir(), "sd-lint-gate-dumps-"));
    try {
      const dump = async (db: string, applied: string[]) => {
        await pg.createDatabase(db);
        await pg.query(
          `CREATE TABLE t (id int PRIMARY KEY, a text);
         CREATE TABLE pgmigrations (id serial PRIMARY KEY, name varchar(255) NOT NULL, run_on timestamp NOT NULL);`,
          [],
          db,
        );
        for (const name of applied)
          await pg.query("INSERT INTO pgmigrations (name, run_on) VALUES ($1, now())", [name], db);
        // Beside the migrations directory, not in it (the tool would take it for a migration).
        const file = join(dumps, `${db}.dump`);
        await run(join(PG_BIN, "pg_dump"), ["-Fc", "-f", file, "-d", pg.url(db)]);
        return file;
      };
      // The repository's own node-pg-migrate runs them (node_modules/.bin of --work-dir).
      const o = {
        migrations: dir,
        workDir: join(__dirname, "../../.."),
        databaseUrl: pg.url("postgres"),
        out: () => {},
      };
      const scratches = async () =>
        (
          await pg.query<{ datname: string }>(
            "SELECT datname FROM pg_database WHERE datname LIKE 'safe_deploy_rehearsal%'",
          )
        ).map((r) => r.datname);
      // The bad migration is already applied on the backup's database: nothing to judge (refused before).
      await runRehearse({
        ...o,
        backup: await dump("both_applied", ["1700000000000_ok", "1700000000001_bad"]),
      });
      // Pending there: refused after the restore, before any migration ran, the scratch copy dropped.
      await assert.rejects(
        runRehearse({ ...o, backup: await dump("one_applied", ["1700000000000_ok"]) }),
        /rehearse refused: lint found 1 error.*1700000000001_bad\.sql:2 \[set-not-null\]/s,
      );
      assert.deepEqual(await scratches(), []);
      await assert.rejects(
        runRehearse({ ...o, backup: join(dumps, "one_applied.dump"), allowLint: " " }),
        /needs the reason/,
      );
    } finally {
      await pg.close();
      await rm(dumps, { recursive: true, force: true });
    }
  },
);

it("migrate up runs the lint first: it refuses before touching the database; --allow-lint lets it go on", async () => {
  const { runMigrate } = await import("../../../src/cli/commands/migrate");
  const o = {
    action: "up",
    tool: "node-pg-migrate",
    dir: ".",
    workDir: dir,
    // Port 1 on loopback: nothing listens, so reaching the server would fail differently.
    databaseUrl: "postgres://nobody@127.0.0.1:1/none",
    out: () => {},
  };
  await assert.rejects(runMigrate(o), /migrate up refused: lint found 1 error/);
  await assert.rejects(runMigrate({ ...o, allowLint: "demo table" }), (e: Error) => {
    assert.doesNotMatch(e.message, /lint found/);
    return true;
  });
});
