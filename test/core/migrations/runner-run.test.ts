// Issue 22 (session 12): what migrate() does after the tool ran, beyond runner-exits.test.ts, in process on
// one server with stand-in tools on PATH: which `up` targets must move the version table (Alembic's N,
// head and heads, not a REV), what the not-moved message says of the database `alembic current` names,
// Prisma's rolled-back and unfinished rows still pending, a failure named by its migration and its hints,
// node-pg-migrate's REV targets, the marker left alone by read-only verbs, and a run with no working
// directory given.
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
const FIX =
  "Check that database, then make the tool read DATABASE_URL, or set `migrations.databaseUrlEnv` (`--database-url-env`) to the variable the tool reads: safe-deploy then sets it to the database named";

let pg: TestPostgres;
let tmp: string;
const path = process.env.PATH;
/** Puts an executable `name` holding `script` first on PATH. */
const standIn = async (name: string, script: string) => {
  const bin = join(tmp, `bin-${name}`);
  await mkdir(bin, { recursive: true });
  await writeFile(join(bin, name), script);
  await chmod(join(bin, name), 0o755);
  process.env.PATH = `${bin}:${path}`;
};
/** A custom command's run against `databaseUrl`: `up` from the temp directory unless `o` says otherwise. */
const command = (databaseUrl: string, o: Partial<MigrateOptions>) =>
  migrate({ tool: "command", action: "up", dir: ".", workDir: tmp, databaseUrl, ...o });
