import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { migrationCommand, pgOptions } from "../../../src/core/migrations/command";
import { toolCommand } from "../../../src/core/migrations/presets";
import { startPostgres, type TestPostgres } from "../../helpers/postgres";

const ROOT = join(__dirname, "../../..");

describe("migrationCommand (table)", () => {
  const cases: Array<[string, Parameters<typeof migrationCommand>[0], RegExp]> = [
    [
      "node-pg-migrate local",
      { tool: "node-pg-migrate", dir: "migrations", workDir: "/app", runIn: "local" },
      /^PATH="\$PWD\/node_modules\/.bin:\$PATH" NODE_OPTIONS=.* node-pg-migrate up -m migrations --single-transaction/,
    ],
    [
      "alembic local",
      { tool: "alembic", dir: "alembic", workDir: "/srv", runIn: "local" },
      /^alembic upgrade head$/,
    ],
    [
      "prisma local",
      { tool: "prisma", dir: "prisma/migrations", workDir: "/srv", runIn: "local" },
      /^PATH="\$PWD\/node_modules\/.bin:\$PATH" prisma migrate deploy --schema prisma\/migrations\/..\/schema.prisma$/,
    ],
    [
      "command override",
      { tool: "command", dir: "m", workDir: "/srv", runIn: "local", command: "make migrate" },
      /^make migrate$/,
    ],
    [
      "container",
      {
        tool: "node-pg-migrate",
        dir: "my migrations",
        workDir: "/app",
        runIn: "container",
        image: "sha256:abc",
        network: "net1",
        dockerHost: "ssh://u@h",
      },
      /^docker run --rm .*--network "\$SAFE_DEPLOY_NETWORK" -e DATABASE_URL -e PGOPTIONS -e PGAPPNAME -w \/app "\$SAFE_DEPLOY_IMAGE" \/bin\/sh -c 'PATH="\$PWD\/node_modules\/.bin:\$PATH" NODE_OPTIONS=.* node-pg-migrate up -m '\\''my migrations'\\''/,
    ],
  ];
  for (const [name, args, re] of cases) {
    it(name, () => {
      const c = migrationCommand(args);
      assert.match(c.create, re);
      assert.ok(!c.create.includes("postgres://"));
      assert.ok(!("DATABASE_URL" in c.environment), "the caller adds DATABASE_URL as a secret");
      assert.equal(c.environment.PGOPTIONS, "-c lock_timeout=5s -c statement_timeout=15min");
    });
  }

  it("container mode puts image, network and docker host in the environment; local mode runs in workDir", () => {
    const c = migrationCommand({
      tool: "node-pg-migrate",
      dir: "m",
      workDir: "/app",
      runIn: "container",
      image: "img",
      network: "n",
      dockerHost: "unix:///x.sock",
    });
    assert.deepEqual(
      [c.environment.SAFE_DEPLOY_IMAGE, c.environment.SAFE_DEPLOY_NETWORK, c.environment.DOCKER_HOST],
      ["img", "n", "unix:///x.sock"],
    );
    assert.equal(migrationCommand({ tool: "alembic", dir: "a", workDir: "/w", runIn: "local" }).dir, "/w");
  });

  it("guard with a backup file passes --backup, which tools outside one transaction need with critical tables", () => {
    const c = migrationCommand({
      tool: "alembic",
      dir: "alembic",
      workDir: "/srv/app",
      runIn: "local",
      guard: { criticalTables: ["orders"], backupFile: "/backups/pre deploy.dump", bin: "/opt/sd" },
    });
    assert.equal(
      c.create,
      "/opt/sd migrate up --tool alembic --dir alembic --work-dir . --lock-timeout 5s --statement-timeout 15min --critical-tables orders --backup '/backups/pre deploy.dump'",
    );
  });

  it("databaseUrlEnv reaches the tool: `--database-url-env` under the guard, `-e NAME` into the container", () => {
    const local = migrationCommand({
      tool: "prisma",
      dir: "prisma/migrations",
      workDir: "/srv/app",
      runIn: "local",
      databaseUrlEnv: "NEXT_PRIVATE_DATABASE_URL",
      guard: { bin: "/opt/sd" },
    });
    assert.match(local.create, / --database-url-env NEXT_PRIVATE_DATABASE_URL /);
    const container = migrationCommand({
      tool: "prisma",
      dir: "prisma/migrations",
      workDir: "/app",
      runIn: "container",
      image: "img",
      network: "n",
      databaseUrlEnv: "NEXT_PRIVATE_DATABASE_URL",
    });
    assert.match(container.create, /-e DATABASE_URL -e NEXT_PRIVATE_DATABASE_URL -e PGOPTIONS/);
    assert.throws(
      () =>
        migrationCommand({ tool: "prisma", dir: "p", workDir: "/w", runIn: "local", databaseUrlEnv: "A B" }),
      /`databaseUrlEnv` must be an environment variable name/,
    );
  });

  it("rejects what cannot work, naming the argument", () => {
    assert.throws(
      () => migrationCommand({ tool: "command", dir: "m", workDir: "/w", runIn: "local" }),
      /`command` is required/,
    );
    assert.throws(() => pgOptions("5 seconds"), /`lockTimeout`/);
    assert.throws(() => toolCommand("prisma", "down", { dir: "p" }), /no down migrations/);
  });

  it("presets map N and REV", () => {
    assert.equal(toolCommand("alembic", "up", { dir: "a", target: "2" }), "alembic upgrade +2");
    assert.equal(toolCommand("alembic", "down", { dir: "a", target: "ae10" }), "alembic downgrade ae10");
    assert.match(toolCommand("node-pg-migrate", "down", { dir: "m" })!, /down 1 -m m/);
    assert.equal(toolCommand("node-pg-migrate", "current", { dir: "m" }), undefined);
  });
});

