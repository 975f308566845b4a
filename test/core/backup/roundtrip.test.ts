import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client } from "pg";
import { PG_BIN, startPostgres, type TestPostgres } from "../../helpers/postgres";
import { createBackup, restoreBackup, verifyBackup } from "../../../src/core/backup";
import { fingerprint, RICH_SQL } from "./fixture";

let pg: TestPostgres;
let dir: string;

before(async () => {
  pg = await startPostgres();
  await pg.createDatabase("rich");
  await pg.query(RICH_SQL, [], "rich");
  dir = mkdtempSync(join(tmpdir(), "sd-bk-rt-"));
});
after(async () => {
  await pg?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const schema = (db: string) =>
  execFileSync(join(PG_BIN, "pg_dump"), ["--schema-only", "--no-owner", pg.url(db)], { encoding: "utf8" })
    // pg_dump 15.14+ wraps the script in \restrict KEY with a random key per run
    .replace(/^\\(un)?restrict \S+$/gm, "");

for (const compression of ["zstd", "gzip", "none"] as const) {
  test(`${compression}: create, verify --restore-test, restore: the database comes back exactly`, async () => {
    const before = await fingerprint(pg, "rich");
    const schemaBefore = schema("rich");
    const r = await createBackup({ databaseUrl: pg.url("rich"), dir, label: "manual", compression });
    assert.equal(r.manifest.rowCounts["shop.customers"], 500);
    assert.equal(r.manifest.rowCounts["Odd Schema.Ünïcödé tåble"], 2);

    const v = await verifyBackup(r.file, { restoreTest: true, databaseUrl: pg.url("rich") });
    assert.deepEqual(v.restoredRowCounts, r.manifest.rowCounts);
    const dbs = await pg.query<{ datname: string }>("SELECT datname FROM pg_database");
    assert.ok(!dbs.some((d) => d.datname.startsWith("safe_deploy_verify_")), "scratch database dropped");

    // Change the database, then restore: it must be exactly as it was at backup time.
    await pg.query(
      "DELETE FROM shop.customers WHERE id > 100; SELECT nextval('shop.invoice_no'); DROP VIEW shop.vip;",
      [],
      "rich",
    );
    const res = await restoreBackup(r.file, { databaseUrl: pg.url("rich") });
    assert.deepEqual(await fingerprint(pg, "rich"), before);
    assert.equal(schema("rich"), schemaBefore);
    assert.match(res.safety?.file ?? "", /_safety(-\d+)?\.pgdump\.zst$/);
    const prev = await pg.query<{ n: string }>(
      "SELECT count(*) AS n FROM shop.customers",
      [],
      res.previousDatabase,
    );
    assert.equal(prev[0].n, "100", "the replaced database is kept under its dated name");
    await pg.query(`DROP DATABASE "${res.previousDatabase}"`);
    assert.ok(!readdirSync(dir).some((f) => f.includes(".tmp-")));
  });
}

test("restore while clients are connected: they are cut off, the swap happens, the old db is kept", async () => {
  const r = await createBackup({ databaseUrl: pg.url("rich"), dir, label: "manual" });
  const clients = await Promise.all(
    [1, 2, 3].map(async () => {
      const c = new Client({ connectionString: pg.url("rich") });
      c.on("error", () => {});
      await c.connect();
      await c.query("BEGIN; SELECT count(*) FROM shop.customers");
      return c;
    }),
  );
  const res = await restoreBackup(r.file, { databaseUrl: pg.url("rich") });
  for (const c of clients) {
    await assert.rejects(c.query("SELECT 1"), "connections to the old database were terminated");
    await c.end().catch(() => {});
  }
  const [n] = await pg.query<{ n: string }>("SELECT count(*) AS n FROM shop.customers", [], "rich");
  assert.equal(n.n, "500");
  await pg.query(`DROP DATABASE "${res.previousDatabase}"`);
});

test("a restore that fails leaves the original database untouched and no leftover database", async () => {
  const r = await createBackup({ databaseUrl: pg.url("rich"), dir, label: "manual" });
  await pg.query("CREATE TABLE shop.marker (x int); INSERT INTO shop.marker VALUES (7)", [], "rich");
  const before = await pg.query<{ datname: string }>("SELECT datname FROM pg_database ORDER BY 1");
  // The manifest promises a row the archive lacks: the check of the restored copy must stop the swap.
  const { writeFileSync, readFileSync } = await import("node:fs");
  const m = JSON.parse(readFileSync(r.file + ".json", "utf8"));
  m.rowCounts["shop.customers"] = 501;
  writeFileSync(r.file + ".json", JSON.stringify(m));
  await assert.rejects(
    restoreBackup(r.file, { databaseUrl: pg.url("rich") }),
    /differs from its manifest[\s\S]*shop\.customers: backup had 501, restore has 500/,
  );
  const [x] = await pg.query<{ x: number }>("SELECT x FROM shop.marker", [], "rich");
  assert.equal(x.x, 7, "original untouched");
  const afterDbs = await pg.query<{ datname: string }>("SELECT datname FROM pg_database ORDER BY 1");
  assert.deepEqual(afterDbs, before);
});

test("a restore keeps the database's owner, locale, grants and settings (none of them is in the archive)", async () => {
  await pg.query(
    "CREATE ROLE owner_app LOGIN PASSWORD 'owner-pw'; CREATE ROLE reader LOGIN PASSWORD 'reader-pw'",
  );
  await pg.query(
    `CREATE DATABASE "props" OWNER owner_app TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C' LOCALE_PROVIDER icu ICU_LOCALE 'en-US' CONNECTION LIMIT 40`,
  );
  await pg.query(
    [
      `REVOKE CONNECT, TEMPORARY ON DATABASE "props" FROM PUBLIC`,
      `GRANT CONNECT ON DATABASE "props" TO reader`,
      `ALTER DATABASE "props" SET statement_timeout = '5s'`,
      `ALTER DATABASE "props" SET search_path = "$user", public, "Odd Schema"`,
      `ALTER ROLE reader IN DATABASE "props" SET work_mem = '8MB'`,
    ].join(";"),
  );
  await pg.query("CREATE TABLE items (id int PRIMARY KEY); INSERT INTO items VALUES (1), (2)", [], "props");
  const snapshot = () =>
    pg.query(
      `SELECT pg_get_userbyid(d.datdba) AS owner, d.datcollate, d.datctype, d.datlocprovider, d.daticulocale, d.datconnlimit,
         (SELECT array_agg(a::text ORDER BY a::text) FROM unnest(d.datacl) a) AS acl,
         (SELECT array_agg(coalesce(pg_get_userbyid(s.setrole), '') || ':' || array_to_string(s.setconfig, '|')
            ORDER BY s.setrole) FROM pg_db_role_setting s WHERE s.setdatabase = d.oid) AS settings
       FROM pg_database d WHERE d.datname = 'props'`,
    );
  const before = await snapshot();
  const r = await createBackup({ databaseUrl: pg.url("props"), dir, label: "manual" });
  const res = await restoreBackup(r.file, { databaseUrl: pg.url("props") });
  const after = await snapshot();
  assert.deepEqual(
    JSON.parse(JSON.stringify(after).replace(/=[^/",]*\/\w+/g, "")),
    JSON.parse(JSON.stringify(before).replace(/=[^/",]*\/\w+/g, "")),
  );
  // The owner can still create tables (PostgreSQL 15's public schema belongs to the database owner).
  const owner = new Client({
    connectionString: pg.url("props").replace(/\/\/[^@]+@/, "//owner_app:owner-pw@"),
  });
  await owner.connect();
  try {
    await owner.query("CREATE TABLE after_restore (x int)");
  } finally {
    await owner.end();
  }
  const [{ n }] = await pg.query<{ n: number }>("SELECT count(*)::int AS n FROM items", [], "props");
  assert.equal(n, 2);
  await pg.query(`DROP DATABASE "${res.previousDatabase}"`);
});

test("the database named postgres can be restored too (the swap runs from template1)", async () => {
  await pg.query("CREATE TABLE IF NOT EXISTS in_postgres (x int); INSERT INTO in_postgres VALUES (42)");
  const r = await createBackup({ databaseUrl: pg.url("postgres"), dir, label: "manual" });
  await pg.query("DELETE FROM in_postgres");
  const res = await restoreBackup(r.file, { databaseUrl: pg.url("postgres") });
  const rows = await pg.query<{ x: number }>("SELECT x FROM in_postgres");
  assert.deepEqual(rows, [{ x: 42 }]);
  assert.match(res.previousDatabase ?? "", /^postgres_before_restore_/);
  await pg.query(`DROP DATABASE "${res.previousDatabase}"`);
});
