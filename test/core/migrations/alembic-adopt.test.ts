import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { cp, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { formatRehearsal, rehearse, splitPassword } from "../../../src/core/migrations/rehearsal";
import { renderAlembicRevisions, sqlalchemyUrl } from "../../../src/core/migrations/alembic";
import { migrate } from "../../../src/core/migrations/runner";
import { startPostgres, type TestPostgres } from "../../helpers/postgres";

// Issue 21, Alembic: an Alembic tree in its real layout with a revision that needs a connection
// (3c4d reads rows through op.get_bind()). Needs Debian's alembic + python3-psycopg2.
const WORK = join(__dirname, "../../fixtures/migrations/alembic-adopt");
const run = promisify(execFile);

/** A copy of the fixture made the way `alembic init` makes one: its generic env.py reads only alembic.ini. */
async function initProject(sqlalchemyUrlInIni: string): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), "sd-alembic-init-"));
  const proj = join(root, "proj");
  await run("alembic", ["init", "-t", "generic", proj], { cwd: root });
  await cp(join(WORK, "versions"), join(proj, "versions"), { recursive: true });
  const ini = join(root, "alembic.ini");
  const text = await readFile(ini, "utf8");
  await writeFile(
    ini,
    text.replace(/^sqlalchemy\.url = .*$/m, `sqlalchemy.url = ${sqlalchemyUrlInIni.replace(/%/g, "%%")}`),
  );
  return root;
}

async function rejected(p: Promise<unknown>): Promise<Error & { exitCode?: number }> {
  return p.then(
    () => assert.fail("must fail"),
    (e: Error & { exitCode?: number }) => e,
  );
}

describe("Alembic offline render, revision by revision", () => {
  it("renders each revision; the one using op.get_bind() is named not checkable offline, the others keep their SQL", async () => {
    const r = await renderAlembicRevisions(WORK);
    assert.deepEqual(
      r.map((x) => [x.revision, x.file, x.sql !== undefined]),
      [
        ["1a2b", "versions/1a2b_create_accounts.py", true],
        ["3c4d", "versions/3c4d_accounts_domain_backfill.py", false],
        ["5e6f", "versions/5e6f_accounts_email_index.py", true],
      ],
    );
    assert.match(r[2].sql!, /CREATE INDEX accounts_email_idx ON accounts \(email\)/);
    assert.match(
      r[1].error!,
      /^not checkable offline: AttributeError: 'NoneType' object has no attribute 'fetchall' \(line 12\); it needs a database connection/,
    );
  });

  it("sqlalchemyUrl gives postgres:// URLs the dialect name SQLAlchemy 1.4 knows", () => {
    assert.equal(sqlalchemyUrl("postgres://u:p@h:5/d"), "postgresql://u:p@h:5/d");
    assert.equal(sqlalchemyUrl("postgresql://u@h/d"), "postgresql://u@h/d");
  });
});