describe("migrationCommand executed against real PostgreSQL", () => {
  let pg: TestPostgres;
  before(async () => {
    pg = await startPostgres();
  });
  after(async () => pg?.close());

  it("the local node-pg-migrate command applies the fixture migrations with DATABASE_URL from the environment only", async () => {
    const url = await pg.createDatabase("cmd");
    const c = migrationCommand({
      tool: "node-pg-migrate",
      dir: "test/fixtures/migrations/npm",
      workDir: ROOT,
      runIn: "local",
      lockTimeout: "2s",
    });
    assert.ok(!c.create.includes(pg.password));
    await promisify(execFile)("/bin/sh", ["-c", c.create], {
      cwd: c.dir,
      env: { ...process.env, ...c.environment, DATABASE_URL: url },
    });
    const names = await pg.query<{ name: string }>("SELECT name FROM pgmigrations ORDER BY id", [], "cmd");
    assert.deepEqual(
      names.map((r) => r.name),
      ["1700000001000_create-users", "1700000002000_create-orders", "1700000003000_users-name"],
    );
    assert.equal((await pg.query<{ n: string }>("SELECT count(*) AS n FROM orders", [], "cmd"))[0].n, "50");
    // PGOPTIONS reached the tool's sessions: a probe through the same environment sees the timeout.
    const { stdout } = await promisify(execFile)(
      "/usr/lib/postgresql/15/bin/psql",
      [url, "-Atc", "SHOW lock_timeout"],
      { env: { ...process.env, ...c.environment } },
    );
    assert.equal(stdout.trim(), "2s");
  });
});

describe("migrationCommand with guard: the runner inside the deploy step", () => {
  let pg: TestPostgres;
  before(async () => {
    pg = await startPostgres();
  });
  after(async () => pg?.close());

  it("a row-loss migration fails the step's command (exit 1), rolled back before it commits; no secret in the command", async () => {
    const url = await pg.createDatabase("guard");
    const run = (c: { create: string; dir: string; environment: Record<string, string> }) =>
      promisify(execFile)("/bin/sh", ["-c", c.create], {
        cwd: c.dir,
        env: { ...process.env, ...c.environment, DATABASE_URL: url },
      });
    const args = {
      tool: "node-pg-migrate" as const,
      dir: "test/fixtures/migrations/npm",
      workDir: ROOT,
      runIn: "local" as const,
    };
    const first = migrationCommand({ ...args, guard: { criticalTables: ["orders"] } });
    assert.match(
      first.create,
      /bin\/safe-deploy migrate up --tool node-pg-migrate --dir test\/fixtures\/migrations\/npm --work-dir \. .*--critical-tables orders$/,
    );
    assert.ok(!first.create.includes(pg.password));
    const ok = await run(first);
    assert.match(ok.stdout, /schema version: \(none\) -> 1700000003000_users-name/);
    const loss = migrationCommand({
      ...args,
      dir: "test/fixtures/migrations/npm-loss",
      guard: { criticalTables: ["orders"] },
    });
    const err = await run(loss).then(
      () => assert.fail("must fail"),
      (e: { code: number; stderr: string }) => e,
    );
    assert.equal(err.code, 1);
    assert.match(
      err.stderr,
      /integrity check failed: public\.orders would lose 20\.0% of its rows \(50 -> 40\)/,
    );
    assert.ok(!err.stderr.includes(pg.password));
  });
});

describe("the deploy's migration command with a tool outside one transaction (real PostgreSQL)", () => {
  let pg: TestPostgres;
  before(async () => {
    pg = await startPostgres();
  });
  after(async () => pg?.close());

  it("takes the release's backup from $SAFE_DEPLOY_BACKUP_FILE: a row loss is restored, not refused for a missing --backup", async () => {
    const { createBackup } = await import("../../../src/core/backup");
    const { mkdtemp, rm } = await import("node:fs/promises");
    const { tmpdir } = await import("node:os");
    const url = await pg.createDatabase("deployguard");
    await pg.query(
      "CREATE TABLE orders (id int); INSERT INTO orders SELECT generate_series(1, 50)",
      [],
      "deployguard",
    );
    const dir = await mkdtemp(join(tmpdir(), "deployguard-"));
    try {
      const b = await createBackup({ databaseUrl: url, dir, compression: "none" });
      const c = migrationCommand({
        tool: "command",
        command: `psql "$DATABASE_URL" -c 'DELETE FROM orders WHERE id > 40'`,
        dir: ".",
        workDir: ROOT,
        runIn: "local",
        guard: { criticalTables: ["orders"], backupFromEnv: true },
      });
      assert.match(c.create, / --backup "\$SAFE_DEPLOY_BACKUP_FILE"$/);
      const err = await promisify(execFile)("/bin/sh", ["-c", c.create], {
        cwd: c.dir,
        env: { ...process.env, ...c.environment, DATABASE_URL: url, SAFE_DEPLOY_BACKUP_FILE: b.file },
      }).then(
        () => assert.fail("must fail"),
        (e: { code: number; stderr: string }) => e,
      );
      assert.equal(err.code, 1, err.stderr);
      assert.match(err.stderr, /restored automatically from /);
      const [{ n }] = await pg.query<{ n: string }>("SELECT count(*) AS n FROM orders", [], "deployguard");
      assert.equal(n, "50");
      // node-pg-migrate's guard works inside its own transaction: no backup argument.
      const npm = migrationCommand({
        tool: "node-pg-migrate",
        dir: "m",
        workDir: ROOT,
        runIn: "local",
        guard: { criticalTables: ["orders"], backupFromEnv: true },
      });
      assert.ok(!npm.create.includes("--backup"));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
