// Issue 22: what a user feels of migrate() itself, fast enough for mutation testing (one server, a
// shell command or three small node-pg-migrate runs): the timeouts and application_name the tool's
// sessions get, the advisory lock held while it runs, the version table read before and after, the
// checksums recorded and forgotten, the row-loss check armed for critical tables.
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { connect, MIGRATE_LOCK, migrate, schemaVersion } from "../../../src/core/migrations/runner";
import { PG_BIN, startPostgres, type TestPostgres } from "../../helpers/postgres";

const ROOT = join(__dirname, "../../..");
const FIX = "test/fixtures/migrations";
const PSQL = `${PG_BIN}/psql`;

describe("migrate() as the tool sees it", () => {
  let pg: TestPostgres;
  before(async () => {
    pg = await startPostgres();
  });
  after(async () => pg?.close());

  it(
    "the tool's session gets lock_timeout, statement_timeout and its application_name; the lock is held meanwhile",
    { timeout: 60_000 },
    async () => {
      const url = await pg.createDatabase("settings");
      const sql =
        "SELECT current_setting('lock_timeout') || '|' || current_setting('statement_timeout') || '|' || " +
        "current_setting('application_name') || '|' || (SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' " +
        `AND classid = ${MIGRATE_LOCK[0]} AND objid = ${MIGRATE_LOCK[1]} AND objsubid = 2 AND granted)`;
      const run = (o: { lockTimeout?: string; statementTimeout?: string; action?: "down" }) =>
        migrate({
          tool: "command",
          action: "up",
          dir: ".",
          workDir: ROOT,
          databaseUrl: url,
          databaseUrlEnv: "APP_DB_URL",
          custom: {
            up: `${PSQL} "$APP_DB_URL" -XAtc "${sql}"`,
            down: `${PSQL} "$APP_DB_URL" -XAtc "${sql}"`,
          },
          ...o,
        });
      assert.equal(
        (await run({ lockTimeout: "3s", statementTimeout: "1min" })).output.trim(),
        "3s|1min|safe-deploy migrate tool|1",
      );
      assert.equal((await run({})).output.trim(), "5s|15min|safe-deploy migrate tool|1");
      // down changes the schema too: it runs under the lock.
      assert.equal((await run({ action: "down" })).output.trim(), "5s|15min|safe-deploy migrate tool|1");
      // The lock is released once the run ends: another session takes it at once.
      const other = await connect(url, "after");
      try {
        const { rows } = await other.query<{ ok: boolean }>(
          "SELECT pg_try_advisory_lock($1, $2) AS ok",
          MIGRATE_LOCK,
        );
        assert.equal(rows[0].ok, true);
      } finally {
        await other.end();
      }
    },
  );

  it(
    "node-pg-migrate: versions before and after, checksums recorded on up and forgotten on down",
    { timeout: 120_000 },
    async () => {
      const url = await pg.createDatabase("versions");
      const lines: string[] = [];
      const o = {
        tool: "node-pg-migrate" as const,
        workDir: ROOT,
        dir: `${FIX}/npm`,
        databaseUrl: url,
        log: (l: string) => lines.push(l),
      };
      const sums = async () =>
        (
          await pg.query<{ name: string }>(
            "SELECT name FROM safe_deploy.migration_history ORDER BY name",
            [],
            "versions",
          )
        ).map((r) => r.name);

      const up1 = await migrate({ ...o, action: "up", target: "1" });
      assert.deepEqual([up1.before, up1.after], [undefined, "1700000001000_create-users"]);
      assert.deepEqual(await sums(), ["1700000001000_create-users"]);
      const up = await migrate({ ...o, action: "up" });
      assert.deepEqual([up.before, up.after], ["1700000001000_create-users", "1700000003000_users-name"]);
      assert.deepEqual(await sums(), [
        "1700000001000_create-users",
        "1700000002000_create-orders",
        "1700000003000_users-name",
      ]);
      const down = await migrate({ ...o, action: "down" });
      assert.deepEqual(
        [down.before, down.after],
        ["1700000003000_users-name", "1700000002000_create-orders"],
      );
      assert.deepEqual(await sums(), ["1700000001000_create-users", "1700000002000_create-orders"]);
      assert.deepEqual(lines, [
        "migrate up 1 with node-pg-migrate: from (none)",
        "migrate up: now at 1700000001000_create-users",
        "migrate up: checksums recorded for 1700000001000_create-users",
        "migrate up with node-pg-migrate: from 1700000001000_create-users",
        "migrate up: now at 1700000003000_users-name",
        "migrate up: checksums recorded for 1700000002000_create-orders, 1700000003000_users-name",
        "migrate down with node-pg-migrate: from 1700000003000_users-name",
        "migrate down: now at 1700000002000_create-orders",
        "migrate down: checksums forgotten for reverted 1700000003000_users-name",
      ]);
      // Applied before safe-deploy kept checksums: the next run records them first, and says so.
      await pg.query("DELETE FROM safe_deploy.migration_history", [], "versions");
      lines.length = 0;
      await migrate({ ...o, action: "up" });
      assert.deepEqual(lines, [
        "recorded the checksums of 2 already-applied migration(s) in safe_deploy.migration_history (first run with checksums; edits from now on are found): 1700000001000_create-users, 1700000002000_create-orders",
        "migrate up with node-pg-migrate: from 1700000002000_create-orders",
        "migrate up: now at 1700000003000_users-name",
        "migrate up: checksums recorded for 1700000003000_users-name",
      ]);
      assert.deepEqual(
        await pg.query(
          "SELECT name, recorded_by AS by FROM safe_deploy.migration_history ORDER BY name",
          [],
          "versions",
        ),
        [
          { name: "1700000001000_create-users", by: "backfill" },
          { name: "1700000002000_create-orders", by: "backfill" },
          { name: "1700000003000_users-name", by: "up" },
        ],
      );
      lines.length = 0;
      await migrate({ ...o, action: "down", target: "2" });
      assert.deepEqual(lines.slice(-1), [
        "migrate down: checksums forgotten for reverted 1700000002000_create-orders, 1700000003000_users-name",
      ]);
      const client = await connect(url);
      try {
        assert.equal(await schemaVersion(client, "node-pg-migrate"), "1700000001000_create-users");
        assert.equal(await schemaVersion(client, "prisma"), undefined);
        assert.equal(await schemaVersion(client, "command"), undefined);
      } finally {
        await client.end();
      }
    },
  );

  it(
    "critical tables: a loss over the limit is rolled back with the figures; within it, the changes are reported",
    { timeout: 120_000 },
    async () => {
      const url = await pg.createDatabase("loss");
      const o = { tool: "node-pg-migrate" as const, workDir: ROOT, dir: `${FIX}/npm-loss`, databaseUrl: url };
      // Once the run ends, however it ends, nothing of it stays armed: the guard's trigger would make the
      // next release's migrations fail on a stale baseline, the marker would mark the users' own DDL.
      const leftArmed = async () =>
        assert.deepEqual(
          await pg.query(
            `SELECT (SELECT count(*) FROM pg_trigger WHERE tgname = 'safe_deploy_row_guard')::int AS guard,
               (SELECT count(*) FROM safe_deploy.row_guard)::int AS baseline,
               (SELECT count(*) FROM pg_event_trigger WHERE evtname LIKE 'safe_deploy_mark%')::int AS marker,
               (SELECT count(*) FROM safe_deploy.migration_marker)::int AS marking`,
            [],
            "loss",
          ),
          [{ guard: 0, baseline: 0, marker: 0, marking: 0 }],
        );
      await migrate({ ...o, action: "up", target: "3" });
      const err = await migrate({
        ...o,
        action: "up",
        integrity: { criticalTables: ["orders"], maxRowLossPercent: 19 },
      }).then(
        () => assert.fail("must fail"),
        (e: Error) => e,
      );
      assert.equal(err.name, "CheckFailedError");
      assert.match(
        err.message,
        /^integrity check failed: .*orders.*; limit is 19% \(--max-row-loss-percent \/ integrity\.maxRowLossPercent\)\. The migrations' transaction was rolled back, so no row was lost: schema version still 1700000003000_users-name\./,
      );
      assert.deepEqual(await pg.query("SELECT count(*)::int AS n FROM orders", [], "loss"), [{ n: 50 }]);
      await leftArmed();
      const ok = await migrate({
        ...o,
        action: "up",
        integrity: { criticalTables: ["orders"], maxRowLossPercent: 20 },
      });
      assert.equal(ok.after, "1700000004000_delete-orders");
      assert.deepEqual(ok.rowChanges, ["public.orders: 50 -> 40 (-10)", "public.pgmigrations: 3 -> 4 (+1)"]);
      await leftArmed();
    },
  );
});