before(async () => {
  pg = await startPostgres();
  tmp = await mkdtemp(join(tmpdir(), "runner-run-"));
});
after(async () => {
  process.env.PATH = path;
  await pg?.close();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

/**
 * A stand-in `alembic` that migrates nothing: its script head is b2 (read, as Alembic does, where its
 * alembic.ini is: the working directory), `upgrade` prints $STANDIN_SAY,
 * `current --verbose` names $STANDIN_URL (when set) and the revisions in $STANDIN_REVS;
 * STANDIN_HEADS=fail makes `alembic heads` fail, STANDIN_HEADS=two adds a second head, c3.
 */
const ALEMBIC = `#!/bin/sh
case "$1" in
  current)
    if [ -n "$STANDIN_URL" ]; then echo "Current revision(s) for $STANDIN_URL:"; fi
    for r in $STANDIN_REVS; do echo "Rev: $r (head)"; done ;;
  heads)
    if [ ! -f alembic.ini ]; then echo "FAILED: No config file 'alembic.ini' found" >&2; exit 1; fi
    if [ "$STANDIN_HEADS" = fail ]; then echo "KeyError: 'script_location'" >&2; exit 1; fi
    echo "b2 (head)"
    if [ "$STANDIN_HEADS" = two ]; then echo "c3 (head)"; fi ;;
  upgrade)
    if [ -n "$STANDIN_SAY" ]; then echo "$STANDIN_SAY" >&2; fi ;;
esac
`;

describe("alembic exited 0 and alembic_version did not move", () => {
  let url: string;
  let work: string;
  const vars = ["STANDIN_URL", "STANDIN_REVS", "STANDIN_HEADS", "STANDIN_SAY"];
  const run = (target?: string, set: Record<string, string> = {}) => {
    for (const v of vars) delete process.env[v];
    Object.assign(process.env, set);
    return migrate({
      tool: "alembic",
      action: "up",
      dir: ".",
      workDir: work,
      databaseUrl: url,
      targetChecked: true,
      target,
    });
  };
  before(async () => {
    url = await pg.createDatabase("alembic_still");
    work = join(tmp, "alembic");
    await mkdir(work);
    await writeFile(join(work, "alembic.ini"), "[alembic]\n");
    await standIn("alembic", ALEMBIC);
  });
  after(() => {
    for (const v of vars) delete process.env[v];
    process.env.PATH = path;
  });
  const named = () => `alembic_version in the database named (localhost:${pg.port}/alembic_still)`;
  const setting =
    "env.py takes its URL from elsewhere than DATABASE_URL (Alembic's default env.py reads `sqlalchemy.url` in alembic.ini)";

  it(
    "up to a revision may move nothing; up N, head and heads must apply the pending head",
    { timeout: 60_000 },
    async () => {
      // A REV already applied (or an older one) moves nothing, whatever digits or "head" its id holds.
      for (const rev of ["1a1", "ahead", "heads2"])
        assert.deepEqual(await run(rev), { before: undefined, after: undefined, output: "" }, rev);
      const pending = [
        "CheckFailedError",
        `alembic exited 0 with 1 migration(s) pending (b2), but ${named()} did not move: still at (none). The migrations ran against another database: ${setting}. ${FIX}`,
      ];
      for (const target of [undefined, "12", "head", "heads"])
        assert.deepEqual(await failure(run(target)), pending, target);
    },
  );

  it("`alembic heads` failing counts as nothing pending: the run passes", { timeout: 60_000 }, async () => {
    assert.deepEqual(await run(undefined, { STANDIN_HEADS: "fail" }), {
      before: undefined,
      after: undefined,
      output: "",
    });
  });

  it(
    "the database `alembic current` names, with its revisions or (none), is in the message",
    { timeout: 60_000 },
    async () => {
      const elsewhere = "postgresql://app:***@db.other:5432/app";
      assert.deepEqual(await failure(run(undefined, { STANDIN_URL: elsewhere })), [
        "CheckFailedError",
        `alembic exited 0 with 1 migration(s) pending (b2), but ${named()} did not move: still at (none). The migrations ran against another database (alembic current says it is (none) in ${elsewhere}): ${setting}. ${FIX}`,
      ]);
      const said = "INFO  [alembic.runtime.migration] Running upgrade a1 -> b2, add index";
      assert.deepEqual(
        await failure(run(undefined, { STANDIN_URL: elsewhere, STANDIN_REVS: "b2 c3", STANDIN_SAY: said })),
        [
          "CheckFailedError",
          `alembic reported applying b2, but ${named()} did not move: still at (none). The migrations ran against another database (alembic current says it is b2,c3 in ${elsewhere}): ${setting}. ${FIX}`,
        ],
      );
    },
  );
});

describe("alembic check", () => {
  it("at two heads: both named", { timeout: 60_000 }, async () => {
    const url = await pg.createDatabase("alembic_heads");
    await pg.query(
      "CREATE TABLE alembic_version (version_num varchar(32) PRIMARY KEY); INSERT INTO alembic_version VALUES ('c3'), ('b2')",
      [],
      "alembic_heads",
    );
    await standIn("alembic", ALEMBIC);
    process.env.STANDIN_HEADS = "two";
    try {
      const work = join(tmp, "alembic");
      const o = { tool: "alembic" as const, dir: ".", workDir: work, databaseUrl: url, targetChecked: true };
      // before/after read alembic_version's first row, whichever it is: the output names them all, sorted.
      assert.equal(
        (await migrate({ ...o, action: "check" })).output,
        "0 pending: the database is at the script head(s) b2, c3",
      );
    } finally {
      delete process.env.STANDIN_HEADS;
      process.env.PATH = path;
    }
  });
});

describe("a failed run's hints", () => {
  it(
    "lock_timeout and statement_timeout both hit: one line each, with the limits given",
    { timeout: 60_000 },
    async () => {
      const url = await pg.createDatabase("hints");
      const said =
        "ERROR:  canceling statement due to lock timeout\nERROR:  canceling statement due to statement timeout";
      const [name, message] = await failure(
        command(url, {
          custom: { up: `printf '${said}\\n'; exit 1` },
          lockTimeout: "1s",
          statementTimeout: "2min",
        }),
      );
      assert.equal(name, "CheckFailedError");
      assert.equal(
        message,
        `command up failed (exit 1); schema version before (none), now (none):\n${said}\n` +
          "lock_timeout (1s) cancelled the migration: the session holding the lock had gone before it could be named. Nothing of that migration was kept; re-run. A session that keeps a transaction open blocks every ALTER: run migrations in a quiet window, or raise --lock-retries\n" +
          "statement_timeout (2min) cancelled a statement: raise --statement-timeout for this migration, or make it cheaper (batches, CONCURRENTLY)",
      );
    },
  );
});

describe("prisma exited 0 and _prisma_migrations did not move", () => {
  it(
    "a migration rolled back or never finished in the database named is still pending",
    { timeout: 60_000 },
    async () => {
      const url = await pg.createDatabase("prisma_still");
      const other = await pg.createDatabase("prisma_elsewhere");
      const p = await prismaProject('  url = env("DATABASE_URL")\n', {
        "1_init": "SELECT 1;",
        "2_rolled_back": "SELECT 1;",
        "3_unfinished": "SELECT 1;",
      });
      process.env.PRISMA_STANDIN_URL_ENV = "OTHER_URL";
      process.env.OTHER_URL = other;
      try {
        await pg.query(
          `CREATE TABLE _prisma_migrations (migration_name text, finished_at timestamptz, rolled_back_at timestamptz);
         INSERT INTO _prisma_migrations VALUES ('1_init', now(), NULL), ('2_rolled_back', now(), now()), ('3_unfinished', NULL, NULL)`,
          [],
          "prisma_still",
        );
        const o = {
          tool: "prisma" as const,
          action: "up" as const,
          dir: "prisma/migrations",
          workDir: p.work,
          databaseUrl: url,
        };
        // The first run applies all three in the other database and says so; the second applies nothing.
        await failure(migrate(o));
        assert.deepEqual(await failure(migrate(o)), [
          "CheckFailedError",
          `prisma exited 0 with 2 migration(s) pending (2_rolled_back, 3_unfinished), but _prisma_migrations in the database named (localhost:${pg.port}/prisma_still) did not move: still at 1_init. The migrations ran against another database: schema.prisma's datasource reads another variable than DATABASE_URL (\`url = env("...")\`, or \`directUrl\`). ${FIX}`,
        ]);
      } finally {
        delete process.env.PRISMA_STANDIN_URL_ENV;
        delete process.env.OTHER_URL;
        await rm(p.work, { recursive: true, force: true });
      }
    },
  );
});

describe("node-pg-migrate (a stand-in on PATH printing $STANDIN_SAY, and its verb and count with STANDIN_ARGS)", () => {
  let url: string;
  const run = (o: Partial<MigrateOptions> = {}) =>
    migrate({ tool: "node-pg-migrate", action: "up", dir: "npm", workDir: tmp, databaseUrl: url, ...o });
  before(async () => {
    url = await pg.createDatabase("npm_said");
    await mkdir(join(tmp, "npm"));
    for (const f of ["1_a.sql", "2_b.sql", "3_v2.sql"])
      await writeFile(join(tmp, "npm", f), "-- Up Migration\n");
    await standIn(
      "node-pg-migrate",
      `#!/bin/sh\nprintf '%b' "$STANDIN_SAY"\nif [ -n "$STANDIN_ARGS" ]; then echo "$1 $2"; fi\nexit "\${STANDIN_EXIT:-0}"\n`,
    );
  });
  after(() => {
    for (const v of ["STANDIN_SAY", "STANDIN_ARGS", "STANDIN_EXIT"]) delete process.env[v];
    process.env.PATH = path;
  });

  it(
    "a migration it reported applying, and the one it failed in, are named",
    { timeout: 60_000 },
    async () => {
      process.env.STANDIN_SAY = "### MIGRATION 1_a (UP) ###\\n";
      assert.deepEqual(await failure(run()), [
        "CheckFailedError",
        `node-pg-migrate reported applying 1_a, but pgmigrations in the database named (localhost:${pg.port}/npm_said) did not move: still at (none). The migrations ran against another database: the tool reads its URL from another variable or a config file. ${FIX}`,
      ]);
      process.env.STANDIN_SAY = "### MIGRATION 1_a (UP) ###\\n### MIGRATION 2_b (UP) ###\\nError: boom\\n";
      process.env.STANDIN_EXIT = "1";
      assert.deepEqual(await failure(run({ target: "2" })), [
        "CheckFailedError",
        "node-pg-migrate up failed in migration 2_b (exit 1); schema version before (none), now (none):\n### MIGRATION 1_a (UP) ###\n### MIGRATION 2_b (UP) ###\nError: boom",
      ]);
    },
  );

  it(
    "up REV becomes a count, whatever digits the name holds; a number is passed as it is",
    { timeout: 60_000 },
    async () => {
      process.env.STANDIN_SAY = "";
      process.env.STANDIN_ARGS = "1";
      process.env.STANDIN_EXIT = "1";
      const failed = (args: string) =>
        `node-pg-migrate up failed (exit 1); schema version before (none), now (none):\nup ${args}`;
      assert.deepEqual(await failure(run({ target: "3_v2" })), ["CheckFailedError", failed("3")]);
      assert.deepEqual(await failure(run({ target: "10" })), ["CheckFailedError", failed("10")]);
    },
  );

  it(
    "current, history and check take no target: a REV or 0 given to them is not looked up",
    { timeout: 60_000 },
    async () => {
      for (const target of ["nope", "0"])
        assert.deepEqual(
          await run({ action: "current", target }),
          { before: undefined, after: undefined, output: "(no migration applied)" },
          target,
        );
    },
  );

  it(
    "with migrations applied in the database named, only the others are still pending",
    { timeout: 60_000 },
    async () => {
      await pg.query(
        "CREATE TABLE pgmigrations (id serial PRIMARY KEY, name varchar(255) NOT NULL, run_on timestamp NOT NULL); INSERT INTO pgmigrations (name, run_on) VALUES ('1_a', now())",
        [],
        "npm_said",
      );
      for (const v of ["STANDIN_SAY", "STANDIN_ARGS", "STANDIN_EXIT"]) delete process.env[v];
      assert.deepEqual(await failure(run()), [
        "CheckFailedError",
        `node-pg-migrate exited 0 with 2 migration(s) pending (2_b, 3_v2), but pgmigrations in the database named (localhost:${pg.port}/npm_said) did not move: still at 1_a. The migrations ran against another database: the tool reads its URL from another variable or a config file. ${FIX}`,
      ]);
    },
  );
});

describe("checksums recorded, then a directory without the migrations", () => {
  it("up and check stop naming the directory: not a warning about rights", { timeout: 60_000 }, async () => {
    const url = await pg.createDatabase("sums_moved");
    await mkdir(join(tmp, "sums", "empty"), { recursive: true });
    await writeFile(join(tmp, "sums", "a.sql"), "SELECT 1;\n");
    const custom = { up: "true", check: "true" };
    await command(url, { dir: "sums", custom });
    const wrongDir = [
      "ConfigError",
      `no command migration files in ${join(tmp, "sums", "empty")} to check the 1 recorded checksum(s) against: pass the migrations directory (\`--dir\` / \`--migrations\`)`,
    ];
    const lines: string[] = [];
    assert.deepEqual(
      await failure(command(url, { dir: "sums/empty", custom, log: (l) => lines.push(l) })),
      wrongDir,
    );
    assert.deepEqual(lines, []);
    assert.deepEqual(await failure(command(url, { action: "check", dir: "sums/empty", custom })), wrongDir);
  });
});

describe("the migration marker (event triggers marking the migration's DDL for a rollback's replay)", () => {
  it("is armed while up runs, not while a read-only verb does", { timeout: 60_000 }, async () => {
    const url = await pg.createDatabase("marker");
    const count = `${PSQL} "$DATABASE_URL" -XAtc "SELECT count(*) FROM pg_event_trigger WHERE evtname LIKE 'safe_deploy_mark%'"`;
    const custom = { up: count, current: count, history: count, check: count };
    assert.equal((await command(url, { custom })).output, "2\n");
    for (const action of ["current", "history", "check"] as const)
      assert.equal((await command(url, { action, custom })).output, "0\n", action);
  });
});

describe("a custom command", () => {
  it(
    "has no table to read: a directory in Prisma's layout is not taken for pending migrations",
    { timeout: 60_000 },
    async () => {
      const url = await pg.createDatabase("command_layout");
      await mkdir(join(tmp, "layout", "20260101000000_init"), { recursive: true });
      await writeFile(join(tmp, "layout", "20260101000000_init", "migration.sql"), "SELECT 1;\n");
      const r = await command(url, { dir: "layout", custom: { up: "echo applied elsewhere" } });
      assert.deepEqual(r, { before: undefined, after: undefined, output: "applied elsewhere\n" });
    },
  );
});

describe("a run given no working directory", () => {
  it("runs the tool where safe-deploy runs", { timeout: 60_000 }, async () => {
    const url = await pg.createDatabase("no_workdir");
    const r = await command(url, { workDir: undefined, custom: { up: "pwd" } });
    assert.equal(r.output, `${process.cwd()}\n`);
  });
});
