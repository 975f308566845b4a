import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { chmod, cp, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { runDrift } from "../../../src/cli/commands/drift";
import { checkDrift, diffSchemas, formatDrift } from "../../../src/core/migrations/drift";
import { migrate } from "../../../src/core/migrations/runner";
import { main } from "../../../src/cli/index";
import { interruptCli } from "../../helpers/interrupt";
import { prismaStandIn } from "../../helpers/prisma-standin";
import { startPostgres, type TestPostgres } from "../../helpers/postgres";

const ROOT = join(__dirname, "../../..");
const DIR = "test/fixtures/migrations/npm";

describe("drift", () => {
  let pg: TestPostgres;
  before(async () => {
    pg = await startPostgres();
  });
  after(async () => pg?.close());

  it("diffSchemas and formatDrift name what is missing, extra and different", () => {
    const items = diffSchemas(
      { table: { "public.a": "" }, column: { "public.a.x": "integer NOT NULL" } },
      { table: { "public.b": "" }, column: { "public.a.x": "bigint NOT NULL" } },
    );
    assert.equal(
      formatDrift(items),
      [
        "- table public.a (the migrations create it; live lacks it)",
        "+ table public.b (only in live; no migration creates it)",
        "~ column public.a.x\n    migrations: integer NOT NULL\n    live:       bigint NOT NULL",
      ].join("\n"),
    );
  });

  it("no drift on a clean database; manual ALTERs show up as a readable diff with exit 1", async () => {
    const url = await pg.createDatabase("live");
    await migrate({ action: "up", tool: "node-pg-migrate", dir: DIR, workDir: ROOT, databaseUrl: url });
    const lines: string[] = [];
    await runDrift({ migrations: DIR, workDir: ROOT, databaseUrl: url, out: (t) => lines.push(t) });
    assert.match(lines.join("\n"), /no drift: .* at version 1700000003000_users-name/);

    await pg.query("ALTER TABLE users ALTER COLUMN email DROP NOT NULL", [], "live");
    await pg.query("ALTER TABLE users ADD COLUMN hotfix boolean DEFAULT false", [], "live");
    await pg.query("CREATE INDEX manual_idx ON orders (total)", [], "live");
    await pg.query("ALTER TYPE order_state ADD VALUE 'refunded'", [], "live");
    await pg.query("DROP VIEW paid_orders", [], "live");
    lines.length = 0;
    await assert.rejects(
      runDrift({ migrations: DIR, workDir: ROOT, databaseUrl: url, out: (t) => lines.push(t) }),
      /schema drift: 5 difference/,
    );
    const text = lines.join("\n");
    assert.match(
      text,
      /~ column public\.users\.email\n {4}migrations: text NOT NULL\n {4}live: {7}text NULL/,
    );
    assert.match(text, /\+ column public\.users\.hotfix: boolean NULL DEFAULT false/);
    assert.match(text, /\+ index public\.manual_idx: CREATE INDEX manual_idx ON public\.orders/);
    assert.match(
      text,
      /~ enum public\.order_state\n {4}migrations: new, paid\n {4}live: {7}new, paid, refunded/,
    );
    assert.match(text, /- view public\.paid_orders/);
    assert.equal(await main(["drift", "--migrations", DIR, "--work-dir", ROOT, "--database-url", url]), 1);
    const dbs = await pg.query("SELECT datname FROM pg_database WHERE datname LIKE 'safe_deploy_scratch%'");
    assert.deepEqual(dbs, [], "scratch databases are dropped");
  });

  it("an absolute --migrations is used as given; one that does not exist is a usage error naming the flag", async () => {
    const url = await pg.createDatabase("absolute");
    await migrate({ action: "up", tool: "node-pg-migrate", dir: DIR, workDir: ROOT, databaseUrl: url });
    const lines: string[] = [];
    const o = { workDir: ROOT, databaseUrl: url, out: (t: string) => lines.push(t) };
    await runDrift({ ...o, migrations: join(ROOT, DIR) });
    assert.match(lines.join("\n"), /no drift: .* at version 1700000003000_users-name/);
    await assert.rejects(runDrift({ ...o, migrations: join(ROOT, "test/fixtures/nowhere") }), (e: Error) => {
      assert.equal(e.name, "ConfigError");
      assert.match(e.message, /`--migrations` .*nowhere.* does not exist/);
      return true;
    });
    assert.equal(await main(["drift", "--migrations", "/nowhere/mig", "--database-url", url]), 2);
    const scratchUrl = `postgres://${pg.user}:Hunter2#Secret@127.0.0.1:${pg.port}/scratch`;
    await assert.rejects(runDrift({ ...o, migrations: DIR, scratchUrl }), (e: Error) => {
      assert.equal(e.name, "ConfigError");
      assert.match(e.message, /^`--scratch-url` is not a URL: .*`#` as %23/);
      assert.ok(!e.message.includes("Secret"), e.message);
      return true;
    });
  });
  it("pending migrations are not drift: a database with none applied is compared with an empty schema", async () => {
    const url = await pg.createDatabase("fresh");
    const lines: string[] = [];
    const o = { migrations: DIR, workDir: ROOT, databaseUrl: url, out: (t: string) => lines.push(t) };
    await runDrift(o);
    assert.deepEqual(lines, ["no drift: the live schema matches the migrations at version (none)"]);
    await pg.query("CREATE TABLE notes (id int PRIMARY KEY)", [], "fresh");
    lines.length = 0;
    await assert.rejects(runDrift(o), /schema drift: 4 difference/);
    assert.match(lines.join("\n"), /^\+ table public\.notes \(only in live; no migration creates it\)$/m);
    assert.doesNotMatch(lines.join("\n"), /^- /m, "nothing the migrations create is expected");
  });

  it("a migration edited after it was applied: drift says so, not only 'manual changes'", async () => {
    const url = await pg.createDatabase("edited");
    const tmp = await mkdtemp(join(tmpdir(), "sd-drift-edited-"));
    try {
      await cp(join(ROOT, DIR), tmp, { recursive: true });
      await migrate({ action: "up", tool: "node-pg-migrate", dir: tmp, workDir: ROOT, databaseUrl: url });
      const file = join(tmp, "1700000001000_create-users.sql");
      await writeFile(file, (await readFile(file, "utf8")).replace("email text NOT NULL", "email text"));
      const err = await runDrift({ migrations: tmp, workDir: ROOT, databaseUrl: url, out: () => {} }).then(
        () => assert.fail("must fail"),
        (e: Error) => e,
      );
      assert.match(err.message, /a migration applied before was edited afterwards \(`git log -p -- .*`\)/);
      await pg.query("ALTER TABLE users ALTER COLUMN email DROP NOT NULL", [], "edited");
      await pg.query("CREATE TABLE hotfix (id int)", [], "edited");
      // Only extra objects in live: that is a manual change, and the hint stays out.
      const extra = await runDrift({ migrations: tmp, workDir: ROOT, databaseUrl: url, out: () => {} }).then(
        () => assert.fail("must fail"),
        (e: Error) => e,
      );
      assert.doesNotMatch(extra.message, /edited afterwards/);
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  });

  it("migrated all the way down: the tool's own empty table is not drift", async () => {
    const url = await pg.createDatabase("downed");
    const run = { tool: "node-pg-migrate" as const, dir: DIR, workDir: ROOT, databaseUrl: url };
    await migrate({ ...run, action: "up" });
    await migrate({ ...run, action: "down", target: "3" });
    const [{ n }] = await pg.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM pgmigrations",
      [],
      "downed",
    );
    assert.equal(n, 0, "every migration undone, the table left");
    const lines: string[] = [];
    await runDrift({ migrations: DIR, workDir: ROOT, databaseUrl: url, out: (t: string) => lines.push(t) });
    assert.deepEqual(lines, ["no drift: the live schema matches the migrations at version (none)"]);
  });

  it("with Prisma, only the migrations _prisma_migrations records as finished build the expected schema", async () => {
    // Prisma downloads its engine on first run, so the STAND-IN of test/helpers/prisma-standin.ts plays `migrate deploy`.
    const work = await mkdtemp(join(tmpdir(), "sd-drift-prisma-"));
    try {
      const bin = join(work, "node_modules", ".bin");
      const migrations = join(work, "prisma", "migrations");
      await mkdir(bin, { recursive: true });
      await mkdir(migrations, { recursive: true });
      await writeFile(
        join(work, "prisma", "schema.prisma"),
        'datasource db {\n  provider = "postgresql"\n}\n',
      );
      await writeFile(join(migrations, "migration_lock.toml"), 'provider = "postgresql"\n');
      await writeFile(join(bin, "prisma"), prismaStandIn());
      await chmod(join(bin, "prisma"), 0o755);
      const add = async (name: string, sql: string) => {
        await mkdir(join(migrations, name));
        await writeFile(join(migrations, name, "migration.sql"), sql);
      };
      await add("20260101000000_users", "CREATE TABLE users (id serial PRIMARY KEY, email text NOT NULL);");
      await add("20260102000000_orders", "CREATE TABLE orders (id serial PRIMARY KEY, total numeric);");
      const url = await pg.createDatabase("prisma_live");
      const o = { tool: "prisma" as const, dir: "prisma/migrations", workDir: work, databaseUrl: url };
      await migrate({ ...o, action: "up" });
      // A third migration that failed once and was marked rolled back, and a fourth not yet deployed.
      await add("20260103000000_users_name", "ALTER TABLE users ADD COLUMN name text;");
      await add("20260104000000_audit", "CREATE TABLE audit (id int);");
      await pg.query(
        `INSERT INTO _prisma_migrations (id, checksum, migration_name, started_at, rolled_back_at, applied_steps_count)
         VALUES ('r1', 'x', '20260103000000_users_name', now(), now(), 0)`,
        [],
        "prisma_live",
      );
      const { version, items } = await checkDrift({ ...o, databaseUrl: url });
      assert.equal(version, "20260102000000_orders");
      assert.deepEqual(items, []);
      await pg.query("ALTER TABLE users ADD COLUMN name text", [], "prisma_live");
      const drift = await checkDrift({ ...o, databaseUrl: url });
      assert.deepEqual(
        drift.items.map((d) => `${d.category} ${d.key}`),
        ["column public.users.name"],
      );
      assert.deepEqual(
        (await readdir(tmpdir())).filter((n) => n.startsWith("safe-deploy-prisma-")),
        [],
        "the staged migrations are removed",
      );
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  });

  it("`--scratch-url` naming the live database or one holding other objects is refused (exit 2); a reused scratch works", async () => {
    const url = await pg.createDatabase("scratchlive");
    await migrate({ action: "up", tool: "node-pg-migrate", dir: DIR, workDir: ROOT, databaseUrl: url });
    await pg.query("ALTER TABLE users ADD COLUMN hotfix boolean", [], "scratchlive");
    const o = { migrations: DIR, workDir: ROOT, databaseUrl: url, out: () => {} };
    await assert.rejects(runDrift({ ...o, scratchUrl: url }), (e: Error & { exitCode?: number }) => {
      assert.equal(e.exitCode, 2, e.message);
      assert.match(e.message, /^`--scratch-url` is the live database itself/);
      return true;
    });
    const other = await pg.createDatabase("scratchother");
    await pg.query("CREATE TABLE users (id int)", [], "scratchother");
    await assert.rejects(runDrift({ ...o, scratchUrl: other }), (e: Error & { exitCode?: number }) => {
      assert.equal(e.exitCode, 2, e.message);
      assert.match(e.message, /^`--scratch-url` database "scratchother" is not empty \(table public\.users/);
      return true;
    });
    const empty = await pg.createDatabase("scratchempty");
    for (let run = 0; run < 2; run++)
      await assert.rejects(runDrift({ ...o, scratchUrl: empty }), /schema drift: 1 difference/);
  });

  it("Ctrl-C while the expected schema is built drops the scratch database and exits 3", async () => {
    const work = await mkdtemp(join(tmpdir(), "sd-drift-sigint-"));
    try {
      const dir = join(work, "migrations");
      await cp(join(ROOT, DIR), dir, { recursive: true });
      // Hangs (once told to) until the signal ends it: the command is caught mid-way for sure.
      await writeFile(
        join(dir, "1700000009000_hang.js"),
        `exports.up = async () => {
  if (!process.env.SD_TEST_HANG) return;
  require("fs").writeFileSync(process.env.SD_TEST_HANG, "");
  await new Promise(() => setInterval(() => {}, 1000));
};
`,
      );
      const url = await pg.createDatabase("interrupted");
      await migrate({ action: "up", tool: "node-pg-migrate", dir, workDir: ROOT, databaseUrl: url });
      const marker = join(work, "hanging");
      const { code, err } = await interruptCli(
        ["drift", "--migrations", dir, "--work-dir", ROOT, "--database-url", url],
        () => existsSync(marker),
        "the migration started",
        { ...process.env, SD_TEST_HANG: marker },
      );
      assert.equal(code, 3, err);
      assert.match(err, /drift check interrupted by SIGINT: the scratch database was dropped/);
      const dbs = await pg.query("SELECT datname FROM pg_database WHERE datname LIKE 'safe_deploy_scratch%'");
      assert.deepEqual(dbs, [], "no scratch database left behind");
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  });
});
