// Issue 22 (session 13): the row-loss check after the run where session 11 left survivors: a loss the
// in-transaction guard cannot see (a node-pg-migrate migration that turns triggers off) on two
// critical tables at once, with no backup to restore; and a restore that finds no database left to
// keep aside (dropped between the check and the restore).
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdir, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { it } from "node:test";
import { createBackup } from "../../../src/core/backup";
import { migrate } from "../../../src/core/migrations/runner";
import { failure } from "../../helpers/failure";
import { fileServer } from "../../helpers/file-server";
import { PG_BIN } from "../../helpers/postgres";

const ROOT = join(__dirname, "../../..");
const PSQL = `${PG_BIN}/psql`;
const f = fileServer("sd-runner-loss-edges-");

it(
  "node-pg-migrate with triggers turned off: each critical table's loss named, `; ` between them, and no backup to restore",
  { timeout: 120_000 },
  async () => {
    const url = await f.pg.createDatabase("replica");
    await f.pg.query(
      "CREATE TABLE a (id int); CREATE TABLE b (id int); INSERT INTO a VALUES (1), (2); INSERT INTO b VALUES (1), (2)",
      [],
      "replica",
    );
    const work = join(f.tmp, "replica");
    await mkdir(join(work, "mig"), { recursive: true });
    await symlink(join(ROOT, "node_modules"), join(work, "node_modules"));
    // A replica role fires no ordinary trigger: the guard's, on pgmigrations, never runs.
    await writeFile(
      join(work, "mig", "1_wipe.sql"),
      "-- Up Migration\nSET session_replication_role = replica;\nDELETE FROM a;\nDELETE FROM b WHERE id = 2;\n",
    );
    assert.deepEqual(
      await failure(
        migrate({
          tool: "node-pg-migrate",
          action: "up",
          dir: "mig",
          workDir: work,
          databaseUrl: url,
          integrity: { criticalTables: ["a", "b"] },
        }),
      ),
      [
        "CheckFailedError",
        "integrity check failed: public.a lost 100.0% of its rows (2 -> 0); public.b lost 50.0% of its rows (2 -> 1); limit is 0% (integrity.maxRowLossPercent). Restore the pre-deploy backup",
      ],
    );
  },
);

it("a restore into a database dropped meanwhile: restored, and no kept copy is named", async () => {
  const url = await f.pg.createDatabase("gone");
  await f.pg.query("CREATE TABLE orders (id int); INSERT INTO orders VALUES (1), (2)", [], "gone");
  const file = (await createBackup({ databaseUrl: url, dir: join(f.tmp, "backups"), compression: "none" }))
    .file;
  const [name, message] = await failure(
    migrate({
      tool: "command",
      action: "up",
      dir: ".",
      workDir: f.tmp,
      databaseUrl: url,
      custom: { up: `${PSQL} "$DATABASE_URL" -Xqc "DELETE FROM orders"` },
      integrity: { criticalTables: ["orders"] },
      backupFile: file,
      // Between the check and the restore (safe-deploy's session already closed), someone drops it.
      log: (l) => {
        if (l.includes("rows lost, restoring"))
          execFileSync(PSQL, ["-Xq", f.pg.url("postgres"), "-c", "DROP DATABASE gone WITH (FORCE)"]);
      },
    }),
  );
  assert.deepEqual(
    [name, message],
    [
      "CheckFailedError",
      `integrity check failed: public.orders lost 100.0% of its rows (2 -> 0); limit is 0% (integrity.maxRowLossPercent). The database was restored automatically from ${file}, so no row is lost. Fix the migration, or raise the limit if the loss is intended`,
    ],
  );
  assert.deepEqual(await f.pg.query("SELECT count(*)::int AS n FROM orders", [], "gone"), [{ n: 2 }]);
});
