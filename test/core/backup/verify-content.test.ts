import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { startPostgres, type TestPostgres } from "../../helpers/postgres";
import { createBackup, verifyBackup, type BackupResult } from "../../../src/core/backup";
import { neededRoles } from "../../../src/core/backup/verify";
import { CheckFailedError } from "../../../src/core/errors";
import { RICH_SQL } from "./fixture";

// `verify --restore-test` compares content, not only row counts, and names missing roles (issue 15).
let pg: TestPostgres;
let dir: string;

before(async () => {
  pg = await startPostgres();
  dir = mkdtempSync(join(tmpdir(), "sd-bk-vc-"));
  await pg.createDatabase("rich");
  await pg.query(RICH_SQL, [], "rich");
  await pg.query(
    "CREATE TABLE shop.odd (t timestamptz, f float8, i interval, b bytea); INSERT INTO shop.odd VALUES (now(), 0.1 + 0.2, '1 day 2 hours', '\\x00ff')",
    [],
    "rich",
  );
});
after(async () => {
  await pg?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** B's archive under A's manifest, its checksum and size made to match. */
function archiveUnderManifest(b: BackupResult, a: BackupResult): void {
  copyFileSync(b.file, a.file);
  const m = JSON.parse(readFileSync(a.manifestFile, "utf8"));
  writeFileSync(
    a.manifestFile,
    JSON.stringify({ ...m, sha256: b.manifest.sha256, sizeBytes: b.manifest.sizeBytes }),
  );
}

test("the manifest has a content checksum per table and the restore test compares them", async () => {
  const r = await createBackup({ databaseUrl: pg.url("rich"), dir: join(dir, "a"), label: "manual" });
  assert.deepEqual(
    Object.keys(r.manifest.tableChecksums ?? {}).sort(),
    Object.keys(r.manifest.rowCounts).sort(),
  );
  const v = await verifyBackup(r.file, { restoreTest: true, databaseUrl: pg.url() });
  assert.equal(v.checksummedTables, Object.keys(r.manifest.rowCounts).length);
  assert.deepEqual(v.missingRoles, []);
});

test("same row counts, different content: the restore test fails naming the table", async () => {
  const a = await createBackup({ databaseUrl: pg.url("rich"), dir: join(dir, "b"), label: "manual" });
  await pg.query("UPDATE shop.customers SET name = name || ' changed' WHERE id = 7", [], "rich");
  const b = await createBackup({ databaseUrl: pg.url("rich"), dir: join(dir, "c"), label: "manual" });
  assert.deepEqual(a.manifest.rowCounts, b.manifest.rowCounts);
  // Only the content tells them apart.
  archiveUnderManifest(b, a);
  await assert.rejects(verifyBackup(a.file, { restoreTest: true, databaseUrl: pg.url() }), (e: Error) => {
    assert.ok(e instanceof CheckFailedError, e.message);
    assert.match(e.message, /content of 1 table\(s\) differs .*: shop\.customers$/);
    return true;
  });
});

test("a restored copy with other row counts than the manifest: the restore test fails naming the table, nothing left behind", async () => {
  const a = await createBackup({ databaseUrl: pg.url("rich"), dir: join(dir, "d"), label: "manual" });
  await pg.query("DELETE FROM shop.customers WHERE id = (SELECT max(id) FROM shop.customers)", [], "rich");
  const b = await createBackup({ databaseUrl: pg.url("rich"), dir: join(dir, "e"), label: "manual" });
  const had = a.manifest.rowCounts["shop.customers"];
  assert.equal(b.manifest.rowCounts["shop.customers"], had - 1);
  // The counts tell them apart.
  archiveUnderManifest(b, a);
  await assert.rejects(verifyBackup(a.file, { restoreTest: true, databaseUrl: pg.url() }), (e: Error) => {
    assert.ok(e instanceof CheckFailedError, e.message);
    assert.equal(
      e.message,
      `restore test of ${basename(a.file)} lost rows:\n  shop.customers: backup had ${had}, restore has ${had - 1}`,
    );
    return true;
  });
  const scratch = await pg.query<{ n: number }>(
    "SELECT count(*)::int AS n FROM pg_database WHERE datname LIKE 'safe_deploy_verify_%'",
  );
  assert.equal(scratch[0].n, 0, "the scratch database is dropped after a failed check");
});

test("a database that writes bytea as escape: the restore test re-dumps its copy the same way and passes", async () => {
  await pg.createDatabase("esc");
  await pg.query(
    "CREATE TABLE b (id int PRIMARY KEY, v bytea); INSERT INTO b SELECT g, decode(md5(g::text) || '00ff5c', 'hex') FROM generate_series(1, 50) g",
    [],
    "esc",
  );
  await pg.query(`ALTER DATABASE esc SET bytea_output = 'escape'`);
  const r = await createBackup({ databaseUrl: pg.url("esc"), dir: join(dir, "f"), label: "manual" });
  assert.equal(r.manifest.byteaOutput, "escape");
  const v = await verifyBackup(r.file, { restoreTest: true, databaseUrl: pg.url() });
  assert.equal(v.checksummedTables, 1);
});

test("roles that own objects in the backup or are granted rights in it and are missing on the server are reported", async () => {
  await pg.query("CREATE ROLE gone_owner");
  await pg.query("CREATE ROLE gone_reader");
  await pg.createDatabase("owned");
  await pg.query(
    "CREATE TABLE t (id int); ALTER TABLE t OWNER TO gone_owner; GRANT SELECT ON t TO gone_reader",
    [],
    "owned",
  );
  const r = await createBackup({ databaseUrl: pg.url("owned"), dir: join(dir, "d"), label: "manual" });
  await pg.query("DROP DATABASE owned");
  await pg.query("DROP ROLE gone_owner");
  await pg.query("DROP ROLE gone_reader");
  const v = await verifyBackup(r.file, { restoreTest: true, databaseUrl: pg.url() });
  assert.deepEqual(v.missingRoles, ["gone_owner", "gone_reader"]);
  assert.deepEqual(
    neededRoles(
      [
        "-- Name: t; Type: TABLE; Schema: public; Owner: app",
        "GRANT SELECT ON TABLE public.t TO reader;",
        'GRANT ALL ON TABLE public.t TO "Odd ""Role""" WITH GRANT OPTION;',
        "REVOKE ALL ON SCHEMA public FROM PUBLIC;",
        "-- Name: BLOBS; Type: BLOBS; Schema: -; Owner: ",
      ].join("\n"),
    ),
    ['Odd "Role"', "app", "reader"],
  );
});
