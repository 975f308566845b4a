import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { rehearse, splitPassword } from "../../../src/core/migrations/rehearsal";
import { migrate } from "../../../src/core/migrations/runner";
import { prismaDatasource } from "../../../src/core/migrations/target";
import { startPostgres, type TestPostgres } from "../../helpers/postgres";
import { prismaProject } from "../../helpers/prisma-standin";

// Issue 21, Prisma: its layout and SQL are real; its CLI is the STAND-IN of test/helpers/prisma-standin.ts
// (Prisma's engine cannot be downloaded here).
const MIGRATIONS = {
  "20260101000000_users": "CREATE TABLE users (id serial PRIMARY KEY, email text NOT NULL);",
  "20260102000000_orders": "CREATE TABLE orders (id serial PRIMARY KEY, user_id int REFERENCES users);",
  "20260103000000_users_name": "ALTER TABLE users ADD COLUMN name text;",
};

async function rejected(p: Promise<unknown>): Promise<Error & { exitCode?: number }> {
  return p.then(
    () => assert.fail("must fail"),
    (e: Error & { exitCode?: number }) => e,
  );
}

const tableExists = async (pg: TestPostgres, db: string, t: string) =>
  (await pg.query<{ t: string | null }>("SELECT to_regclass($1)::text AS t", [t], db))[0].t !== null;

describe("prismaDatasource", () => {
  it("reads url and directUrl, env() or literal, ignoring comments", () => {
    assert.deepEqual(
      prismaDatasource(
        'datasource db {\n  provider = "postgresql"\n  // url = env("OLD")\n  url = env("NEXT_PRIVATE_DATABASE_URL")\n  directUrl = "postgres://u:p@h/d"\n}\n',
      ),
      [
        { key: "url", env: "NEXT_PRIVATE_DATABASE_URL" },
        { key: "directUrl", literal: "postgres://u:p@h/d" },
      ],
    );
  });
});

describe("Prisma on an existing project (stand-in CLI), real PostgreSQL", () => {
  let pg: TestPostgres;
  let tmp: string;
  before(async () => {
    pg = await startPostgres();
    tmp = await mkdtemp(join(tmpdir(), "sd-prisma-adopt-"));
  });
  after(async () => {
    await pg?.close();
    await rm(tmp, { recursive: true, force: true });
  });

  it("rehearse applies pending migrations one step each, named by directory", async () => {
    const p = await prismaProject('  url = env("DATABASE_URL")\n', {
      "20260101000000_users": MIGRATIONS["20260101000000_users"],
    });
    try {
      const live = await pg.createDatabase("live");
      await migrate({
        action: "up",
        tool: "prisma",
        dir: "prisma/migrations",
        workDir: p.work,
        databaseUrl: live,
      });
      await p.add("20260102000000_orders", MIGRATIONS["20260102000000_orders"]);
      await p.add("20260103000000_users_name", MIGRATIONS["20260103000000_users_name"]);
      const backup = join(tmp, "live.dump");
      const { url: bare, env } = splitPassword(live);
      await promisify(execFile)("/usr/lib/postgresql/15/bin/pg_dump", ["-Fc", "-f", backup, bare], {
        env: { ...process.env, ...env },
      });
      const r = await rehearse({
        backupFile: backup,
        databaseUrl: pg.url("postgres"),
        tool: "prisma",
        dir: "prisma/migrations",
        workDir: p.work,
      });
      assert.equal(r.failure, undefined);
      assert.deepEqual(
        r.steps.map((s) => `${s.from} -> ${s.to}`),
        [
          "20260101000000_users -> 20260102000000_orders",
          "20260102000000_orders -> 20260103000000_users_name",
        ],
      );
      assert.deepEqual(
        r.steps.map((s) => s.statements?.map((st) => st.statement)),
        [
          ["CREATE TABLE public.orders, public.orders_id_seq, public.orders_pkey"],
          ["ALTER TABLE public.users"],
        ],
      );
    } finally {
      await rm(p.work, { recursive: true, force: true });
    }
  });

  it('schema.prisma reading env("NEXT_PRIVATE_DATABASE_URL"): migrate stops before running, naming it; with databaseUrlEnv it migrates the named database', async () => {
    const p = await prismaProject('  url = env("NEXT_PRIVATE_DATABASE_URL")\n', MIGRATIONS);
    try {
      const named = await pg.createDatabase("next");
      const o = { action: "up" as const, tool: "prisma" as const, dir: "prisma/migrations", workDir: p.work };
      const err = await rejected(migrate({ ...o, databaseUrl: named }));
      assert.equal(err.exitCode, 2);
      assert.match(
        err.message,
        /schema\.prisma: the datasource `url` reads env\("NEXT_PRIVATE_DATABASE_URL"\), which safe-deploy does not set.*Nothing was migrated\. Set `migrations\.databaseUrlEnv: NEXT_PRIVATE_DATABASE_URL`/,
      );
      assert.equal(await tableExists(pg, "next", "users"), false);
      const r = await migrate({ ...o, databaseUrl: named, databaseUrlEnv: "NEXT_PRIVATE_DATABASE_URL" });
      assert.equal(r.after, "20260103000000_users_name");
    } finally {
      await rm(p.work, { recursive: true, force: true });
    }
  });

  it("a tool that migrated another database (URL from a config safe-deploy cannot read): the run fails saying the named one did not move", async () => {
    const p = await prismaProject('  url = env("DATABASE_URL")\n', MIGRATIONS);
    const other = await pg.createDatabase("elsewhere");
    process.env.SD_TEST_OTHER_URL = other;
    process.env.PRISMA_STANDIN_URL_ENV = "SD_TEST_OTHER_URL";
    try {
      const named = await pg.createDatabase("named");
      const err = await rejected(
        migrate({
          action: "up",
          tool: "prisma",
          dir: "prisma/migrations",
          workDir: p.work,
          databaseUrl: named,
        }),
      );
      assert.equal(err.exitCode, 1);
      assert.match(
        err.message,
        /^prisma reported applying 20260101000000_users, 20260102000000_orders, 20260103000000_users_name, but _prisma_migrations in the database named \(localhost:\d+\/named\) did not move: still at \(none\)\. The migrations ran against another database: /,
      );
      assert.equal(
        await tableExists(pg, "elsewhere", "users"),
        true,
        "the stand-in did migrate the other one",
      );
      assert.equal(await tableExists(pg, "named", "users"), false);
    } finally {
      delete process.env.PRISMA_STANDIN_URL_ENV;
      delete process.env.SD_TEST_OTHER_URL;
      await rm(p.work, { recursive: true, force: true });
    }
  });
});
