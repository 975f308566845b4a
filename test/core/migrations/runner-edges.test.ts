// Issue 22 (session 11): what a user feels of migrate() beyond runner-core.test.ts, in process and on one
// server, so runner.ts's mutants cost seconds: connect's failure, the migration lock's wait and the
// holder it names, which actions take the lock and check the tool's target, the checksums' warnings and
// `check`, a migration role with fewer rights, and Alembic through a stand-in `alembic` on PATH.
import assert from "node:assert/strict";
import { chmod, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { Client } from "pg";
import {
  acquireMigrateLock,
  connect,
  MIGRATE_LOCK,
  migrate,
  migrationsToRevert,
  missingMigrationsDirectory,
  type MigrateOptions,
} from "../../../src/core/migrations/runner";
import { checksumEditsMessage } from "../../../src/core/migrations/checksums";
import { armRowGuard, disarmRowGuard } from "../../../src/core/migrations/guard";
import { armMigrationMarker, disarmMigrationMarker } from "../../../src/core/migrations/marker";
import { until, within } from "../../helpers/bounded";
import { failure } from "../../helpers/failure";
import { freePort, PG_BIN, startPostgres, type TestPostgres } from "../../helpers/postgres";

const PSQL = `${PG_BIN}/psql`;
/** The migration lock's holders in the database, as the tool's own session sees them. */
const LOCKS =
  "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' " +
  `AND classid = ${MIGRATE_LOCK[0]} AND objid = ${MIGRATE_LOCK[1]} AND objsubid = 2 AND granted`;

let pg: TestPostgres;
let tmp: string;
before(async () => {
  pg = await startPostgres();
  // A prepared transaction holds its locks with no session: the lock's holder then has no pid to name.
  await pg.query("ALTER SYSTEM SET max_prepared_transactions = 2");
  await pg.stop();
  await pg.start();
  tmp = await mkdtemp(join(tmpdir(), "runner-edges-"));
});
after(async () => {
  await pg?.close();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

describe("connect", () => {
  it("a URL that is not one is a ConfigError; a server that does not answer is exit 3 with the password masked", async () => {
    assert.equal((await failure(connect("not a url")))[0], "ConfigError");
    const port = await freePort();
    const [name, message] = await failure(connect(`postgres://app:s3cret-pw@127.0.0.1:${port}/app`));
    assert.equal(name, "CannotRunError");
    assert.equal(
      message,
      `the database does not answer (postgres://app:***@127.0.0.1:${port}/app): connect ECONNREFUSED 127.0.0.1:${port}; check --database-url / DATABASE_URL and that the server is up`,
    );
    // The server's own error can hold the password (here the database's name): masked too.
    const url = pg.url(`db-${pg.password}`);
    const [, refused] = await failure(connect(url));
    assert.equal(
      refused,
      `the database does not answer (postgres://${pg.user}:***@127.0.0.1:${pg.port}/db-${pg.password}): database "db-***" does not exist; check --database-url / DATABASE_URL and that the server is up`,
    );
  });

  it("names its session: safe-deploy by default, else as asked", async () => {
    const name = async (c: Client) => {
      try {
        return (await c.query<{ a: string }>("SELECT current_setting('application_name') AS a")).rows[0].a;
      } finally {
        await c.end();
      }
    };
    assert.equal(await name(await connect(pg.url())), "safe-deploy");
    assert.equal(await name(await connect(pg.url(), "deploy-42")), "deploy-42");
  });
});

describe("the migration lock", () => {
  let url: string;
  const run = (o: Partial<MigrateOptions> = {}) =>
    migrate({
      tool: "command",
      action: "up",
      dir: ".",
      workDir: tmp,
      databaseUrl: url,
      custom: {
        up: `${PSQL} "$DATABASE_URL" -XAtc "${LOCKS}"`,
        current: `${PSQL} "$DATABASE_URL" -XAtc "${LOCKS}"`,
      },
      ...o,
    });
  before(async () => {
    url = await pg.createDatabase("lock");
  });

  it("held by another session: up fails naming it and how to end it; it is not waited for past the limit", async () => {
    const holder = await connect(url, "deploy-42");
    try {
      await holder.query("SELECT pg_advisory_lock($1, $2)", MIGRATE_LOCK);
      const { rows } = await holder.query<{ pid: number; since: string }>(
        "SELECT pg_backend_pid() AS pid, backend_start::text AS since FROM pg_stat_activity WHERE pid = pg_backend_pid()",
      );
      const { pid, since } = rows[0];
      assert.deepEqual(await failure(run({ lockWaitSeconds: 0 })), [
        "CannotRunError",
        `another migration run holds the migration lock: pid ${pid} (application_name "deploy-42", connected since ${since}); waited 0 s. Wait for it to finish, or end it with SELECT pg_terminate_backend(${pid}) if it is stuck`,
      ]);
      // `current` only reads: it runs beside the holder, which its session sees as the only one.
      assert.equal((await run({ action: "current", lockWaitSeconds: 0 })).output.trim(), "1");
      // Released while a run waits: that run goes on.
      const waiting = run({ lockWaitSeconds: 20 });
      await until("the run to try the lock", async () => {
        const r = await holder.query(
          "SELECT 1 FROM pg_stat_activity WHERE application_name = 'safe-deploy migrate' AND query LIKE '%pg_try_advisory_lock%'",
        );
        return r.rows.length > 0;
      });
      await holder.query("SELECT pg_advisory_unlock($1, $2)", MIGRATE_LOCK);
      assert.equal((await within("the waiting run to take the lock", waiting)).output.trim(), "1");
    } finally {
      await holder.end();
    }
  });

  it("the same lock key held in another database is not the holder named (advisory locks are per database)", async () => {
    const otherUrl = await pg.createDatabase("lock_other_app");
    const other = await connect(otherUrl, "other app's migration");
    const holder = await connect(url, "deploy-43");
    try {
      await other.query("SELECT pg_advisory_lock($1, $2)", MIGRATE_LOCK);
      await holder.query("SELECT pg_advisory_lock($1, $2)", MIGRATE_LOCK);
      const pid = (await holder.query<{ pid: number }>("SELECT pg_backend_pid() AS pid")).rows[0].pid;
      const [, message] = await failure(run({ lockWaitSeconds: 0 }));
      assert.match(message, new RegExp(`: pid ${pid} \\(application_name "deploy-43", `));
      assert.match(message, new RegExp(`pg_terminate_backend\\(${pid}\\) if it is stuck$`));
    } finally {
      await holder.end();
      await other.end();
    }
  });

  it("held by a prepared transaction (no session): says so and leaves the pid to find", async () => {
    const holder = await connect(url);
    try {
      await holder.query("BEGIN");
      await holder.query("SELECT pg_advisory_xact_lock($1, $2)", MIGRATE_LOCK);
      await holder.query("PREPARE TRANSACTION 'runner-edges'");
      const client = await connect(url);
      try {
        assert.deepEqual(await failure(acquireMigrateLock(client, 0)), [
          "CannotRunError",
          "another migration run holds the migration lock: another session; waited 0 s. Wait for it to finish, or end it with SELECT pg_terminate_backend(PID) if it is stuck",
        ]);
      } finally {
        await client.end();
      }
    } finally {
      await holder.query("ROLLBACK PREPARED 'runner-edges'").catch(() => {});
      await holder.end();
    }
  });
});

describe("checksums of a custom command's .sql files", () => {
  let url: string;
  let dir: string;
  const lines: string[] = [];
  const run = (o: Partial<MigrateOptions> = {}) =>
    migrate({
      tool: "command",
      action: "up",
      dir: "sums",
      workDir: tmp,
      databaseUrl: url,
      custom: { up: "true", down: "true", check: "true", current: "echo at-head" },
      log: (l) => lines.push(l),
      ...o,
    });
  const rows = async () =>
    (
      await pg.query<{ name: string; by: string }>(
        "SELECT name, recorded_by AS by FROM safe_deploy.migration_history ORDER BY name",
        [],
        "sums",
      )
    ).map((r) => `${r.name} ${r.by}`);
  before(async () => {
    url = await pg.createDatabase("sums");
    dir = join(tmp, "sums");
    await mkdir(dir);
    await writeFile(join(dir, "a.sql"), "CREATE TABLE a (id int);\n");
  });

  it("up records every file, down records none it did not apply, an edit is a warning on up and a failed check", async () => {
    await run();
    assert.deepEqual(await rows(), ["a.sql up"]);
    await writeFile(join(dir, "b.sql"), "CREATE TABLE b (id int);\n");
    // down: a command has no table saying what is applied, so only what was recorded stays recorded.
    await run({ action: "down" });
    assert.deepEqual(await rows(), ["a.sql up"]);
    assert.deepEqual(lines.splice(0), [
      "migrate up with command: from (none)",
      "migrate up: now at (none)",
      "migrate up: checksums recorded for a.sql",
      "migrate down with command: from (none)",
      "migrate down: now at (none)",
    ]);
    await writeFile(join(dir, "a.sql"), "CREATE TABLE a (id bigint);\n");
    const edits = [{ name: "a.sql", file: "a.sql", change: "edited" as const }];
    await run();
    assert.deepEqual(await rows(), ["a.sql up", "b.sql up"]);
    assert.deepEqual(lines.splice(0), [
      `warning: ${checksumEditsMessage(edits)}`,
      "migrate up with command: from (none)",
      "migrate up: now at (none)",
      "migrate up: checksums recorded for b.sql",
    ]);
    assert.deepEqual(await failure(run({ action: "check" })), [
      "CheckFailedError",
      checksumEditsMessage(edits),
    ]);
    // current reads nothing of the checksums, and counts no rows even when given critical tables.
    const current = await run({ action: "current", integrity: { criticalTables: ["a"] } });
    assert.deepEqual(current, { before: undefined, after: undefined, output: "at-head\n" });
    assert.deepEqual(lines.splice(0), [
      "migrate current with command: from (none)",
      "migrate current: now at (none)",
    ]);
  });
});

describe("a migration role with fewer rights", () => {
  const limUrl = (db: string) => `postgres://lim:lim-pw-77@127.0.0.1:${pg.port}/${db}`;
  before(async () => {
    await pg.query("CREATE ROLE lim LOGIN PASSWORD 'lim-pw-77'");
  });

  it("no CREATE and no read of safe_deploy: up runs with warnings saying what is not checked; check cannot run", async () => {
    const url = await pg.createDatabase("limited");
    const dir = join(tmp, "limited");
    await mkdir(dir);
    await writeFile(join(dir, "a.sql"), "SELECT 1;\n");
    const o = {
      tool: "command" as const,
      dir: "limited",
      workDir: tmp,
      custom: { up: "true", check: "true" },
    };
    // The owner's first run made safe_deploy; a table the role may not read is none of its business.
    await migrate({ ...o, action: "up", databaseUrl: url });
    await pg.query("CREATE TABLE private_t (id int); INSERT INTO private_t VALUES (1)", [], "limited");
    const lines: string[] = [];
    const r = await migrate({
      ...o,
      action: "up",
      databaseUrl: limUrl("limited"),
      log: (l) => lines.push(l),
    });
    assert.deepEqual(r, { before: undefined, after: undefined, output: "" });
    const unreadable =
      'the checksums of applied migrations in safe_deploy.migration_history could not be read (permission denied for schema safe_deploy), so edits of applied migrations are not checked: let role "lim" read them (GRANT USAGE ON SCHEMA safe_deploy TO "lim"; GRANT SELECT ON safe_deploy.migration_history TO "lim") or migrate as the role that made them';
    const notRecorded =
      "warning: migration checksums not recorded in safe_deploy.migration_history (permission denied for schema safe_deploy): edits of applied migrations go unnoticed until the migration role may CREATE in the database (GRANT CREATE ON DATABASE ... TO ...)";
    assert.deepEqual(lines, [
      notRecorded,
      `warning: ${unreadable}`,
      "note: the migration's transactions are not marked for a rollback's replay (permission denied for database limited; event triggers need a superuser): a migration that records itself apart from its changes (Prisma, noTransaction) would have its data changes replayed by a rollback with restore",
      "migrate up with command: from (none)",
      "migrate up: now at (none)",
      notRecorded,
    ]);
    assert.deepEqual(await failure(migrate({ ...o, action: "check", databaseUrl: limUrl("limited") })), [
      "CannotRunError",
      unreadable,
    ]);
  });

  it("critical tables with a role that may not create the guard: nothing migrated, and the grant named", async () => {
    await pg.createDatabase("limited_guard");
    const [name, message] = await failure(
      migrate({
        tool: "node-pg-migrate",
        action: "up",
        dir: "limited",
        workDir: tmp,
        databaseUrl: limUrl("limited_guard"),
        integrity: { criticalTables: ["orders"] },
      }),
    );
    assert.equal(name, "CannotRunError");
    assert.equal(
      message,
      "could not set up the row-loss check for --critical-tables (nothing was migrated): permission denied for schema public; the migration role needs CREATE on the database (for the safe_deploy schema) and to own pgmigrations",
    );
  });
});

/**
 * A stand-in `alembic` (the real one takes a second a call): two revisions, a1 then b2, kept in the
 * database's alembic_version through psql; `current --verbose` prints no URL (a custom env.py), so the
 * runner compares revisions. STANDIN_ALEMBIC=wrong makes it read another database's revision (zz),
 * heads-fail makes `alembic heads` fail.
 */
const ALEMBIC = `#!/bin/sh
q() { "${PSQL}" "$DATABASE_URL" -XAtqc "$1" 2>/dev/null; }
case "$1" in
  current)
    if [ "$STANDIN_ALEMBIC" = wrong ]; then echo "Rev: zz (head)"; exit 0; fi
    for r in $(q "SELECT version_num FROM alembic_version"); do echo "Rev: $r (head)"; done ;;
  heads)
    if [ "$STANDIN_ALEMBIC" = heads-fail ]; then echo "KeyError: 'script_location'" >&2; exit 1; fi
    echo "b2 (head)" ;;
  history)
    echo "a1 -> b2 (head), add index"
    echo "<base> -> a1, create accounts" ;;
  upgrade)
    [ "$(q "SELECT version_num FROM alembic_version")" = b2 ] && exit 0
    q "CREATE TABLE IF NOT EXISTS alembic_version (version_num varchar(32) PRIMARY KEY); DELETE FROM alembic_version; INSERT INTO alembic_version VALUES ('b2')"
    echo "INFO  [alembic.runtime.migration] Running upgrade  -> a1, create accounts" >&2
    echo "INFO  [alembic.runtime.migration] Running upgrade a1 -> b2, add index" >&2 ;;
  *) echo "stand-in alembic: $* (\${DATABASE_URL%%://*})" ;;
esac
`;

describe("alembic (a stand-in on PATH): the target check and check's pending revisions", () => {
  let url: string;
  let work: string;
  const path = process.env.PATH;
  const run = (o: Partial<MigrateOptions> = {}) =>
    migrate({ tool: "alembic", action: "up", dir: ".", workDir: work, databaseUrl: url, ...o });
  const mode = (m?: string) => {
    if (m) process.env.STANDIN_ALEMBIC = m;
    else delete process.env.STANDIN_ALEMBIC;
  };
  before(async () => {
    url = await pg.createDatabase("alembic");
    work = join(tmp, "alembic");
    await mkdir(join(work, "bin"), { recursive: true });
    await writeFile(join(work, "alembic.ini"), "[alembic]\nscript_location = .\n");
    await writeFile(join(work, "bin/alembic"), ALEMBIC);
    await chmod(join(work, "bin/alembic"), 0o755);
    process.env.PATH = `${join(work, "bin")}:${path}`;
  });
  after(() => {
    process.env.PATH = path;
    mode();
  });

  it("check lists the pending revisions oldest first, then passes at the head; the database's revisions are what current is compared with", async () => {
    assert.deepEqual(await failure(run({ action: "check" })), [
      "CheckFailedError",
      "2 pending:\n  <base> -> a1, create accounts\n  a1 -> b2 (head), add index\nfix: apply them with `safe-deploy migrate up`",
    ]);
    const up = await run();
    assert.deepEqual([up.before, up.after], [undefined, "b2"]);
    // At b2 the stand-in reads b2: the same database.
    assert.deepEqual(await run({ action: "check" }), {
      before: "b2",
      after: "b2",
      output: "0 pending: the database is at the script head(s) b2",
    });
    mode("heads-fail");
    try {
      assert.deepEqual(await failure(run({ action: "check" })), [
        "CheckFailedError",
        "alembic heads failed (exit 1): KeyError: 'script_location'",
      ]);
    } finally {
      mode();
    }
  });

  it("a tool reading another database is stopped for up, check and current, not for history or a caller that checked it", async () => {
    mode("wrong");
    try {
      const named = `localhost:${pg.port}/alembic`;
      const refused = [
        "ConfigError",
        `alembic would act on a database at revision zz, not on the database named (${named}, at revision b2): its env.py does not take the URL from DATABASE_URL (Alembic's default env.py reads \`sqlalchemy.url\` in alembic.ini). Nothing was migrated. Make env.py read DATABASE_URL (\`url = os.environ["DATABASE_URL"]\`), or set \`migrations.databaseUrlEnv\` (\`--database-url-env\`) to the variable the tool reads: safe-deploy then sets it to the database named`,
      ];
      for (const action of ["up", "check", "current"] as const)
        assert.deepEqual(await failure(run({ action })), refused, action);
      assert.equal(
        (await run({ action: "history" })).output,
        "a1 -> b2 (head), add index\n<base> -> a1, create accounts\n",
      );
      const checked = await run({ targetChecked: true });
      assert.deepEqual([checked.before, checked.after], ["b2", "b2"]);
      // ALEMBIC_CONFIG names the ini: no alembic.ini needed where it runs.
      process.env.ALEMBIC_CONFIG = join(work, "alembic.ini");
      try {
        const elsewhere = await run({ action: "history", workDir: join(work, "bin") });
        assert.equal(elsewhere.output, "a1 -> b2 (head), add index\n<base> -> a1, create accounts\n");
      } finally {
        delete process.env.ALEMBIC_CONFIG;
      }
      // SQLAlchemy 1.4 refuses postgres://: Alembic gets postgresql://.
      const down = await run({ action: "down", targetChecked: true });
      assert.equal(down.output, "stand-in alembic: downgrade -1 (postgresql)\n");
    } finally {
      mode();
    }
  });
});

describe("node-pg-migrate's read-only verbs and REV targets, answered from its table (no tool runs)", () => {
  let url: string;
  let dir: string;
  const run = (o: Partial<MigrateOptions> = {}) =>
    migrate({
      tool: "node-pg-migrate",
      action: "check",
      dir: "npm-ro",
      workDir: tmp,
      databaseUrl: url,
      ...o,
    });
  before(async () => {
    url = await pg.createDatabase("npm_ro");
    dir = join(tmp, "npm-ro");
    await mkdir(dir);
    for (const f of ["1_a.sql", "2_b.js", "3_c.ts", ".4_hidden.sql", "README.md"])
      await writeFile(join(dir, f), "-- Up Migration\n");
  });

  it("current, history and check before and after migrations were applied, with one gone from the directory and an INVALID index", async () => {
    assert.equal((await run({ action: "current" })).output, "(no migration applied)");
    assert.equal((await run({ action: "history" })).output, "1_a  pending\n2_b  pending\n3_c  pending");
    assert.deepEqual(await failure(run()), [
      "CheckFailedError",
      "3 pending: 1_a, 2_b, 3_c\nfix: apply them with `safe-deploy migrate up`",
    ]);
    // The table made (by the row-loss guard, before the tool's first run) but still empty.
    await pg.query(
      "CREATE TABLE pgmigrations (id serial PRIMARY KEY, name varchar(255) NOT NULL, run_on timestamp NOT NULL)",
      [],
      "npm_ro",
    );
    assert.equal((await run({ action: "current" })).output, "(no migration applied)");
    await pg.query(
      `INSERT INTO pgmigrations (name, run_on) VALUES ('0_gone', '2026-01-01 10:00'), ('2_b', '2026-01-03 10:00'), ('1_a', '2026-01-02 10:00')`,
      [],
      "npm_ro",
    );
    assert.deepEqual(await run({ action: "current" }), { before: "2_b", after: "2_b", output: "2_b" });
    assert.equal(
      (await run({ action: "history" })).output,
      "0_gone  applied 2026-01-01 10:00:00\n1_a  applied 2026-01-02 10:00:00\n2_b  applied 2026-01-03 10:00:00\n3_c  pending",
    );
    assert.deepEqual(await failure(run()), [
      "CheckFailedError",
      "1 pending: 3_c\napplied but missing from npm-ro: 0_gone\nfix: apply them with `safe-deploy migrate up`; restore the missing migration files to npm-ro",
    ]);
    await pg.query(
      "INSERT INTO pgmigrations (name, run_on) VALUES ('3_c', '2026-01-04 10:00')",
      [],
      "npm_ro",
    );
    await pg.query("CREATE TABLE dup (v int); INSERT INTO dup VALUES (1), (1)", [], "npm_ro");
    await pg.query("CREATE UNIQUE INDEX CONCURRENTLY dup_uq ON dup (v)", [], "npm_ro").catch(() => {});
    assert.deepEqual(await failure(run()), [
      "CheckFailedError",
      "0 pending\napplied but missing from npm-ro: 0_gone\ninvalid indexes: public.dup_uq\nfix: restore the missing migration files to npm-ro; DROP INDEX CONCURRENTLY public.dup_uq; then re-run the migration that builds each dropped index",
    ]);
    await pg.query("DROP INDEX dup_uq; DELETE FROM pgmigrations WHERE name = '0_gone'", [], "npm_ro");
    assert.deepEqual(await run(), { before: "3_c", after: "3_c", output: "0 pending" });
  });

  it("up REV already applied and down to the latest do nothing; an unknown REV is named; down's list newest first", async () => {
    const lines: string[] = [];
    const nothing = { before: "3_c", after: "3_c", output: "nothing to do" };
    assert.deepEqual(await run({ action: "up", target: "1_a", log: (l) => lines.push(l) }), nothing);
    assert.deepEqual(await run({ action: "down", target: "3_c" }), nothing);
    assert.deepEqual(await run({ action: "up", target: "0" }), nothing);
    // The tool never ran: the only lines are the checksums recorded on the way.
    assert.deepEqual(lines, [
      "recorded the checksums of 3 already-applied migration(s) in safe_deploy.migration_history (first run with checksums; edits from now on are found): 1_a, 2_b, 3_c",
    ]);
    assert.deepEqual(await failure(run({ action: "up", target: "nope" })), [
      "ConfigError",
      `\`up nope\`: no migration named nope in ${dir} (see \`safe-deploy migrate history\`)`,
    ]);
    const noDown = [
      "ConfigError",
      "`down nope`: no applied migration is named nope (see `safe-deploy migrate history`)",
    ];
    assert.deepEqual(await failure(run({ action: "down", target: "nope" })), noDown);
    assert.deepEqual(await migrationsToRevert(url), ["3_c"]);
    assert.deepEqual(await migrationsToRevert(url, "2"), ["3_c", "2_b"]);
    assert.deepEqual(await migrationsToRevert(url, "1_a"), ["3_c", "2_b"]);
    assert.deepEqual(await failure(migrationsToRevert(url, "nope")), noDown);
  });

  it("a read-only run beside a guarded up (another session) leaves that run's guard and marker armed", async () => {
    const up = await connect(url, "guarded up");
    try {
      await armRowGuard(up, { "public.pgmigrations": 3 }, ["pgmigrations"]);
      assert.equal((await armMigrationMarker(up)).armed, true);
      await run({ action: "current" });
      await run({ action: "history" });
      assert.deepEqual(
        await pg.query(
          `SELECT (SELECT count(*) FROM pg_trigger WHERE tgname = 'safe_deploy_row_guard')::int AS guard,
             (SELECT count(*) FROM safe_deploy.row_guard)::int AS baseline,
             (SELECT count(*) FROM pg_event_trigger WHERE evtname LIKE 'safe_deploy_mark%')::int AS marker`,
          [],
          "npm_ro",
        ),
        [{ guard: 1, baseline: 1, marker: 2 }],
      );
    } finally {
      await disarmRowGuard(up);
      await disarmMigrationMarker(up);
      await up.end();
    }
  });

  it("missingMigrationsDirectory: only the tools that read a directory, and only when it is not one", async () => {
    assert.equal(await missingMigrationsDirectory("node-pg-migrate", tmp, "npm-ro"), undefined);
    assert.equal(await missingMigrationsDirectory("prisma", tmp, "nope"), join(tmp, "nope"));
    assert.equal(
      await missingMigrationsDirectory("node-pg-migrate", tmp, "npm-ro/1_a.sql"),
      join(dir, "1_a.sql"),
    );
    assert.equal(await missingMigrationsDirectory("alembic", tmp, "nope"), undefined);
    assert.equal(await missingMigrationsDirectory("command", tmp, "nope"), undefined);
  });
});
