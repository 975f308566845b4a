import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { appendFile, cp, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { after, before, describe, it } from "node:test";
import { runDrift } from "../../../src/cli/commands/drift";
import { runMigrate } from "../../../src/cli/commands/migrate";
import { main } from "../../../src/cli/index";
import { parseDatabaseUrl } from "../../../src/core/backup/runner";
import { runSql } from "../../../src/core/backup/session";
import {
  compareChecksums,
  migrationFileChecksums,
  recordedChecksumProblems,
} from "../../../src/core/migrations/checksums";
import { migrate } from "../../../src/core/migrations/runner";
import { startPostgres, type TestPostgres } from "../../helpers/postgres";

const ROOT = join(__dirname, "../../..");
const FIX = join(ROOT, "test/fixtures/migrations");
let pg: TestPostgres;
let tmp: string;
before(async () => {
  pg = await startPostgres();
  tmp = await mkdtemp(join(tmpdir(), "checksums-"));
});
after(async () => {
  await pg?.close();
  await rm(tmp, { recursive: true, force: true });
});

describe("checksums of applied migrations", () => {
  it("node-pg-migrate: backfilled on first run, an edited data fix fails check and drift until accept-edit", async () => {
    const dir = join(tmp, "npm");
    await cp(join(FIX, "npm"), dir, { recursive: true });
    const url = await pg.createDatabase("sums");
    // Applied before safe-deploy recorded anything: by the tool itself.
    await promisify(execFile)(join(ROOT, "node_modules/.bin/node-pg-migrate"), ["up", "2", "-m", dir], {
      env: { ...process.env, DATABASE_URL: url },
    });
    const logs: string[] = [];
    const o = { tool: "node-pg-migrate" as const, dir, databaseUrl: url };
    await migrate({ ...o, action: "up", log: (l) => logs.push(l) });
    assert.ok(
      logs.includes(
        "recorded the checksums of 2 already-applied migration(s) in safe_deploy.migration_history (first run with checksums; edits from now on are found): 1700000001000_create-users, 1700000002000_create-orders",
      ),
      logs.join("\n"),
    );
    const rows = await pg.query<{ name: string; recorded_by: string }>(
      "SELECT name, recorded_by FROM safe_deploy.migration_history ORDER BY name",
      [],
      "sums",
    );
    assert.deepEqual(
      rows.map((r) => `${r.name} ${r.recorded_by}`),
      [
        "1700000001000_create-users backfill",
        "1700000002000_create-orders backfill",
        "1700000003000_users-name up",
      ],
    );
    const cli = { tool: "node-pg-migrate", dir, databaseUrl: url, out: () => {} };
    await runMigrate({ ...cli, action: "check" });
    await runDrift({ migrations: dir, databaseUrl: url, out: () => {} });
    // A data fix: the schema stays the same, so drift alone could never see it.
    await appendFile(
      join(dir, "1700000002000_create-orders.sql"),
      "\n-- fix\nUPDATE orders SET total = 0;\n",
    );
    const check = await runMigrate({ ...cli, action: "check" }).then(
      () => assert.fail("check must fail"),
      (e: Error & { exitCode?: number }) => e,
    );
    assert.equal(check.exitCode, 1);
    assert.match(
      check.message,
      /^applied migration\(s\) changed since safe-deploy recorded their checksum: 1700000002000_create-orders \(1700000002000_create-orders\.sql, edited\)\. .*`safe-deploy migrate accept-edit 1700000002000_create-orders`$/,
    );
    // Preflight's check, through psql as it runs for a managed database.
    const sql = (q: string) => runSql({ runIn: "local" }, parseDatabaseUrl(url), q, "test");
    const problems = await recordedChecksumProblems("node-pg-migrate", dir, sql);
    assert.equal(problems.length, 1);
    assert.match(
      problems[0],
      /1700000002000_create-orders \(1700000002000_create-orders\.sql, edited\).*\(or pass --allow-migration-edits\)$/,
    );
    const drift = await runDrift({ migrations: dir, databaseUrl: url, out: () => {} }).then(
      () => assert.fail("drift must fail"),
      (e: Error & { exitCode?: number }) => e,
    );
    assert.equal(drift.exitCode, 1);
    assert.match(drift.message, /1700000002000_create-orders \(1700000002000_create-orders\.sql, edited\)/);
    assert.equal(
      await main([
        "migrate",
        "accept-edit",
        "1700000002000_create-orders",
        "--tool",
        "node-pg-migrate",
        "--dir",
        dir,
        "--database-url",
        url,
      ]),
      0,
    );
    await runMigrate({ ...cli, action: "check" });
    await runDrift({ migrations: dir, databaseUrl: url, out: () => {} });
    assert.deepEqual(await recordedChecksumProblems("node-pg-migrate", dir, sql), []);
    // A reverted migration's checksum is forgotten: its edited text is recorded when it runs again.
    await runMigrate({ ...cli, action: "down", yes: true });
    await appendFile(join(dir, "1700000003000_users-name.sql"), "\n-- reworded\n");
    await runMigrate({ ...cli, action: "up" });
    await runMigrate({ ...cli, action: "check" });
  });

  it("alembic: revisions recorded under their revision id; an edited applied revision fails check", async () => {
    const work = join(tmp, "alembic");
    await cp(join(FIX, "alembic"), work, { recursive: true });
    const url = await pg.createDatabase("sums_alembic");
    const o = { tool: "alembic" as const, dir: ".", workDir: work, databaseUrl: url };
    await migrate({ ...o, action: "up", target: "a1" });
    await appendFile(join(work, "versions/b2_accounts_email_index.py"), "\n# not applied yet: not an edit\n");
    await assert.rejects(migrate({ ...o, action: "check" }), /1 pending/);
    await appendFile(join(work, "versions/a1_create_accounts.py"), "\n# data fix\n");
    await assert.rejects(
      migrate({ ...o, action: "check" }),
      /changed since safe-deploy recorded their checksum: a1 \(versions\/a1_create_accounts\.py, edited\)/,
    );
  });

  it("a migration role without CREATE on the database still migrates; the checksums are said not recorded", async () => {
    await pg.createDatabase("sums_lim");
    await pg.query("CREATE ROLE lim LOGIN PASSWORD 'limpw'");
    await pg.query("GRANT CREATE ON SCHEMA public TO lim", [], "sums_lim");
    const url = `postgres://lim:limpw@127.0.0.1:${pg.port}/sums_lim`;
    const logs: string[] = [];
    const r = await migrate({
      tool: "node-pg-migrate",
      dir: join(FIX, "npm"),
      workDir: ROOT,
      databaseUrl: url,
      action: "up",
      log: (l) => logs.push(l),
    });
    assert.equal(r.after, "1700000003000_users-name");
    assert.ok(
      logs.some((l) =>
        /^warning: migration checksums not recorded in safe_deploy\.migration_history \(permission denied for database sums_lim\)/.test(
          l,
        ),
      ),
      logs.join("\n"),
    );
    assert.ok(!logs.join("\n").includes("limpw"));
  });

  it("file names per tool: Prisma's directory of migration.sql, a command's .sql path", async () => {
    const prisma = join(tmp, "prisma");
    await mkdir(join(prisma, "20240101000000_init"), { recursive: true });
    await writeFile(join(prisma, "20240101000000_init/migration.sql"), "CREATE TABLE t (id int);\n");
    await writeFile(join(prisma, "migration_lock.toml"), 'provider = "postgresql"\n');
    const p = await migrationFileChecksums("prisma", prisma);
    assert.deepEqual(
      p.map((f) => `${f.name} ${f.file}`),
      ["20240101000000_init 20240101000000_init/migration.sql"],
    );
    const c = await migrationFileChecksums("command", prisma);
    assert.deepEqual(
      c.map((f) => f.name),
      ["20240101000000_init/migration.sql"],
    );
    const crlf = join(tmp, "crlf");
    await mkdir(crlf);
    await writeFile(join(crlf, "1_a.sql"), "SELECT 1;\r\n");
    const [lf] = await migrationFileChecksums("node-pg-migrate", crlf);
    await writeFile(join(crlf, "1_a.sql"), "SELECT 1;\n");
    assert.deepEqual(compareChecksums(await migrationFileChecksums("node-pg-migrate", crlf), [lf]), []);
    assert.deepEqual(compareChecksums([], [lf]), [{ name: "1_a", file: "1_a.sql", change: "removed" }]);
  });
});
