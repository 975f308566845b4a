// Issue 22 (session 11): the slower half of migrate()'s edges, last in runner.ts's mutation key: rows
// lost under a tool that does not run in one transaction (restored from the release's real backup, or
// the restore failing too), and lock_timeout's retries naming the session that blocked them.
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { Client } from "pg";
import { createBackup } from "../../../src/core/backup";
import { migrate, type MigrateOptions } from "../../../src/core/migrations/runner";
import { failure } from "../../helpers/failure";
import { PG_BIN, startPostgres, type TestPostgres } from "../../helpers/postgres";

const PSQL = `${PG_BIN}/psql`;
let pg: TestPostgres;
let tmp: string;
before(async () => {
  pg = await startPostgres();
  tmp = await mkdtemp(join(tmpdir(), "runner-loss-"));
});
after(async () => {
  await pg?.close();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

describe("rows lost under a command (no transaction): restored from the release's backup", () => {
  let url: string;
  let file: string;
  const lines: string[] = [];
  const run = (up: string, o: Partial<MigrateOptions> = {}) =>
    migrate({
      tool: "command",
      action: "up",
      dir: ".",
      workDir: tmp,
      databaseUrl: url,
      custom: { up: `${PSQL} "$DATABASE_URL" -Xqc "${up}"` },
      integrity: { criticalTables: ["orders"] },
      backupFile: file,
      log: (l) => lines.push(l),
      ...o,
    });
  const count = async (db: string) =>
    (await pg.query<{ n: number }>("SELECT count(*)::int AS n FROM orders", [], db))[0].n;
  before(async () => {
    url = await pg.createDatabase("restore");
    await pg.query(
      "CREATE TABLE orders (id int); INSERT INTO orders SELECT generate_series(1, 50)",
      [],
      "restore",
    );
    file = (await createBackup({ databaseUrl: url, dir: join(tmp, "backups"), compression: "none" })).file;
  });

  it("a loss over the limit is restored, the migrated copy kept; within the limit the changes are reported", async () => {
    const [name, message] = await failure(run("DELETE FROM orders WHERE id > 40"));
    assert.equal(name, "CheckFailedError");
    const kept = /kept as (\S+)\. Fix/.exec(message)?.[1] ?? "";
    assert.equal(
      message,
      `integrity check failed: public.orders lost 20.0% of its rows (50 -> 40); limit is 0% (integrity.maxRowLossPercent). The database was restored automatically from ${file}, so no row is lost; the database as the migrations left it is kept as ${kept}. Fix the migration, or raise the limit if the loss is intended`,
    );
    assert.equal(await count("restore"), 50);
    assert.equal(await count(kept), 40);
    // The marker was disarmed before the restore: the copy kept does not mark its users' DDL for a day.
    for (const db of ["restore", kept])
      assert.deepEqual(
        await pg.query(
          "SELECT count(*)::int AS n FROM pg_event_trigger WHERE evtname LIKE 'safe_deploy_mark%'",
          [],
          db,
        ),
        [{ n: 0 }],
        db,
      );
    assert.deepEqual(lines.splice(0), [
      "migrate up with command: from (none)",
      "migrate up: now at (none)",
      `migrate up: rows lost, restoring ${file}`,
    ]);
    const ok = await run("DELETE FROM orders WHERE id > 45", {
      integrity: { criticalTables: ["orders"], maxRowLossPercent: 10 },
    });
    assert.deepEqual(ok.rowChanges, ["public.orders: 50 -> 45 (-5)"]);
    assert.equal(await count("restore"), 45);
  });

  it("a restore that fails too says so and how to restore by hand", async () => {
    const garbage = join(tmp, "garbage.dump");
    await writeFile(garbage, "not a backup\n");
    const [name, message] = await failure(run("DROP TABLE orders", { backupFile: garbage }));
    assert.equal(name, "CheckFailedError");
    assert.match(
      message,
      /^integrity check failed: public\.orders lost 100\.0% of its rows \(45 -> dropped\); limit is 0% \(integrity\.maxRowLossPercent\)\. Restoring \S+garbage\.dump automatically failed too: .+; restore it by hand \(`safe-deploy backup restore \S+garbage\.dump`\)$/,
    );
    assert.ok(!message.includes(pg.password), message);
  });
});

describe("lock_timeout with retries", () => {
  it("each attempt is cancelled while a session holds the table: the retry is logged, the blocker named", async () => {
    const url = await pg.createDatabase("retries");
    await pg.query("CREATE TABLE t (id int)", [], "retries");
    const app = new Client({ connectionString: url, application_name: "report job" });
    await app.connect();
    try {
      await app.query("BEGIN");
      await app.query("LOCK TABLE t IN ACCESS SHARE MODE");
      const pid = (await app.query<{ pid: number }>("SELECT pg_backend_pid() AS pid")).rows[0].pid;
      const lines: string[] = [];
      const [name, message] = await failure(
        migrate({
          tool: "command",
          action: "up",
          dir: ".",
          workDir: tmp,
          databaseUrl: url,
          custom: { up: `${PSQL} "$DATABASE_URL" -Xqc "ALTER TABLE t ADD COLUMN c int"` },
          lockTimeout: "1s",
          lockRetries: 1,
          log: (l) => lines.push(l),
        }),
      );
      assert.equal(name, "CheckFailedError");
      assert.deepEqual(lines, [
        "migrate up with command: from (none)",
        "migrate up: lock_timeout hit, retry 1/1 in 2 s",
      ]);
      assert.match(
        message,
        new RegExp(
          `^command up failed \\(exit 1\\); schema version before \\(none\\), now \\(none\\):\\nERROR:  canceling statement due to lock timeout\\n` +
            `lock_timeout \\(1s\\) cancelled the migration on each of 2 attempts: blocked by pid ${pid} \\(application_name "report job", idle in transaction, transaction open \\d+ s, holding locks on t\\) while the migration waited for AccessExclusiveLock on t\\. ` +
            `Nothing of that migration was kept; wait for it to finish, or end it with SELECT pg_terminate_backend\\(${pid}\\), then re-run\\.`,
        ),
      );
    } finally {
      await app.end();
    }
  });
});
