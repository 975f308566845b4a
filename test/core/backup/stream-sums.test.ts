import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import {
  chmodSync,
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { feedArchive as feed } from "../../helpers/archive-feed";
import { postgres17Image } from "../../helpers/docker";
import { PG_BIN, startPostgres, type TestPostgres } from "../../helpers/postgres";
import { createBackup, verifyBackup } from "../../../src/core/backup";
import { parseDatabaseUrl } from "../../../src/core/backup/runner";
import { tableChecksumsLike } from "../../../src/core/backup/verify";
import { CheckFailedError } from "../../../src/core/errors";
import { RICH_SQL } from "./fixture";

// Issue 18: a backup's per-table checksums come from its own dump stream (manifest version 2), not
// from a second server-side scan beside pg_dump; version 1 manifests still verify as before.
let pg: TestPostgres;
let dir: string;
let env: NodeJS.ProcessEnv;
const FIXTURE = join(__dirname, "fixtures", "backup_20261206_070000_v1.pgdump.zst");

before(async () => {
  pg = await startPostgres();
  dir = mkdtempSync(join(tmpdir(), "sd-bk-ss-"));
  env = {
    ...process.env,
    PGPASSWORD: pg.password,
    PGHOST: "127.0.0.1",
    PGPORT: String(pg.port),
    PGUSER: pg.user,
  };
  await pg.createDatabase("rich");
  await pg.query(RICH_SQL, [], "rich");
  await pg.query(
    `CREATE TABLE shop.odd (t timestamptz, f float8, i interval, b bytea, big text);
     INSERT INTO shop.odd VALUES ('2026-12-06 08:00+01', 0.1 + 0.2, '1 day 2 hours', '\\x00ff', repeat('x', 300000));
     CREATE TABLE shop.parted (id int, k text) PARTITION BY RANGE (id);
     CREATE TABLE shop.parted_1 PARTITION OF shop.parted FOR VALUES FROM (0) TO (100);
     INSERT INTO shop.parted SELECT g, 'p' || g FROM generate_series(1, 99) g;
     CREATE TABLE "Odd Schema".empty (x int);
     ALTER DATABASE rich SET TimeZone = 'America/Bogota';`,
    [],
    "rich",
  );
});
after(async () => {
  await pg?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const dump = (db: string, extra: string[] = []) =>
  execFileSync(join(PG_BIN, "pg_dump"), ["-Fc", "-Z0", ...extra, db], {
    env: { ...env, PGTZ: "UTC" },
    maxBuffer: 1 << 26,
  });

/** What pg_dump writes for one table's data: its COPY text and the end marker, in UTC. */
function copySum(db: string, table: string): string {
  const copy = execFileSync(join(PG_BIN, "psql"), ["-X", "-q", "-d", db, "-c", `COPY ${table} TO STDOUT`], {
    env: {
      ...env,
      PGTZ: "UTC",
      PGOPTIONS: "-c DateStyle=ISO -c IntervalStyle=postgres -c extra_float_digits=3",
    },
    maxBuffer: 1 << 26,
  });
  return createHash("sha256")
    .update(Buffer.concat([copy, Buffer.from("\\.\n\n\n")]))
    .digest("hex");
}

test("each table's checksum is the sha256 of its COPY data as pg_dump wrote it, however the stream is cut", async () => {
  const bytes = dump("rich");
  const whole = await feed(bytes, [bytes.length]);
  assert.equal(whole.read.unreadable, undefined);
  assert.ok(whole.out.equals(bytes), "the archive passes through unchanged");
  assert.equal(whole.read.encoding, "UTF8");
  // Sizes for a restore's choice (issue 18): the whole archive, and each table's data block within it.
  assert.equal(whole.read.bytes, bytes.length);
  assert.deepEqual(Object.keys(whole.read.tableBytes).sort(), Object.keys(whole.read.sums).sort());
  const blocks = Object.values(whole.read.tableBytes);
  assert.ok(blocks.every((n) => n >= 10) && blocks.reduce((a, n) => a + n, 0) < bytes.length);
  // Every table with rows of its own (a partitioned parent has none; its partition has), large objects skipped.
  assert.deepEqual(Object.keys(whole.read.sums).sort(), [
    "Odd Schema.empty",
    "Odd Schema.Ünïcödé tåble",
    "shop.customers",
    "shop.odd",
    "shop.parted_1",
  ]);
  for (const [k, table] of [
    ["shop.customers", "shop.customers"],
    ["shop.odd", "shop.odd"],
    ["shop.parted_1", "shop.parted_1"],
    ["Odd Schema.Ünïcödé tåble", '"Odd Schema"."Ünïcödé tåble"'],
    ["Odd Schema.empty", '"Odd Schema".empty'],
  ]) {
    assert.equal(whole.read.sums[k], copySum("rich", table), k);
  }
  // Cut inside every kind of field: lengths, headers, rows, the table of contents.
  for (const sizes of [[1], [3, 7, 2], [4096, 5, 1], [65536]]) {
    const cut = await feed(bytes, sizes);
    assert.deepEqual(cut.read, whole.read, `pieces of ${sizes.join(",")}`);
    assert.ok(cut.out.equals(bytes));
  }
});

test("pg_dump 17's archive (version 1.16, in the test image) reads to the same sums as pg_dump 15's", async () => {
  const image = await postgres17Image();
  const v17 = execFileSync(
    "docker",
    [
      "run",
      "--rm",
      "--network",
      "host",
      "-e",
      "PGPASSWORD",
      "-e",
      "PGTZ=UTC",
      "--entrypoint",
      "pg_dump",
      image,
    ].concat(["-Fc", "-Z0", "-h", "127.0.0.1", "-p", String(pg.port), "-U", pg.user, "rich"]),
    { env, maxBuffer: 1 << 26 },
  );
  assert.equal(v17[6], 16, "archive minor version");
  const a = await feed(v17, [65536]);
  assert.equal(a.read.unreadable, undefined);
  // The sizes (`bytes`, `tableBytes`) differ with the archive version's header and framing; the sums may not.
  const b = (await feed(dump("rich"), [65536])).read;
  assert.deepEqual({ sums: a.read.sums, encoding: a.read.encoding }, { sums: b.sums, encoding: b.encoding });
  assert.deepEqual(Object.keys(a.read.tableBytes).sort(), Object.keys(b.tableBytes).sort());
});

test("an archive the reader cannot follow passes through unchanged and says why", async () => {
  const compressed = execFileSync(join(PG_BIN, "pg_dump"), ["-Fc", "-Z1", "rich"], {
    env,
    maxBuffer: 1 << 26,
  });
  const z = await feed(compressed, [1000]);
  assert.match(z.read.unreadable ?? "", /compressed/);
  assert.ok(z.out.equals(compressed));
  const future = Buffer.from(dump("rich"));
  future[6] = 99; // archive version 1.99
  const f = await feed(future, [777]);
  assert.match(f.read.unreadable ?? "", /version 1\.99/);
  assert.ok(f.out.equals(future));
  const cutShort = dump("rich").subarray(0, 20000);
  assert.match((await feed(cutShort, [5000])).read.unreadable ?? "", /ends inside/);
});

test("a backup's manifest (version 2) holds the dump's checksums, and a row changed after a restore is caught", async () => {
  const r = await createBackup({ databaseUrl: pg.url("rich"), dir: join(dir, "a"), label: "manual" });
  assert.equal(r.manifest.version, 2);
  assert.equal(r.manifest.encoding, "UTF8");
  assert.equal(r.manifest.tableChecksums?.["shop.customers"], copySum("rich", "shop.customers"));
  // Written in UTC although the database's TimeZone is another: a copy without that setting matches.
  assert.equal(r.manifest.tableChecksums?.["shop.odd"], copySum("rich", "shop.odd"));
  const v = await verifyBackup(r.file, { restoreTest: true, databaseUrl: pg.url() });
  assert.equal(v.checksummedTables, Object.keys(r.manifest.tableChecksums!).length);

  await pg.createDatabase("copy");
  execFileSync(join(PG_BIN, "pg_restore"), ["--no-owner", "-d", "copy"], {
    env,
    input: execFileSync("zstd", ["-d", "-c", r.file]),
  });
  const conn = parseDatabaseUrl(pg.url("copy"));
  assert.deepEqual(await tableChecksumsLike(r.manifest, { runIn: "local" }, conn), r.manifest.tableChecksums);
  await pg.query("UPDATE shop.customers SET name = name || ' changed' WHERE id = 7", [], "copy");
  const after = await tableChecksumsLike(r.manifest, { runIn: "local" }, conn);
  const changed = Object.keys(after).filter((k) => after[k] !== r.manifest.tableChecksums![k]);
  assert.deepEqual(changed, ["shop.customers"]);
});

test("a database that writes bytea as escape: its restored copy is re-dumped the same way and matches", async () => {
  await pg.createDatabase("esc");
  await pg.query(
    "CREATE TABLE b (x bytea); INSERT INTO b VALUES ('\\x00ff41'), (NULL); ALTER DATABASE esc SET bytea_output = 'escape'",
    [],
    "esc",
  );
  const r = await createBackup({ databaseUrl: pg.url("esc"), dir: join(dir, "e"), label: "manual" });
  assert.equal(r.manifest.byteaOutput, "escape");
  const v = await verifyBackup(r.file, { restoreTest: true, databaseUrl: pg.url() });
  assert.equal(v.checksummedTables, 1);
});

test("a backup with a version 1 manifest (server-side sums, made before) still verifies, and its sums are compared", async () => {
  const m = JSON.parse(readFileSync(`${FIXTURE}.json`, "utf8"));
  assert.equal(m.version, 1);
  const v = await verifyBackup(FIXTURE, { restoreTest: true, databaseUrl: pg.url() });
  assert.equal(v.checksummedTables, 3);
  assert.deepEqual(v.restoredRowCounts, m.rowCounts);
  // The same archive with one table's version 1 sum altered: the comparison is the version 1 one.
  const file = join(dir, "v1", "backup_20261206_070000_v1.pgdump.zst");
  mkdirSync(join(dir, "v1"));
  copyFileSync(FIXTURE, file);
  writeFileSync(
    `${file}.json`,
    JSON.stringify({ ...m, tableChecksums: { ...m.tableChecksums, "shop.items": "1:2" } }),
  );
  await assert.rejects(verifyBackup(file, { restoreTest: true, databaseUrl: pg.url() }), (e: Error) => {
    assert.ok(e instanceof CheckFailedError, e.message);
    assert.match(e.message, /content of 1 table\(s\) differs .*: shop\.items$/);
    return true;
  });
});

test("a dump the reader cannot follow still gets checksums: the server's, in a version 1 manifest", async () => {
  // A pg_dump that compresses whatever it is asked: its archive is not one the stream reader can hash.
  const bin = join(dir, "bin");
  mkdirSync(bin);
  for (const t of ["psql", "pg_restore"]) symlinkSync(join(PG_BIN, t), join(bin, t));
  writeFileSync(join(bin, "pg_dump"), `#!/bin/sh\nexec "${PG_BIN}/pg_dump" "$@" -Z1\n`);
  chmodSync(join(bin, "pg_dump"), 0o755);
  const saved = process.env.PG_BIN;
  process.env.PG_BIN = bin;
  try {
    const r = await createBackup({ databaseUrl: pg.url("rich"), dir: join(dir, "b"), label: "manual" });
    assert.equal(r.manifest.version, 1);
    assert.equal(r.manifest.encoding, undefined);
    assert.match(r.manifest.tableChecksums?.["shop.customers"] ?? "", /^-?\d+:-?\d+$/);
    const v = await verifyBackup(r.file, { restoreTest: true, databaseUrl: pg.url() });
    assert.equal(v.checksummedTables, Object.keys(r.manifest.rowCounts).length);
  } finally {
    if (saved === undefined) delete process.env.PG_BIN;
    else process.env.PG_BIN = saved;
  }
});

test("a backup counts each table's rows in its own dump: the server reads a dumped table once (pg_dump's COPY), not a second time to count it", async () => {
  // Issue 18: the manifest's counts came from count(*) of every table beside pg_dump, a second scan of
  // the whole database on the same cores. Partitioned tables are the sum of their leaves.
  await pg.createDatabase("scans");
  await pg.query(
    `CREATE TABLE t (id int PRIMARY KEY, s text);
     INSERT INTO t SELECT g, 'row ' || g || E'\\nwith a newline and a \\\\ backslash' FROM generate_series(1, 5000) g;
     CREATE TABLE p (id int, k text) PARTITION BY LIST (k);
     CREATE TABLE p_a PARTITION OF p FOR VALUES IN ('a') PARTITION BY RANGE (id);
     CREATE TABLE p_a1 PARTITION OF p_a FOR VALUES FROM (0) TO (1000);
     CREATE TABLE p_b PARTITION OF p FOR VALUES IN ('b');
     CREATE TABLE p_empty PARTITION OF p FOR VALUES IN ('c');
     INSERT INTO p SELECT g, 'a' FROM generate_series(1, 700) g;
     INSERT INTO p SELECT g, 'b' FROM generate_series(1, 300) g;
     CREATE TABLE dot (s text); INSERT INTO dot VALUES ('\\.'), (E'\\\\.\\n\\n');`,
    [],
    "scans",
  );
  // Each query is a new session, which sees the statistics the ended sessions left.
  const settled = async () => {
    for (let i = 0; i < 1000; i++) {
      const [{ n }] = await pg.query<{ n: string }>(
        "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = 'scans' AND pid <> pg_backend_pid()",
        [],
        "scans",
      );
      if (n === "0") return;
      await new Promise((r) => setTimeout(r, 10));
    }
    throw new Error("sessions on database scans did not end");
  };
  const scans = async () => {
    await settled();
    const rows = await pg.query<{ relname: string; seq_scan: string }>(
      "SELECT relname, seq_scan FROM pg_stat_user_tables WHERE relname IN ('t', 'p_a1', 'p_b', 'dot')",
      [],
      "scans",
    );
    return Object.fromEntries(rows.map((r) => [r.relname, Number(r.seq_scan)]));
  };
  const before = await scans();
  const b = await createBackup({ databaseUrl: pg.url("scans"), dir: join(dir, "scans") });
  const afterBackup = await scans();
  assert.deepEqual(b.manifest.rowCounts, {
    "public.dot": 2,
    "public.p": 1000,
    "public.p_a": 700,
    "public.p_a1": 700,
    "public.p_b": 300,
    "public.p_empty": 0,
    "public.t": 5000,
  });
  for (const t of ["t", "p_a1", "p_b", "dot"]) {
    assert.equal(
      afterBackup[t] - before[t],
      1,
      `${t} read once, by pg_dump (before ${before[t]}, after ${afterBackup[t]})`,
    );
  }
  // And the counts are the restored copy's: the restore test compares them with count(*) there.
  const v = await verifyBackup(b.file, { restoreTest: true, databaseUrl: pg.url("postgres") });
  assert.equal(Object.keys(v.restoredRowCounts ?? {}).length, 7);
});
