import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client } from "pg";
import { startPostgres, type TestPostgres } from "../../helpers/postgres";
import { createBackup, restoreBackup } from "../../../src/core/backup";
import { ConfigError } from "../../../src/core/errors";

// Issue 18: a restore took its safety backup, then loaded the archive: the two summed, each leaving a
// core mostly idle. They touch different databases, so the load now runs while the safety dump does;
// both must succeed before the swap.
let pg: TestPostgres;
let dir: string;

before(async () => {
  pg = await startPostgres();
  dir = mkdtempSync(join(tmpdir(), "sd-bk-overlap-"));
});
after(async () => {
  await pg?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const databases = async () =>
  (await pg.query<{ datname: string }>("SELECT datname FROM pg_database ORDER BY 1")).map((d) => d.datname);

async function backupOf(db: string, rows: number): Promise<string> {
  await pg.createDatabase(db);
  await pg.query(
    `CREATE TABLE t (id int PRIMARY KEY, s text);
     INSERT INTO t SELECT g, repeat(md5(g::text), 4) FROM generate_series(1, ${rows}) g;`,
    [],
    db,
  );
  return (await createBackup({ databaseUrl: pg.url(db), dir: join(dir, db), label: "manual" })).file;
}

test("the safety backup's dump and the archive's load run at the same time, and the restore is whole", async () => {
  const file = await backupOf("ov", 400_000);
  await pg.query("INSERT INTO t VALUES (-1, 'after the backup')", [], "ov");
  // The live database outgrows its backup (a table the backup does not hold), so the safety dump still
  // streams well after the load has created its tables and begun its COPY: without it, on a loaded
  // machine, the dump of "ov" could end before the load's COPY began (a CI run saw that, the two COPYs
  // each seen but never at one poll), and the overlap this test proves would go unobserved.
  await pg.query(
    "CREATE TABLE u AS SELECT g AS id, repeat(md5(g::text), 4) AS s FROM generate_series(1, 600000) g",
    [],
    "ov",
  );
  // Watches the server: the safety backup's COPY out of "ov" and the load's COPY into the copy.
  const watcher = new Client({ connectionString: pg.url("postgres") });
  await watcher.connect();
  let watching = true;
  let together = 0;
  const seen = { dump: 0, load: 0 };
  const watch = (async () => {
    while (watching) {
      const { rows } = await watcher.query<{ dump: boolean; load: boolean }>(
        `SELECT bool_or(datname = 'ov' AND query LIKE 'COPY %TO stdout%') AS dump,
                bool_or(datname LIKE 'ov\\_restoring\\_%' AND query LIKE 'COPY %FROM stdin%') AS load
           FROM pg_stat_activity WHERE state = 'active'`,
      );
      if (rows[0].dump) seen.dump++;
      if (rows[0].load) seen.load++;
      if (rows[0].dump && rows[0].load) together++;
      await new Promise((r) => setTimeout(r, 5));
    }
  })();
  let r;
  try {
    r = await restoreBackup(file, { databaseUrl: pg.url("ov"), safetyDir: join(dir, "ov-safety") });
  } finally {
    watching = false;
    await watch;
    await watcher.end();
  }
  assert.ok(seen.dump > 0 && seen.load > 0, `both seen (${JSON.stringify(seen)})`);
  assert.ok(together > 0, `the dump and the load ran at the same time (${JSON.stringify(seen)})`);
  // The copy is the backup's; the safety backup holds the database as it was (the row after the backup).
  const [{ n, marker }] = await pg.query<{ n: number; marker: number }>(
    "SELECT count(*)::int AS n, count(*) FILTER (WHERE id = -1)::int AS marker FROM t",
    [],
    "ov",
  );
  assert.deepEqual({ n, marker }, { n: 400_000, marker: 0 });
  assert.ok(r.safety, "a safety backup was taken");
  assert.equal(r.safety.manifest.rowCounts["public.t"], 400_001);
  assert.deepEqual(
    readdirSync(join(dir, "ov-safety")).filter((f) => f.startsWith(".")),
    [],
    "no temp file left",
  );
  await pg.query(`DROP DATABASE "${r.previousDatabase}"`);
});

test("a safety backup that cannot start fails the restore before anything is created or loaded", async () => {
  const file = await backupOf("early", 1000);
  const notADir = join(dir, "not-a-dir");
  writeFileSync(notADir, "a file where the safety backup's directory should be\n");
  const before = await databases();
  await assert.rejects(
    restoreBackup(file, { databaseUrl: pg.url("early"), safetyDir: notADir }),
    (e: Error) => {
      assert.ok(e instanceof ConfigError, `${e.constructor.name}: ${e.message}`);
      assert.match(e.message, /backup directory .*not-a-dir.* is not a directory/);
      return true;
    },
  );
  assert.deepEqual(await databases(), before, "no copy was created");
  const [{ n }] = await pg.query<{ n: number }>("SELECT count(*)::int AS n FROM t", [], "early");
  assert.equal(n, 1000);
  const [{ limit }] = await pg.query<{ limit: number }>(
    "SELECT datconnlimit AS limit FROM pg_database WHERE datname = 'early'",
  );
  assert.equal(limit, -1, "clients may connect again");
});

test("two restores of one database in the same second keep both old copies, under the next free second", async () => {
  const file = await backupOf("twice", 100);
  const now = new Date("2026-12-06T15:00:00Z");
  const first = await restoreBackup(file, { databaseUrl: pg.url("twice"), now });
  const second = await restoreBackup(file, { databaseUrl: pg.url("twice"), now });
  assert.equal(first.previousDatabase, "twice_before_restore_20261206150000");
  assert.equal(second.previousDatabase, "twice_before_restore_20261206150001");
  const kept = (await databases()).filter((d) => d.startsWith("twice_"));
  assert.deepEqual(kept, ["twice_before_restore_20261206150000", "twice_before_restore_20261206150001"]);
  for (const d of kept) await pg.query(`DROP DATABASE "${d}"`);
});
