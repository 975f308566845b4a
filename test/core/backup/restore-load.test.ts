// How the archive goes into the new database (issue 18, and issue 22's mutation testing of
// `loadArchive` in src/core/backup/restore.ts), with backups of a few rows: each way said word for word,
// the temp copy beside the backup gone on every path, the process's exit handler (what removes it when a
// second Ctrl-C ends the process at once) armed while it exists and removed after. One small server, in
// process; restore-temp.test.ts holds the same paths at 20,000 rows and more.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";
import { startPostgres, type TestPostgres } from "../../helpers/postgres";
import { createBackup, restoreBackup, type BackupResult } from "../../../src/core/backup";
import { CannotRunError, CheckFailedError } from "../../../src/core/errors";

let pg: TestPostgres;
let dir: string;
/** Two tables of 50 rows each: half the data outside the largest table, so -j2 pays off. */
let even: BackupResult;

before(async () => {
  pg = await startPostgres();
  dir = mkdtempSync(join(tmpdir(), "sd-restore-load-"));
  await pg.query("CREATE DATABASE src");
  await pg.query(
    `CREATE TABLE t (id int PRIMARY KEY, s text); INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 50) g;
     CREATE TABLE u (id int PRIMARY KEY, s text); INSERT INTO u SELECT g, md5(g::text) FROM generate_series(1, 50) g;`,
    [],
    "src",
  );
  even = await createBackup({ databaseUrl: pg.url("src"), dir: join(dir, "even"), label: "even" });
});
after(async () => {
  await pg?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const databases = async () =>
  (await pg.query<{ datname: string }>("SELECT datname FROM pg_database ORDER BY 1")).map((d) => d.datname);
const rows = async (db: string) =>
  (
    await pg.query<{ n: number }>(
      "SELECT ((SELECT count(*) FROM t) + (SELECT count(*) FROM u))::int AS n",
      [],
      db,
    )
  )[0].n;
/** The restore's temp copies of the archive left beside `file`. */
const temps = (file: string) => readdirSync(dirname(file)).filter((f) => f.includes(".restore-"));
const mib = (n: number) => `${Math.round(n / 2 ** 20)} MiB`;

/** Restores `file` into a new database `db` (no safety backup), recording the steps told. */
async function restoreNew(file: string, db: string, keepFree?: number) {
  const steps: string[] = [];
  await restoreBackup(file, { databaseUrl: pg.url(db), keepFree, onStep: (s) => steps.push(s) });
  return steps;
}

test("room on the disk: -j2 from a temp copy beside the backup, said with its size; the copy and its exit handler gone after", async () => {
  const exits = process.listenerCount("exit");
  let during: { temps: string[]; exits: number } | undefined;
  const steps: string[] = [];
  await restoreBackup(even.file, {
    databaseUrl: pg.url("even_j2"),
    keepFree: 0,
    onStep: (s) => {
      steps.push(s);
      during = { temps: temps(even.file), exits: process.listenerCount("exit") };
    },
  });
  assert.deepEqual(steps, [
    `restore: pg_restore -j2 from a temp copy of the archive in ${dirname(even.file)} (${mib(even.manifest.archiveBytes!)})`,
  ]);
  assert.equal(during?.temps.length, 1, "the temp copy exists while pg_restore reads it");
  assert.match(
    during!.temps[0],
    new RegExp(`^\\.${basename(even.file).replace(/\./g, "\\.")}\\.restore-[0-9a-f]{8}$`),
  );
  assert.equal(during?.exits, exits + 1, "an exit handler armed meanwhile");
  assert.equal(process.listenerCount("exit"), exits, "and removed after");
  assert.deepEqual(temps(even.file), []);
  assert.equal(await rows("even_j2"), 100);
});

test("the process ending while -j2 runs: its exit handler removes the temp copy", async () => {
  const exits = process.listeners("exit");
  let removed: string[] | undefined;
  await assert.rejects(
    restoreBackup(even.file, {
      databaseUrl: pg.url("even_exit"),
      keepFree: 0,
      onStep: () => {
        const mine = process.listeners("exit").filter((l) => !exits.includes(l));
        assert.equal(mine.length, 1);
        (mine[0] as () => void)();
        removed = temps(even.file);
        // Twice: a file already gone is no error.
        (mine[0] as () => void)();
      },
    }),
    (e: Error) => e instanceof CannotRunError && /could not open input file|No such file/.test(e.message),
  );
  assert.deepEqual(removed, [], "gone as soon as the handler ran");
  assert.ok(!(await databases()).includes("even_exit"));
  assert.deepEqual(process.listeners("exit"), exits);
});

test("too little room, one table holding the data, no sizes in the manifest, no compression: each said word for word", async () => {
  const tight = await restoreNew(even.file, "even_tight", Number.MAX_SAFE_INTEGER);
  assert.equal(tight.length, 1);
  const m =
    /^restore: streaming the archive into one pg_restore \((\d+) MiB free in (.*), the temp archive needs (\d+) MiB and (\d+) MiB must stay free \(SAFE_DEPLOY_RESTORE_KEEP_FREE\)\)$/.exec(
      tight[0],
    );
  assert.ok(m, tight[0]);
  assert.equal(m[2], dirname(even.file));
  assert.equal(`${m[3]} MiB`, mib(even.manifest.archiveBytes!));
  assert.equal(`${m[4]} MiB`, mib(Number.MAX_SAFE_INTEGER));
  assert.equal(await rows("even_tight"), 100);

  await pg.query("CREATE DATABASE lop");
  await pg.query(
    `CREATE TABLE t (id int, s text); INSERT INTO t SELECT g, repeat(md5(g::text), 4) FROM generate_series(1, 400) g;
     CREATE TABLE u (id int, s text); INSERT INTO u SELECT g, repeat(md5(g::text), 4) FROM generate_series(1, 40) g;`,
    [],
    "lop",
  );
  const lop = await createBackup({ databaseUrl: pg.url("lop"), dir: join(dir, "lop"), label: "lop" });
  const sizes = Object.values(lop.manifest.tableBytes!);
  const share = Math.round((Math.max(...sizes) / sizes.reduce((a, b) => a + b, 0)) * 100);
  assert.ok(share > 80 && share < 95, String(share));
  assert.deepEqual(await restoreNew(lop.file, "lop_copy", 0), [
    `restore: streaming the archive into one pg_restore (${share}% of the data is one table, which one pg_restore loads as fast as 2)`,
  ]);
  assert.equal(await rows("lop_copy"), 440);

  const old = join(dir, "old");
  rmSync(old, { recursive: true, force: true });
  const oldFile = copyWithManifest(even, old, (mf) => {
    delete mf.archiveBytes;
    delete mf.tableBytes;
  });
  assert.deepEqual(await restoreNew(oldFile, "even_old", 0), [
    "restore: streaming the archive into one pg_restore (the manifest does not give the archive's size (a backup from before 2026-12-06))",
  ]);
  const noSizes = copyWithManifest(even, join(dir, "old2"), (mf) => delete mf.tableBytes);
  assert.match(
    (await restoreNew(noSizes, "even_old2", 0))[0],
    /the manifest does not give the archive's size/,
  );
  const noBytes = copyWithManifest(even, join(dir, "old3"), (mf) => delete mf.archiveBytes);
  assert.match(
    (await restoreNew(noBytes, "even_old3", 0))[0],
    /the manifest does not give the archive's size/,
  );

  const plain = await createBackup({
    databaseUrl: pg.url("src"),
    dir: join(dir, "plain"),
    label: "plain",
    compression: "none",
  });
  assert.deepEqual(await restoreNew(plain.file, "even_plain", Number.MAX_SAFE_INTEGER), [
    "restore: pg_restore -j2 from the uncompressed backup itself",
  ]);
  assert.equal(await rows("even_plain"), 100);
  assert.deepEqual(temps(plain.file), []);
});

test("an archive that cannot be decompressed (checksum recorded over the damage): refused by name, no temp copy, no database", async () => {
  const bad = join(dir, "bad");
  const file = copyWithManifest(
    even,
    bad,
    () => {},
    (bytes) => {
      // Past pg_restore's first read (the header, what `-C` needs), inside the zstd frame's blocks.
      for (let i = bytes.length - 64; i < bytes.length - 8; i++) bytes[i] ^= 0x5a;
    },
  );
  const before = await databases();
  await assert.rejects(restoreNew(file, "even_bad", 0), (e: Error) => {
    assert.ok(e instanceof CheckFailedError, `${e.constructor.name}: ${e.message}`);
    assert.match(
      e.message,
      new RegExp(`^${basename(file).replace(/\./g, "\\.")} cannot be decompressed: .+`),
    );
    return true;
  });
  assert.deepEqual(temps(file), []);
  assert.deepEqual(await databases(), before);
});

/** `b`'s archive copied under `to` (bytes changed by `bytes`), its manifest changed by `edit`, sha256 kept true. */
function copyWithManifest(
  b: BackupResult,
  to: string,
  edit: (m: Record<string, unknown>) => void,
  bytes: (b: Buffer) => void = () => {},
): string {
  rmSync(to, { recursive: true, force: true });
  mkdirSync(to, { recursive: true });
  const file = join(to, basename(b.file));
  const data = readFileSync(b.file);
  bytes(data);
  writeFileSync(file, data);
  const m = JSON.parse(readFileSync(b.manifestFile, "utf8")) as Record<string, unknown>;
  m.sha256 = createHash("sha256").update(data).digest("hex");
  edit(m);
  writeFileSync(`${file}.json`, JSON.stringify(m));
  return file;
}

test("no onStep given (as upgrade and migrate's restore call it): the restore runs, from a temp copy, streamed and from an uncompressed backup", async () => {
  await restoreBackup(even.file, { databaseUrl: pg.url("even_quiet"), keepFree: 0 });
  assert.equal(await rows("even_quiet"), 100);
  await restoreBackup(even.file, {
    databaseUrl: pg.url("even_quiet_streamed"),
    keepFree: Number.MAX_SAFE_INTEGER,
  });
  assert.equal(await rows("even_quiet_streamed"), 100);
  const plain = await createBackup({
    databaseUrl: pg.url("src"),
    dir: join(dir, "plain-quiet"),
    label: "plain",
    compression: "none",
  });
  await restoreBackup(plain.file, { databaseUrl: pg.url("plain_quiet") });
  assert.equal(await rows("plain_quiet"), 100);
});

test("pg_restore failing on each way in: the error says it was the restore, nothing left", async () => {
  await pg.query("CREATE ROLE gone LOGIN");
  await pg.query("CREATE DATABASE owned");
  await pg.query(
    `CREATE TABLE t (id int, s text); INSERT INTO t VALUES (1, 'x'); ALTER TABLE t OWNER TO gone;
     CREATE TABLE u (id int, s text); INSERT INTO u VALUES (1, 'y');`,
    [],
    "owned",
  );
  const z = await createBackup({ databaseUrl: pg.url("owned"), dir: join(dir, "owned-z"), label: "z" });
  const n = await createBackup({
    databaseUrl: pg.url("owned"),
    dir: join(dir, "owned-n"),
    label: "n",
    compression: "none",
  });
  await pg.query("DROP DATABASE owned");
  await pg.query("DROP ROLE gone");
  const before = await databases();
  for (const [file, keepFree, way] of [
    [z.file, Number.MAX_SAFE_INTEGER, /^restore: streaming/],
    [z.file, 0, /^restore: pg_restore -j2 from a temp copy/],
    [n.file, 0, /^restore: pg_restore -j2 from the uncompressed backup itself/],
  ] as const) {
    const steps: string[] = [];
    await assert.rejects(
      restoreBackup(file, { databaseUrl: pg.url("owned_copy"), keepFree, onStep: (s) => steps.push(s) }),
      (e: Error) => {
        assert.ok(e instanceof CannotRunError, `${e.constructor.name}: ${e.message}`);
        assert.match(e.message, /^restore: /);
        return true;
      },
    );
    assert.match(steps[0], way);
    assert.deepEqual(temps(file), []);
    assert.deepEqual(await databases(), before);
  }
});
