// Two backups one after the other (a script, the deploy's backup right after a manual one): the
// second must not be refused as "another backup ... is running" because the first one's session,
// already gone from the client's side, still held the per-database lock on the server (seen once in
// CI: create-edges' fourth backup in a row was refused).
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client } from "pg";
import { until } from "../../helpers/bounded";
import { startPostgres, type TestPostgres } from "../../helpers/postgres";
import { createBackup } from "../../../src/core/backup/create";

let pg: TestPostgres;
let dir: string;

before(async () => {
  pg = await startPostgres();
  dir = mkdtempSync(join(tmpdir(), "sd-backup-lock-"));
  await pg.query("CREATE DATABASE shop");
  await pg.query("CREATE TABLE t AS SELECT generate_series(1, 100) AS id", [], "shop");
});
after(async () => {
  await pg?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test("a backup gives its database's backup lock back before it returns", async () => {
  for (let i = 0; i < 10; i++) {
    await createBackup({ databaseUrl: pg.url("shop"), dir, label: `run${i}` });
    const held = await pg.query<{ pid: number }>("SELECT pid FROM pg_locks WHERE locktype = 'advisory'");
    assert.deepEqual(held, [], `no advisory lock held after backup ${i + 1}`);
  }
});

test("a lock given back moments after the backup first asks for it (a session still leaving): the backup goes on", async () => {
  const holder = new Client({ connectionString: pg.url("shop") });
  await holder.connect();
  let released = false;
  try {
    await holder.query("SELECT pg_advisory_lock(hashtext('safe-deploy:backup:shop'))");
    const backup = createBackup({ databaseUrl: pg.url("shop"), dir, label: "after" });
    backup.catch(() => {});
    // Its session is there, trying the lock: only then is it given back.
    await until("the backup's session to be connected", async () => {
      const [{ n }] = await pg.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = 'shop' AND application_name = 'safe-deploy-backup'",
      );
      return n > 0;
    });
    await holder.query("SELECT pg_advisory_unlock(hashtext('safe-deploy:backup:shop'))");
    released = true;
    const r = await backup;
    assert.equal(r.manifest.rowCounts["public.t"], 100);
  } finally {
    if (!released) await holder.query("SELECT pg_advisory_unlock_all()").catch(() => {});
    await holder.end();
  }
});
