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
    assert.match(res.safety.file, /_safety\.pgdump\.zst$/);
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