describe("Alembic on an existing project, real PostgreSQL", () => {
  let pg: TestPostgres;
  let tmp: string;
  before(async () => {
    pg = await startPostgres();
    tmp = await mkdtemp(join(tmpdir(), "sd-alembic-adopt-"));
  });
  after(async () => {
    await pg?.close();
    await rm(tmp, { recursive: true, force: true });
  });

  it("a postgres:// URL reaches SQLAlchemy as postgresql://; the password is in no output", async () => {
    const url = await pg.createDatabase("pgscheme");
    assert.match(url, /^postgres:\/\//);
    const r = await migrate({ action: "up", tool: "alembic", dir: ".", workDir: WORK, databaseUrl: url });
    assert.deepEqual([r.before, r.after], [undefined, "5e6f"]);
    assert.ok(!r.output.includes(pg.password));
  });

  it("migrate check compares alembic_version with `alembic heads`, no `alembic check`", async () => {
    const url = await pg.createDatabase("check");
    const o = { tool: "alembic" as const, dir: ".", workDir: WORK, databaseUrl: url };
    await migrate({ ...o, action: "up", target: "1a2b" });
    const err = await rejected(migrate({ ...o, action: "check" }));
    assert.equal(err.exitCode, 1);
    assert.match(err.message, /^2 pending:\n {2}1a2b -> 3c4d, .*\n {2}3c4d -> 5e6f \(head\), .*\nfix: /);
    await migrate({ ...o, action: "up" });
    const ok = await migrate({ ...o, action: "check" });
    assert.equal(ok.output, "0 pending: the database is at the script head(s) 5e6f");
  });

  it("alembic.ini pointing at another database: migrate up stops before running, naming sqlalchemy.url; neither database moves", async () => {
    const named = await pg.createDatabase("named");
    const other = await pg.createDatabase("other");
    const root = await initProject(other.replace(/^postgres:/, "postgresql:"));
    try {
      const err = await rejected(
        migrate({ action: "up", tool: "alembic", dir: "proj", workDir: root, databaseUrl: named }),
      );
      assert.equal(err.exitCode, 2);
      assert.match(
        err.message,
        /^alembic would act on postgresql:\/\/tester:\*\*\*@127\.0\.0\.1:\d+\/other, not on the database named \(localhost:\d+\/named\)/,
      );
      assert.match(err.message, /`sqlalchemy\.url` in alembic\.ini\)\. Nothing was migrated\./);
      assert.match(err.message, /`migrations\.databaseUrlEnv`/);
      assert.ok(!err.message.includes(pg.password));
      for (const db of ["named", "other"])
        assert.equal(
          (await pg.query<{ t: string | null }>("SELECT to_regclass('accounts')::text AS t", [], db))[0].t,
          null,
          `${db} not migrated`,
        );
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });

  it("drift of a project whose alembic.ini points elsewhere stops (exit 2) instead of reporting the other database's schema as drift", async () => {
    const { checkDrift } = await import("../../../src/core/migrations/drift");
    const live = await pg.createDatabase("drift_live");
    await migrate({ action: "up", tool: "alembic", dir: ".", workDir: WORK, databaseUrl: live });
    const other = await pg.createDatabase("drift_other");
    const root = await initProject(other.replace(/^postgres:/, "postgresql:"));
    try {
      const err = await rejected(
        checkDrift({ tool: "alembic", dir: "proj", workDir: root, databaseUrl: live }),
      );
      assert.equal(err.exitCode, 2);
      assert.match(
        err.message,
        /^alembic would act on .*\/drift_other, not on the database named \(localhost:\d+\/safe_deploy_scratch_\w+\)/,
      );
      assert.equal(
        (
          await pg.query<{ t: string | null }>("SELECT to_regclass('accounts')::text AS t", [], "drift_other")
        )[0].t,
        null,
      );
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });

  it("with migrations.databaseUrlEnv the runner sets the variable env.py reads", async () => {
    const url = await pg.createDatabase("urlenv");
    const root = await mkdtemp(join(tmpdir(), "sd-alembic-env-"));
    try {
      await cp(WORK, root, { recursive: true });
      const envPy = join(root, "env.py");
      await writeFile(
        envPy,
        (await readFile(envPy, "utf8")).replace(
          'url = os.environ.get("DATABASE_URL") or context.config.get_main_option("sqlalchemy.url")',
          'url = os.environ.get("APP_DATABASE_URL") or context.config.get_main_option("sqlalchemy.url")',
        ),
      );
      const o = {
        action: "up" as const,
        tool: "alembic" as const,
        dir: ".",
        workDir: root,
        databaseUrl: url,
      };
      const err = await rejected(migrate(o));
      assert.match(
        err.message,
        /`alembic current` exit 1: sqlalchemy\.exc\.OperationalError: .*port 1 failed.*alembic\.ini's sqlalchemy\.url is postgresql:\/\/nobody@127\.0\.0\.1:1\/not_configured/,
        "without it, env.py falls back to alembic.ini's placeholder URL",
      );
      const r = await migrate({ ...o, databaseUrlEnv: "APP_DATABASE_URL" });
      assert.equal(r.after, "5e6f");
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });

  it("rehearse applies each pending revision by id and passes at head (no 'Relative revision +1' failure); times exclude start-up", async () => {
    const live = await pg.createDatabase("live");
    await migrate({
      action: "up",
      target: "1a2b",
      tool: "alembic",
      dir: ".",
      workDir: WORK,
      databaseUrl: live,
    });
    const backup = join(tmp, "live.dump");
    const { url: bare, env } = splitPassword(live);
    await run("/usr/lib/postgresql/15/bin/pg_dump", ["-Fc", "-f", backup, bare], {
      env: { ...process.env, ...env },
    });
    const r = await rehearse({
      backupFile: backup,
      databaseUrl: pg.url("postgres"),
      tool: "alembic",
      dir: ".",
      workDir: WORK,
    });
    assert.equal(r.failure, undefined);
    assert.deepEqual(
      r.steps.map((s) => `${s.from} -> ${s.to}`),
      ["1a2b -> 3c4d", "3c4d -> 5e6f"],
    );
    assert.ok(r.startupSeconds! > 0);
    assert.match(formatRehearsal(r, []), /step times exclude the tool's start-up/);
  });

  it("rehearse of a project whose alembic.ini points elsewhere stops before the first step; that database is not migrated", async () => {
    const live = await pg.createDatabase("live2");
    const other = await pg.createDatabase("other2");
    const backup = join(tmp, "live2.dump");
    const { url: bare, env } = splitPassword(live);
    await run("/usr/lib/postgresql/15/bin/pg_dump", ["-Fc", "-f", backup, bare], {
      env: { ...process.env, ...env },
    });
    const root = await initProject(other.replace(/^postgres:/, "postgresql:"));
    try {
      const err = await rejected(
        rehearse({
          backupFile: backup,
          databaseUrl: pg.url("postgres"),
          tool: "alembic",
          dir: "proj",
          workDir: root,
        }),
      );
      assert.equal(err.exitCode, 2);
      assert.match(
        err.message,
        /^alembic would act on .*\/other2, not on the database named \(localhost:\d+\/safe_deploy_rehearsal_\w+\)/,
      );
      assert.equal(
        (await pg.query<{ t: string | null }>("SELECT to_regclass('accounts')::text AS t", [], "other2"))[0]
          .t,
        null,
      );
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});
