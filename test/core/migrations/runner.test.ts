import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { Client } from "pg";
import { failedMigration, failureHints, MIGRATE_LOCK, migrate } from "../../../src/core/migrations/runner";
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

  it(
    "up, current, history, check and down report versions before and after",
    { timeout: 60_000 },
    async () => {
      const url = await pg.createDatabase("basic");
      const o = { ...base, dir: `${FIX}/npm`, databaseUrl: url };
      await assert.rejects(
        migrate({ ...o, action: "check" }),
        /3 pending: 1700000001000_create-users, .*\nfix: apply them with `safe-deploy migrate up`/,
      );
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
    },
  );

  it(
    "a migration failing half-way leaves the database as before, and the error hides the password",
    { timeout: 60_000 },
    async () => {
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
        (
          await q(
            "SELECT 1 FROM information_schema.columns WHERE table_name='users' AND column_name='broken'",
          )
        ).length,
        0,
      );
    },
  );

  it(
    "two runs at once never interleave: the second waits, then finds nothing to do",
    { timeout: 60_000 },
    async () => {
      const url = await pg.createDatabase("twice");
      const o = { ...base, dir: `${FIX}/npm`, databaseUrl: url, action: "up" as const };
      const [a, b] = await Promise.all([migrate(o), migrate(o)]);
      assert.deepEqual([a.after, b.after], ["1700000003000_users-name", "1700000003000_users-name"]);
      assert.ok([a.before, b.before].includes("1700000003000_users-name"), "one run saw the other's result");
      assert.equal(
        (await pg.query<{ n: string }>("SELECT count(*) AS n FROM pgmigrations", [], "twice"))[0].n,
        "3",
      );
    },
  );

  it(
    "a run that cannot get the lock in time fails naming the holder's pid and application_name",
    { timeout: 60_000 },
    async () => {
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
    },
  );

  it("lock_timeout stops a migration stuck behind another session's lock", { timeout: 60_000 }, async () => {
    const url = await pg.createDatabase("locked");
    const o = { ...base, dir: `${FIX}/npm`, databaseUrl: url };
    await migrate({ ...o, action: "up", target: "2" });
    const app = new Client({ connectionString: url, application_name: "report job" });
    await app.connect();
    try {
      await app.query("BEGIN");
      await app.query("LOCK TABLE users IN ACCESS SHARE MODE");
      const pid = (await app.query<{ pid: number }>("SELECT pg_backend_pid() AS pid")).rows[0].pid;
      const err = await migrate({ ...o, action: "up", lockTimeout: "500ms" }).then(
        () => assert.fail("must fail"),
        (e: Error) => e,
      );
      assert.match(err.message, /failed in migration 1700000003000_users-name/);
      assert.match(
        err.message,
        new RegExp(
          `lock_timeout \\(500ms\\) cancelled the migration: blocked by pid ${pid} \\(application_name "report job", idle in transaction.*holding locks on users\\) while the migration waited for AccessExclusiveLock on users`,
        ),
      );
      assert.match(err.message, new RegExp(`SELECT pg_terminate_backend\\(${pid}\\), then re-run`));
      await app.query("ROLLBACK");
    } finally {
      await app.end();
    }
    assert.equal((await migrate({ ...o, action: "up" })).after, "1700000003000_users-name");
  });

  it(
    "with lockRetries, a migration cancelled by lock_timeout runs again once the lock is gone",
    { timeout: 60_000 },
    async () => {
      const url = await pg.createDatabase("retry");
      const o = { ...base, dir: `${FIX}/npm`, databaseUrl: url };
      await migrate({ ...o, action: "up", target: "2" });
      const app = new Client({ connectionString: url });
      await app.connect();
      await app.query("BEGIN");
      await app.query("LOCK TABLE users IN ACCESS SHARE MODE");
      const lines: string[] = [];
      const run = migrate({
        ...o,
        action: "up",
        lockTimeout: "300ms",
        lockRetries: 5,
        log: (l) => lines.push(l),
      });
      // Release the lock only once the first attempt has been cancelled.
      const deadline = Date.now() + 60_000;
      while (!lines.some((l) => /lock_timeout hit, retry 1\/5/.test(l))) {
        if (Date.now() > deadline) assert.fail(`no retry logged in 60 s: ${lines.join(" | ")}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      await new Promise((r) => setTimeout(r, 50));
      await app.query("ROLLBACK");
      await app.end();
      assert.equal((await run).after, "1700000003000_users-name");
    },
  );

  it(
    "a CONCURRENTLY build cancelled by lock_timeout is named with its INVALID index and not retried into 'already exists'",
    { timeout: 60_000 },
    async () => {
      const url = await pg.createDatabase("cic");
      const o = { ...base, dir: `${FIX}/npm-concurrently`, databaseUrl: url };
      await migrate({ ...o, action: "up", target: "1" });
      // A transaction holding a snapshot older than the build makes CREATE INDEX CONCURRENTLY wait for
      // it (a long report, a pg_dump); lock_timeout then cancels the build half-way.
      const app = new Client({ connectionString: url });
      await app.connect();
      const lines: string[] = [];
      try {
        await app.query("BEGIN ISOLATION LEVEL REPEATABLE READ");
        await app.query("SELECT count(*) FROM items");
        const err = await migrate({
          ...o,
          action: "up",
          lockTimeout: "500ms",
          lockRetries: 2,
          log: (l) => lines.push(l),
        }).then(
          () => assert.fail("must fail"),
          (e: Error) => e,
        );
        assert.match(err.message, /failed in migration 1700000002000_items-name-index/);
        assert.match(err.message, /canceling statement due to lock timeout/);
        assert.doesNotMatch(err.message, /error: relation "items_name_idx" already exists/);
        assert.match(err.message, /waited for ShareLock on an older transaction/);
        assert.match(
          err.message,
          /left INVALID index public\.items_name_idx .* DROP INDEX CONCURRENTLY public\.items_name_idx/,
        );
        assert.ok(!lines.some((l) => /retry/.test(l)), lines.join(" | "));
      } finally {
        await app.end();
      }
      await pg.query("DROP INDEX CONCURRENTLY items_name_idx", [], "cic");
      assert.equal((await migrate({ ...o, action: "up" })).after, "1700000002000_items-name-index");
    },
  );

  it(
    "integrity: a migration that deletes rows of a critical table fails the run",
    { timeout: 60_000 },
    async () => {
      const url = await pg.createDatabase("loss");
      const o = { ...base, dir: `${FIX}/npm-loss`, databaseUrl: url };
      await migrate({ ...o, action: "up", target: "3" });
      await assert.rejects(
        migrate({ ...o, action: "up", integrity: { criticalTables: ["users", "orders"] } }),
        /public\.orders would lose 20\.0% of its rows \(50 -> 40\)/,
      );
      // The failed run was rolled back in its transaction: the same migration is still pending.
      const ok = await migrate({
        ...o,
        action: "up",
        integrity: { criticalTables: ["orders"], maxRowLossPercent: 25 },
      });
      assert.equal(ok.after, "1700000004000_delete-orders");
      assert.ok(ok.rowChanges?.includes("public.pgmigrations: 3 -> 4 (+1)"));
    },
  );

  it(
    "integrity: a critical table that exists neither before nor after is a usage error, not a silent pass",
    { timeout: 60_000 },
    async () => {
      const url = await pg.createDatabase("typo");
      const o = { ...base, dir: `${FIX}/npm-loss`, databaseUrl: url };
      // A first deploy: `users` does not exist before, the migrations create it; that is fine.
      await migrate({ ...o, action: "up", target: "3", integrity: { criticalTables: ["users"] } });
      const err = await migrate({
        ...o,
        action: "up",
        integrity: { criticalTables: ["order", "users"] },
      }).then(
        () => assert.fail("must fail"),
        (e: Error & { exitCode?: number }) => e,
      );
      assert.equal(err.exitCode, 2);
      assert.match(
        err.message,
        /^critical table public\.order does not exist, before or after the migrations, so its rows were not checked \(tables there are: public\.orders, public\.users\)/,
      );
      assert.match(
        err.message,
        /The migrations did run: schema version 1700000003000_users-name -> 1700000004000_delete-orders/,
      );
    },
  );

  it("an unreachable database is exit 3 without the password", { timeout: 60_000 }, async () => {
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

describe("up REV / down REV with node-pg-migrate", () => {
  let pg: TestPostgres;
  before(async () => {
    pg = await startPostgres();
  });
  after(async () => pg?.close());

  it(
    "up REV applies up to and including REV; down REV leaves REV as the latest",
    { timeout: 60_000 },
    async () => {
      const url = await pg.createDatabase("rev");
      const o = { ...base, dir: `${FIX}/npm`, databaseUrl: url };
      assert.equal(
        (await migrate({ ...o, action: "up", target: "1700000002000_create-orders" })).after,
        "1700000002000_create-orders",
      );
      assert.equal(
        (await migrate({ ...o, action: "up", target: "1700000002000_create-orders" })).output,
        "nothing to do",
      );
      assert.equal((await migrate({ ...o, action: "up" })).after, "1700000003000_users-name");
      assert.equal(
        (await migrate({ ...o, action: "down", target: "1700000001000_create-users" })).after,
        "1700000001000_create-users",
      );
      await assert.rejects(migrate({ ...o, action: "up", target: "nope" }), /no migration named nope/);
    },
  );
});

describe("check", () => {
  let pg: TestPostgres;
  before(async () => {
    pg = await startPostgres();
  });
  after(async () => pg?.close());

  it("fails on an INVALID index and on a missing backup file", { timeout: 60_000 }, async () => {
    const url = await pg.createDatabase("inv");
    const o = { ...base, dir: `${FIX}/npm`, databaseUrl: url };
    await migrate({ ...o, action: "up" });
    assert.equal((await migrate({ ...o, action: "check" })).output, "0 pending");
    // A unique index built CONCURRENTLY over duplicates fails and stays behind INVALID.
    await pg.query("INSERT INTO users (email) VALUES ('dup@x'), ('dup@x')", [], "inv");
    await assert.rejects(
      pg.query("CREATE UNIQUE INDEX CONCURRENTLY users_email_uq ON users (email)", [], "inv"),
    );
    await assert.rejects(
      migrate({ ...o, action: "check" }),
      /invalid indexes: public\.users_email_uq\nfix: DROP INDEX CONCURRENTLY public\.users_email_uq; then re-run/,
    );
    await assert.rejects(
      migrate({ ...o, action: "check" }),
      (e: Error) => !/missing migration/.test(e.message),
    );
    await assert.rejects(
      migrate({ ...o, action: "up", backupFile: "/nonexistent/pre-deploy.dump" }),
      /backup \/nonexistent\/pre-deploy\.dump does not exist/,
    );
  });
});

describe("failedMigration", () => {
  const cases: Array<[string, Parameters<typeof failedMigration>[0], string, string | undefined]> = [
    [
      "node-pg-migrate: the last migration it started",
      "node-pg-migrate",
      "### MIGRATION 1_a (UP) ###\n### MIGRATION 2_b (UP) ###\nError executing:",
      "2_b",
    ],
    [
      "alembic at INFO: the revision it was running",
      "alembic",
      "INFO  [alembic.runtime.migration] Running upgrade a1 -> b2, index\nTraceback",
      "b2",
    ],
    [
      "alembic at WARN: the revision file in the traceback",
      "alembic",
      '  File "/app/alembic/versions/c3_fail.py", line 11, in upgrade\n    op.execute("SELECT 1/0")',
      "versions/c3_fail.py",
    ],
    [
      "prisma",
      "prisma",
      "Migration name: 20240101_add_users\n\nDatabase error code: 42P07",
      "20240101_add_users",
    ],
    [
      "prisma refusing to deploy past an earlier failure (P3009)",
      "prisma",
      "Error: P3009\n\nmigrate found failed migrations in the target database, new migrations will not be applied.\nThe `20240101_add_users` migration started at 2024-01-01 10:00:00 UTC failed",
      "20240101_add_users",
    ],
    ["output that does not say", "command", "ERROR: boom", undefined],
  ];
  for (const [name, tool, output, expected] of cases)
    it(name, () => assert.equal(failedMigration(tool, output), expected));
});

describe("failureHints", () => {
  const base = { blockers: [], newInvalid: [], attempts: 1 };
  it("a failed Prisma migration says what stays applied and the resolve command that unblocks P3009", () => {
    const [hint] = failureHints({
      ...base,
      tool: "prisma",
      failed: "20240101_add_users",
      output: "Error: P3018\n\nA migration failed to apply.\nMigration name: 20240101_add_users",
    });
    assert.match(hint, /statements before the failing one may have stayed applied/);
    assert.match(hint, /`npx prisma migrate resolve --rolled-back 20240101_add_users`/);
  });
  it("a lock_timeout with the blocker gone still says to re-run; nothing is said for a plain SQL error", () => {
    assert.match(
      failureHints({ ...base, output: "error: canceling statement due to lock timeout" })[0],
      /had gone before it could be named.*re-run/,
    );
    assert.deepEqual(
      failureHints({ ...base, tool: "node-pg-migrate", output: "error: division by zero" }),
      [],
    );
  });
});
