import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { Client } from "pg";
import { MIGRATE_LOCK, migrate } from "../../../src/core/migrations/runner";
import { startPostgres, type TestPostgres } from "../../helpers/postgres";

const ROOT = join(__dirname, "../../..");
const FIX = "test/fixtures/migrations";
const base = { tool: "node-pg-migrate" as const, workDir: ROOT };

describe("migrate runner with node-pg-migrate and real PostgreSQL", () => {
  let pg: TestPostgres;
  before(async () => {
    pg = await startPostgres();
  });
  after(async () => pg?.close());

  it("up, current, history, check and down report versions before and after", async () => {
    const url = await pg.createDatabase("basic");
    const o = { ...base, dir: `${FIX}/npm`, databaseUrl: url };
    assert.match((await migrate({ ...o, action: "check" })).output, /^3 pending/);
    const up1 = await migrate({ ...o, action: "up", target: "1" });
    assert.deepEqual([up1.before, up1.after], [undefined, "1700000001000_create-users"]);
    const up = await migrate({ ...o, action: "up" });
    assert.deepEqual([up.before, up.after], ["1700000001000_create-users", "1700000003000_users-name"]);
    assert.equal((await migrate({ ...o, action: "current" })).output, "1700000003000_users-name");
    assert.match(
      (await migrate({ ...o, action: "history" })).output,
      /create-users {2}applied .*\n.*create-orders {2}applied/,
    );
    assert.equal((await migrate({ ...o, action: "check" })).output, "0 pending");
    const down = await migrate({ ...o, action: "down" });
    assert.equal(down.after, "1700000002000_create-orders");
    assert.equal(
      (
        await pg.query(
          "SELECT 1 FROM information_schema.columns WHERE table_name='users' AND column_name='name'",
          [],
          "basic",
        )
      ).length,
      0,
    );
  });

  it("a migration failing half-way leaves the database as before, and the error hides the password", async () => {
    const url = await pg.createDatabase("broken");
    const o = { ...base, dir: `${FIX}/npm-broken`, databaseUrl: url };
    await migrate({ ...o, action: "up", target: "1" });
    const err = await migrate({ ...o, action: "up" }).then(
      () => assert.fail("must fail"),
      (e: Error) => e,
    );
    assert.match(
      err.message,
      /node-pg-migrate up failed .*before 1700000001000_create-users, now 1700000001000_create-users/s,
    );
    assert.match(err.message, /division by zero/);
    assert.ok(!err.message.includes(pg.password));
    const q = (sql: string) => pg.query(sql, [], "broken");
    assert.equal((await q("SELECT to_regclass('audit') AS t"))[0].t, null);
    assert.equal(
      (await q("SELECT 1 FROM information_schema.columns WHERE table_name='users' AND column_name='broken'"))
        .length,
      0,
    );
  });

  it("two runs at once never interleave: the second waits, then finds nothing to do", async () => {
    const url = await pg.createDatabase("twice");
    const o = { ...base, dir: `${FIX}/npm`, databaseUrl: url, action: "up" as const };
    const [a, b] = await Promise.all([migrate(o), migrate(o)]);
    assert.deepEqual([a.after, b.after], ["1700000003000_users-name", "1700000003000_users-name"]);
    assert.ok([a.before, b.before].includes("1700000003000_users-name"), "one run saw the other's result");
    assert.equal(
      (await pg.query<{ n: string }>("SELECT count(*) AS n FROM pgmigrations", [], "twice"))[0].n,
      "3",
    );
  });

  it("a run that cannot get the lock in time fails naming the holder's pid and application_name", async () => {
    const url = await pg.createDatabase("held");
    const holder = new Client({ connectionString: url, application_name: "deploy from laptop" });
    await holder.connect();
    try {
      await holder.query("SELECT pg_advisory_lock($1, $2)", MIGRATE_LOCK);
      const pid = (await holder.query<{ pid: number }>("SELECT pg_backend_pid() AS pid")).rows[0].pid;
      await assert.rejects(
        migrate({ ...base, dir: `${FIX}/npm`, databaseUrl: url, action: "up", lockWaitSeconds: 1 }),
        new RegExp(`pid ${pid} \\(application_name "deploy from laptop"`),
      );
      assert.equal((await pg.query("SELECT to_regclass('users') AS t", [], "held"))[0].t, null);
    } finally {
      await holder.end();
    }
  });

  it("lock_timeout stops a migration stuck behind another session's lock", async () => {
    const url = await pg.createDatabase("locked");
    const o = { ...base, dir: `${FIX}/npm`, databaseUrl: url };
    await migrate({ ...o, action: "up", target: "2" });
    const app = new Client({ connectionString: url });
    await app.connect();
    try {
      await app.query("BEGIN");
      await app.query("LOCK TABLE users IN ACCESS SHARE MODE");
      await assert.rejects(migrate({ ...o, action: "up", lockTimeout: "500ms" }), /lock timeout/);
      await app.query("ROLLBACK");
    } finally {
      await app.end();
    }
    assert.equal((await migrate({ ...o, action: "up" })).after, "1700000003000_users-name");
  });

  it("integrity: a migration that deletes rows of a critical table fails the run", async () => {
    const url = await pg.createDatabase("loss");
    const o = { ...base, dir: `${FIX}/npm-loss`, databaseUrl: url };
    await migrate({ ...o, action: "up", target: "3" });
    await assert.rejects(
      migrate({ ...o, action: "up", integrity: { criticalTables: ["users", "orders"] } }),
      /public\.orders lost 20\.0% of its rows \(50 -> 40\)/,
    );
    const ok = await migrate({ ...o, action: "down" }).then(() =>
      migrate({ ...o, action: "up", integrity: { criticalTables: ["orders"], maxRowLossPercent: 25 } }),
    );
    assert.equal(ok.after, "1700000004000_delete-orders");
    assert.ok(ok.rowChanges?.includes("public.pgmigrations: 3 -> 4 (+1)"));
  });

  it("an unreachable database is exit 3 without the password", async () => {
    const err = await migrate({
      ...base,
      dir: `${FIX}/npm`,
      action: "up",
      databaseUrl: "postgres://u:s3cretpw@127.0.0.1:1/x",
    }).catch((e) => e);
    assert.equal(err.exitCode, 3);
    assert.ok(!err.message.includes("s3cretpw"));
  });
});
