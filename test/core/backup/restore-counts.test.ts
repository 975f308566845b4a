import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startPostgres, type TestPostgres } from "../../helpers/postgres";
import { createBackup, restoreBackup } from "../../../src/core/backup";

// Issue 18: a restore checked its copy against the manifest by counting every row of every table
// again (count(*) over the whole database, about 4% of a restore). A fresh copy's tables get rows only
// from pg_restore's COPY, so the rows the server's statistics say each table received are its count;
// when they do not match (statistics off, not yet published), every table is counted as before.
let pg: TestPostgres;
let dir: string;

before(async () => {
  pg = await startPostgres();
  dir = mkdtempSync(join(tmpdir(), "sd-bk-counts-"));
});
after(async () => {
  await pg?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** Each query is a new session: it sees the statistics that ended sessions published. */
async function seqScans(db: string): Promise<Record<string, number>> {
  for (let i = 0; i < 1000; i++) {
    const [{ n }] = await pg.query<{ n: string }>(
      "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
      [db],
      db,
    );
    if (n === "0") break;
    await new Promise((r) => setTimeout(r, 10));
  }
  const rows = await pg.query<{ relname: string; seq_scan: string }>(
    "SELECT relname, seq_scan FROM pg_stat_user_tables ORDER BY 1",
    [],
    db,
  );
  return Object.fromEntries(rows.map((r) => [r.relname, Number(r.seq_scan)]));
}

async function backupOf(db: string): Promise<string> {
  await pg.createDatabase(db);
  await pg.query(
    `CREATE TABLE plain (id int, s text); INSERT INTO plain SELECT g, 'r' || g FROM generate_series(1, 3000) g;
     CREATE TABLE p (id int, k text) PARTITION BY LIST (k);
     CREATE TABLE p_a PARTITION OF p FOR VALUES IN ('a'); CREATE TABLE p_b PARTITION OF p FOR VALUES IN ('b');
     INSERT INTO p SELECT g, CASE WHEN g % 3 = 0 THEN 'b' ELSE 'a' END FROM generate_series(1, 900) g;
     CREATE TABLE empty (x int);`,
    [],
    db,
  );
  return (await createBackup({ databaseUrl: pg.url(db), dir: join(dir, db), label: "manual" })).file;
}

test("a restore checks the copy's row counts without reading its tables again", async () => {
  const file = await backupOf("stats");
  await pg.query("INSERT INTO plain VALUES (-1, 'after the backup')", [], "stats");
  const r = await restoreBackup(file, { databaseUrl: pg.url("stats") });
  // The restored copy is now "stats": loaded by COPY, never scanned (no index to build on these),
  // but for the partition check of pg_restore's ATTACH PARTITION, which runs while they are empty.
  assert.deepEqual(await seqScans("stats"), { empty: 0, p: 0, p_a: 1, p_b: 1, plain: 0 });
  const [{ n }] = await pg.query<{ n: number }>("SELECT count(*)::int AS n FROM plain", [], "stats");
  assert.equal(n, 3000);
  await pg.query(`DROP DATABASE "${r.previousDatabase}"`);
});

test("without statistics (track_counts off) the restore counts every table, and still restores", async () => {
  const file = await backupOf("nostats");
  const old = process.env.PGOPTIONS;
  // Every session of the restore (pg_restore's, the check's) runs without statistics.
  process.env.PGOPTIONS = "-c track_counts=off";
  try {
    const r = await restoreBackup(file, { databaseUrl: pg.url("nostats") });
    await pg.query(`DROP DATABASE "${r.previousDatabase}"`);
  } finally {
    if (old === undefined) delete process.env.PGOPTIONS;
    else process.env.PGOPTIONS = old;
  }
  const rows = await pg.query<{ k: string; n: number }>(
    "SELECT 'plain' AS k, count(*)::int AS n FROM plain UNION ALL SELECT 'p', count(*)::int FROM p ORDER BY 1",
    [],
    "nostats",
  );
  assert.deepEqual(rows, [
    { k: "p", n: 900 },
    { k: "plain", n: 3000 },
  ]);
});
