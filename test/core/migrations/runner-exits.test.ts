// Issue 22 (session 11): the second half of runner-edges.test.ts (split so a mutant of the first half
// dies in the first, shorter file): what migrate() refuses before the tool runs, what the tool's exit
// means (127/126, a failure, the guard's verdict, INVALID indexes, no retry), and a tool that exited 0
// while the database named did not move (issue 21), through stand-ins.
import assert from "node:assert/strict";
import { chmod, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { migrate, type MigrateOptions } from "../../../src/core/migrations/runner";
import { prismaProject } from "../../helpers/prisma-standin";
import { failure } from "../../helpers/failure";
import { PG_BIN, startPostgres, type TestPostgres } from "../../helpers/postgres";

const PSQL = `${PG_BIN}/psql`;

let pg: TestPostgres;
let tmp: string;
before(async () => {
  pg = await startPostgres();
  tmp = await mkdtemp(join(tmpdir(), "runner-exits-"));
  await mkdir(join(tmp, "npm-ro"));
  for (const f of ["1_a.sql", "2_b.js", "3_c.ts"])
    await writeFile(join(tmp, "npm-ro", f), "-- Up Migration\n");
});
after(async () => {
  await pg?.close();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

describe("what a run refuses before it starts, and what a tool's exit means", () => {
  let url: string;
  let work: string;
  const run = (o: Partial<MigrateOptions> = {}) =>
    migrate({
      tool: "command",
      action: "up",
      dir: ".",
      workDir: work,
      databaseUrl: url,
      custom: { up: "true" },
      ...o,
    });
  before(async () => {
    url = await pg.createDatabase("exits");
    work = join(tmp, "exits");
    await mkdir(work);
    await writeFile(join(work, "not-executable.sh"), "#!/bin/sh\necho never\n");
    await writeFile(join(work, "garbage.dump"), "not a backup\n");
  });

  it("flags and files checked first, each error naming the key to fix", async () => {
    const backup = join(work, "garbage.dump");
    assert.deepEqual(await failure(run({ backupFile: join(work, "none.dump") })), [
      "CheckFailedError",
      `this release's backup ${join(work, "none.dump")} does not exist; take it first (\`safe-deploy backup create\`)`,
    ]);
    assert.deepEqual(await failure(run({ lockTimeout: "soon" })), [
      "ConfigError",
      '`lockTimeout` must look like 5s, 500ms or 10min, got "soon"',
    ]);
    assert.deepEqual(await failure(run({ databaseUrlEnv: "APP-URL" })), [
      "ConfigError",
      '`migrations.databaseUrlEnv` (`--database-url-env`) must be an environment variable name such as NEXT_PRIVATE_DATABASE_URL, got "APP-URL"',
    ]);
    for (const workDir of [join(work, "missing"), backup])
      assert.deepEqual(await failure(run({ workDir })), [
        "ConfigError",
        `the work directory ${workDir} is not a directory: pass the one the tool runs from as \`--work-dir\``,
      ]);
    assert.deepEqual(await failure(run({ tool: "alembic" })), [
      "ConfigError",
      `no alembic.ini in ${work}: pass the directory Alembic runs from as \`--work-dir\` (or set ALEMBIC_CONFIG)`,
    ]);
    const needsBackup = [
      "ConfigError",
      "`--critical-tables` with `--tool command` needs `--backup FILE`: command does not run the migrations in one transaction, so lost rows can only be brought back by restoring a backup taken first (`safe-deploy backup create`); it is restored automatically when rows are lost",
    ];
    const integrity = { criticalTables: ["orders"] };
    assert.deepEqual(await failure(run({ integrity })), needsBackup);
    assert.deepEqual(
      await failure(run({ integrity, action: "down", custom: { up: "true", down: "true" } })),
      needsBackup,
    );
    assert.deepEqual(await failure(run({ action: "down" })), [
      "ConfigError",
      "no `down` command configured for `--tool command`: pass the shell command that runs it with `--command` (`{target}` is replaced by N or REV)",
    ]);
    // A critical table that is nowhere: the migrations ran, the name is what is wrong.
    assert.deepEqual(await failure(run({ integrity: { criticalTables: ["order"] }, backupFile: backup })), [
      "ConfigError",
      "critical table public.order does not exist, before or after the migrations, so its rows were not checked (the database has no tables); fix the name in --critical-tables / integrity.criticalTables (schema.table, spelt as in the database). The migrations did run: schema version (none) -> (none)",
    ]);
  });

  it("exit 127 and 126: the tool never started; another exit is a failed run with its output; the guard's verdict is the row loss", async () => {
    assert.deepEqual(await failure(run({ custom: { up: "no-such-tool-xyz up" } })), [
      "CannotRunError",
      `command up could not start in ${work} (exit 127): /bin/sh: 1: no-such-tool-xyz: not found; check the command given with \`--command\` and the PATH it runs with`,
    ]);
    assert.deepEqual(await failure(run({ custom: { up: "./not-executable.sh" } })), [
      "CannotRunError",
      `command up could not start in ${work} (exit 126): /bin/sh: 1: ./not-executable.sh: Permission denied; check the command given with \`--command\` and the PATH it runs with`,
    ]);
    assert.deepEqual(await failure(run({ custom: { up: `echo "applying $DATABASE_URL"; exit 3` } })), [
      "CheckFailedError",
      `command up failed (exit 3); schema version before (none), now (none):\napplying postgres://${pg.user}:***@127.0.0.1:${pg.port}/exits`,
    ]);
    const verdict = `echo "ERROR:  safe-deploy integrity check: public.orders would lose 20.0% of its rows (50 -> 40)"; exit 1`;
    assert.deepEqual(await failure(run({ custom: { up: verdict } })), [
      "CheckFailedError",
      "integrity check failed: public.orders would lose 20.0% of its rows (50 -> 40); limit is 0% (--max-row-loss-percent / integrity.maxRowLossPercent). The migrations' transaction was rolled back, so no row was lost: schema version still (none). Fix the migration, or raise the limit if the loss is intended",
    ]);
    const [, limited] = await failure(
      run({
        custom: { up: verdict },
        integrity: { criticalTables: ["orders"], maxRowLossPercent: 5 },
        backupFile: join(work, "garbage.dump"),
      }),
    );
    assert.match(limited, /; limit is 5% \(--max-row-loss-percent/);
    // Another failure is not retried, whatever --lock-retries says.
    const lines: string[] = [];
    await failure(
      run({
        custom: { up: "echo 'ERROR:  syntax error'; exit 1" },
        lockRetries: 2,
        log: (l) => lines.push(l),
      }),
    );
    assert.deepEqual(lines, ["migrate up with command: from (none)"]);
    // The same words with exit 0 are only output.
    assert.equal(
      (await run({ custom: { up: verdict.replace("exit 1", "true") } })).output.includes("would lose"),
      true,
    );
  });

  it("INVALID indexes: one left by a run that exited 0 fails it; a failed run names only the ones it left", async () => {
    await pg.query(
      "CREATE TABLE dup (v int); INSERT INTO dup VALUES (1), (1); CREATE TABLE dup2 (v int); INSERT INTO dup2 VALUES (2), (2)",
      [],
      "exits",
    );
    await pg.query("CREATE UNIQUE INDEX CONCURRENTLY old_uq ON dup (v)", [], "exits").catch(() => {});
    const cic = `${PSQL} "$DATABASE_URL" -Xqc "CREATE UNIQUE INDEX CONCURRENTLY new_uq ON dup2 (v)" 2>/dev/null`;
    assert.deepEqual(await failure(run({ custom: { up: `${cic}; true` } })), [
      "CheckFailedError",
      "command up left invalid indexes: public.new_uq, public.old_uq (a CONCURRENTLY build was cut short); DROP INDEX CONCURRENTLY them and re-run",
    ]);
    await pg.query("DROP INDEX new_uq", [], "exits");
    // A lock_timeout after a CONCURRENTLY build was cut short is not retried: the retry could only fail
    // with "already exists" and hide the real cause.
    const lines: string[] = [];
    const [, cut] = await failure(
      run({
        custom: { up: `${cic}; echo "ERROR:  canceling statement due to lock timeout"; exit 1` },
        lockRetries: 1,
        log: (l) => lines.push(l),
      }),
    );
    assert.match(cut, /^command up failed \(exit 1\); .*\nlock_timeout \(5s\) cancelled the migration: /s);
    assert.match(cut, /\nthe run left INVALID index public\.new_uq /);
    assert.deepEqual(lines, ["migrate up with command: from (none)"]);
    await pg.query("DROP INDEX new_uq", [], "exits");
    assert.deepEqual(await failure(run({ custom: { up: `${cic}; echo failed; exit 1` } })), [
      "CheckFailedError",
      'command up failed (exit 1); schema version before (none), now (none):\nfailed\nthe run left INVALID index public.new_uq (a CREATE INDEX CONCURRENTLY cut short); re-running fails with "already exists" until you DROP INDEX CONCURRENTLY public.new_uq',
    ]);
  });
});

describe("the tool exited 0 but the database named did not move (issue 21)", () => {
  const bins: string[] = [];
  const path = process.env.PATH;
  after(async () => {
    process.env.PATH = path;
    delete process.env.PRISMA_STANDIN_URL_ENV;
    delete process.env.STANDIN_ALEMBIC;
    for (const b of bins) await rm(b, { recursive: true, force: true });
  });
  const fix =
    "Check that database, then make the tool read DATABASE_URL, or set `migrations.databaseUrlEnv` (`--database-url-env`) to the variable the tool reads: safe-deploy then sets it to the database named";

  it("node-pg-migrate (a stand-in that migrates nothing here): the migrations still pending are named", async () => {
    const url = await pg.createDatabase("npm_elsewhere");
    const bin = await mkdtemp(join(tmpdir(), "npm-standin-"));
    bins.push(bin);
    await writeFile(join(bin, "node-pg-migrate"), "#!/bin/sh\necho 'No migrations to run!'\n");
    await chmod(join(bin, "node-pg-migrate"), 0o755);
    process.env.PATH = `${bin}:${path}`;
    try {
      const o = { tool: "node-pg-migrate" as const, dir: "npm-ro", workDir: tmp, databaseUrl: url };
      const message = (n: number, pending: string) => [
        "CheckFailedError",
        `node-pg-migrate exited 0 with ${n} migration(s) pending (${pending}), but pgmigrations in the database named (localhost:${pg.port}/npm_elsewhere) did not move: still at (none). The migrations ran against another database: the tool reads its URL from another variable or a config file. ${fix}`,
      ];
      assert.deepEqual(await failure(migrate({ ...o, action: "up" })), message(3, "1_a, 2_b, 3_c"));
      assert.deepEqual(
        await failure(migrate({ ...o, action: "up", target: "2_b" })),
        message(3, "1_a, 2_b, 3_c"),
      );
      // down moves nothing either, and says nothing about it.
      assert.equal((await migrate({ ...o, action: "down" })).output, "No migrations to run!\n");
    } finally {
      process.env.PATH = path;
    }
  });

  it("alembic reporting an upgrade it ran elsewhere: the database it names is in the message", async () => {
    const url = await pg.createDatabase("alembic_elsewhere");
    const work = join(tmp, "alembic-elsewhere");
    await mkdir(join(work, "bin"), { recursive: true });
    await writeFile(join(work, "alembic.ini"), "[alembic]\n");
    await writeFile(
      join(work, "bin/alembic"),
      `#!/bin/sh
case "$1" in
  current) echo "Current revision(s) for postgresql://app:***@db.other:5432/app:"; echo "Rev: b2 (head)" ;;
  heads) echo "b2 (head)" ;;
  upgrade) echo "INFO  [alembic.runtime.migration] Running upgrade a1 -> b2, add index" >&2 ;;
esac
`,
    );
    await chmod(join(work, "bin/alembic"), 0o755);
    process.env.PATH = `${join(work, "bin")}:${path}`;
    try {
      assert.deepEqual(
        await failure(
          migrate({
            tool: "alembic",
            action: "up",
            dir: ".",
            workDir: work,
            databaseUrl: url,
            targetChecked: true,
          }),
        ),
        [
          "CheckFailedError",
          `alembic reported applying b2, but alembic_version in the database named (localhost:${pg.port}/alembic_elsewhere) did not move: still at (none). The migrations ran against another database (alembic current says it is b2 in postgresql://app:***@db.other:5432/app): env.py takes its URL from elsewhere than DATABASE_URL (Alembic's default env.py reads \`sqlalchemy.url\` in alembic.ini). ${fix}`,
        ],
      );
    } finally {
      process.env.PATH = path;
    }
  });

  it("prisma (the stand-in) reading another variable: first what it applied there, then what is still pending here", async () => {
    const url = await pg.createDatabase("prisma_named");
    const other = await pg.createDatabase("prisma_other");
    const p = await prismaProject('  url = env("DATABASE_URL")\n', {
      "20260101000000_init": "CREATE TABLE t (id int);",
    });
    bins.push(p.work);
    process.env.PRISMA_STANDIN_URL_ENV = "OTHER_URL";
    process.env.OTHER_URL = other;
    try {
      const o = {
        tool: "prisma" as const,
        action: "up" as const,
        dir: "prisma/migrations",
        workDir: p.work,
        databaseUrl: url,
      };
      const tail = `did not move: still at (none). The migrations ran against another database: schema.prisma's datasource reads another variable than DATABASE_URL (\`url = env("...")\`, or \`directUrl\`). ${fix}`;
      const named = `_prisma_migrations in the database named (localhost:${pg.port}/prisma_named)`;
      assert.deepEqual(await failure(migrate(o)), [
        "CheckFailedError",
        `prisma reported applying 20260101000000_init, but ${named} ${tail}`,
      ]);
      assert.deepEqual(await failure(migrate(o)), [
        "CheckFailedError",
        `prisma exited 0 with 1 migration(s) pending (20260101000000_init), but ${named} ${tail}`,
      ]);
    } finally {
      delete process.env.PRISMA_STANDIN_URL_ENV;
      delete process.env.OTHER_URL;
    }
  });
});
