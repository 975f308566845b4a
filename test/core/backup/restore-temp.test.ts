import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { interruptCli, pgRestoreRunning } from "../../helpers/interrupt";
import { PG_BIN, startPostgres, type TestPostgres } from "../../helpers/postgres";
import { createBackup, restoreBackup } from "../../../src/core/backup";
import { keepFreeBytes, parallelShare } from "../../../src/core/backup/restore";
import { CannotRunError, ConfigError } from "../../../src/core/errors";

// Issue 18: a restore decompresses the archive to a temp file beside the backup and runs
// `pg_restore -j2` from it when the disk has room; otherwise it streams into one pg_restore.
let pg: TestPostgres;
let dir: string;

before(async () => {
  pg = await startPostgres();
  dir = mkdtempSync(join(tmpdir(), "sd-bk-tmp-"));
});
after(async () => {
  await pg?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const databases = async () =>
  (await pg.query<{ datname: string }>("SELECT datname FROM pg_database ORDER BY 1")).map((d) => d.datname);
/** The restore's temp copies of the archive left in the backup's directory. */
const temps = (file: string) => readdirSync(dirname(file)).filter((f) => f.includes(".restore-"));
const count = async (db: string, where = "true") =>
  (await pg.query<{ n: number }>(`SELECT count(*)::int AS n FROM t WHERE ${where}`, [], db))[0].n;

/** A backup of a new database `db` with tables t and u of `rows` rows each (`uRows` for u). */
async function backupOf(db: string, rows: number, uRows = rows): Promise<string> {
  await pg.createDatabase(db);
  await pg.query(
    `CREATE TABLE t AS SELECT g AS id, repeat(md5(g::text), 8) AS s FROM generate_series(1, ${rows}) g;
     CREATE TABLE u (id int PRIMARY KEY, s text); INSERT INTO u SELECT g, repeat(md5(g::text), 8) FROM generate_series(1, ${uRows}) g;`,
    [],
    db,
  );
  const r = await createBackup({ databaseUrl: pg.url(db), dir: join(dir, db), label: "manual" });
  const { archiveBytes = 0, tableBytes = {} } = r.manifest;
  assert.ok(archiveBytes > (rows + uRows) * 256, "the manifest gives the archive's size");
  assert.deepEqual(Object.keys(tableBytes).sort(), ["public.t", "public.u"]);
  assert.ok(
    tableBytes["public.t"] > rows * 256 && tableBytes["public.t"] < archiveBytes / (uRows / rows + 1) + 4096,
  );
  return r.file;
}

test("with room on the disk: pg_restore -j2 from a temp file, which is gone after success and after a failure", async () => {
  const file = await backupOf("roomy", 20000);
  await pg.query("INSERT INTO t VALUES (-1, 'marker')", [], "roomy");
  const steps: string[] = [];
  const r = await restoreBackup(file, { databaseUrl: pg.url("roomy"), onStep: (s) => steps.push(s) });
  assert.deepEqual(steps, [
    `restore: pg_restore -j2 from a temp copy of the archive in ${dirname(file)} (${Math.round(
      JSON.parse(readFileSync(`${file}.json`, "utf8")).archiveBytes / 2 ** 20,
    )} MiB)`,
  ]);
  assert.deepEqual(temps(file), []);
  assert.equal(await count("roomy"), 20000);
  assert.equal(await count("roomy", "id = -1"), 0, "the backup's rows, not the marker");
  await pg.query(`DROP DATABASE "${r.previousDatabase}"`);

  // A failure inside pg_restore -j2 (an owner role the server lacks): named as before, nothing left.
  await pg.query("CREATE ROLE gone_owner LOGIN");
  await pg.query("ALTER TABLE t OWNER TO gone_owner", [], "roomy");
  const owned = await createBackup({ databaseUrl: pg.url("roomy"), dir: join(dir, "roomy"), label: "owned" });
  await pg.query("ALTER TABLE t OWNER TO CURRENT_USER", [], "roomy");
  await pg.query("DROP ROLE gone_owner");
  const before = await databases();
  const failed: string[] = [];
  await assert.rejects(
    restoreBackup(owned.file, { databaseUrl: pg.url("roomy"), onStep: (s) => failed.push(s) }),
    (e: Error) => {
      assert.ok(e instanceof CannotRunError, `${e.constructor.name}: ${e.message}`);
      assert.match(e.message, /role "gone_owner" owns objects in .* but does not exist on this server/);
      return true;
    },
  );
  assert.match(failed.join("\n"), /pg_restore -j2 from a temp copy/);
  assert.deepEqual(temps(owned.file), []);
  assert.deepEqual(await databases(), before);
});

test("one table holds most of the data, too little room (keepFree, SAFE_DEPLOY_RESTORE_KEEP_FREE), or a manifest without the sizes: streamed, said why", async () => {
  const lopsided = await backupOf("lopsided", 20000, 100);
  const one: string[] = [];
  const l = await restoreBackup(lopsided, { databaseUrl: pg.url("lopsided"), onStep: (s) => one.push(s) });
  await pg.query(`DROP DATABASE "${l.previousDatabase}"`);
  assert.deepEqual(one, [
    "restore: streaming the archive into one pg_restore (100% of the data is one table, which one pg_restore loads as fast as 2)",
  ]);

  const file = await backupOf("tight", 5000);
  const steps: string[] = [];
  const r = await restoreBackup(file, {
    databaseUrl: pg.url("tight"),
    keepFree: Number.MAX_SAFE_INTEGER,
    onStep: (s) => steps.push(s),
  });
  assert.equal(steps.length, 1);
  assert.match(
    steps[0],
    /^restore: streaming the archive into one pg_restore \(\d+ MiB free in .*, the temp archive needs \d+ MiB and \d+ MiB must stay free \(SAFE_DEPLOY_RESTORE_KEEP_FREE\)\)$/,
  );
  assert.deepEqual(temps(file), []);
  assert.equal(await count("tight"), 5000);
  await pg.query(`DROP DATABASE "${r.previousDatabase}"`);

  process.env.SAFE_DEPLOY_RESTORE_KEEP_FREE = String(Number.MAX_SAFE_INTEGER);
  const viaEnv: string[] = [];
  try {
    const e = await restoreBackup(file, { databaseUrl: pg.url("tight"), onStep: (s) => viaEnv.push(s) });
    await pg.query(`DROP DATABASE "${e.previousDatabase}"`);
  } finally {
    delete process.env.SAFE_DEPLOY_RESTORE_KEEP_FREE;
  }
  assert.match(viaEnv.join("\n"), /streaming the archive into one pg_restore/);

  // A backup made before the manifest recorded the archive's size.
  const m = JSON.parse(readFileSync(`${file}.json`, "utf8"));
  delete m.archiveBytes;
  delete m.tableBytes;
  writeFileSync(`${file}.json`, JSON.stringify(m, null, 2));
  const old: string[] = [];
  const o = await restoreBackup(file, { databaseUrl: pg.url("tight"), onStep: (s) => old.push(s) });
  await pg.query(`DROP DATABASE "${o.previousDatabase}"`);
  assert.match(
    old.join("\n"),
    /streaming the archive into one pg_restore \(the manifest does not give the archive's size/,
  );
  assert.equal(await count("tight"), 5000);
});

test("parallelShare: the share of the data outside the largest table", () => {
  assert.equal(parallelShare({}), 0);
  assert.equal(parallelShare({ a: 10 }), 0);
  assert.equal(parallelShare({ a: 30, b: 10 }), 0.25);
  assert.equal(parallelShare({ a: 10, b: 10, c: 20 }), 0.5);
});

test("keepFreeBytes: the option, else the env (bytes), else 1 GiB or the archive's size", () => {
  assert.equal(keepFreeBytes(5, "7", 100), 5);
  assert.equal(keepFreeBytes(undefined, " 7 ", 100), 7);
  assert.equal(keepFreeBytes(undefined, undefined, 100), 2 ** 30);
  assert.equal(keepFreeBytes(undefined, "", 3 * 2 ** 30), 3 * 2 ** 30);
  assert.throws(
    () => keepFreeBytes(undefined, "1G", 100),
    (e: Error) =>
      e instanceof ConfigError &&
      /SAFE_DEPLOY_RESTORE_KEEP_FREE is "1G": give a number of bytes/.test(e.message),
  );
});

test("Ctrl-C while pg_restore -j2 reads the temp file: the temp file is gone, the database as it was, exit 3", async () => {
  const file = await backupOf("big", 250000);
  await pg.query("INSERT INTO t VALUES (-1, 'marker')", [], "big");
  const before = await databases();
  // The parallel pg_restore starts 5 s late (a stand-in that sleeps, then runs the real one), so the poll
  // below meets the temp file and pg_restore together however fast the load would be: without it, a quick
  // load on a loaded machine ended between two polls and the test failed without its signal sent.
  const bin = mkdtempSync(join(dir, "bin-"));
  for (const tool of readdirSync(PG_BIN)) symlinkSync(join(PG_BIN, tool), join(bin, tool));
  rmSync(join(bin, "pg_restore"));
  writeFileSync(
    join(bin, "pg_restore"),
    `#!/bin/sh\ncase " $* " in *" -j"*) sleep 5;; esac\nexec "${join(PG_BIN, "pg_restore")}" "$@"\n`,
    { mode: 0o755 },
  );
  let sawTemp = false;
  const res = await interruptCli(
    ["backup", "restore", file, "--yes", "--database-url", pg.url("big")],
    (pgid) => {
      sawTemp = temps(file).length === 1;
      return sawTemp && pgRestoreRunning(pgid);
    },
    undefined,
    // Whatever the free space of this machine's disk: below 1 GiB + the archive the restore streams instead.
    { ...process.env, PG_BIN: bin, SAFE_DEPLOY_RESTORE_KEEP_FREE: String(2 ** 20) },
  );
  assert.ok(sawTemp);
  assert.equal(res.code, 3, res.err);
  assert.match(res.err, /restore interrupted by SIGINT: database "big" is as it was/);
  assert.deepEqual(temps(file), []);
  assert.deepEqual(await databases(), before);
  assert.equal(await count("big", "id = -1"), 1, "original untouched");
});
