import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startPostgres, type TestPostgres } from "../../helpers/postgres";
import { createBackup, restoreBackup } from "../../../src/core/backup";

// Restores onto a server that lacks the database (disaster recovery, issue 15).
let pg: TestPostgres;
let dir: string;

before(async () => {
  pg = await startPostgres();
  dir = mkdtempSync(join(tmpdir(), "sd-bk-new-"));
});
after(async () => {
  await pg?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** Rejects when `p` has not settled after `ms`: a hang guard, generous, not a speed assertion. */
function guard<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const hung = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      reject(new Error(`${what} never finished (hung for ${ms / 1000} s)`));
      // The hung restore's pipes keep the process alive: end it once the failure is reported.
      setTimeout(() => process.exit(1), 5_000).unref();
    }, ms);
  });
  return Promise.race([p, hung]).finally(() => clearTimeout(timer));
}

test("a small zstd backup restored 30 times onto a server without the database: every restore finishes", async () => {
  await pg.query("CREATE DATABASE small");
  await pg.query(
    "CREATE TABLE t (id int, v text); INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 10000) g",
    [],
    "small",
  );
  const r = await createBackup({ databaseUrl: pg.url("small"), dir, label: "manual", compression: "zstd" });
  for (let i = 0; i < 30; i++) {
    const name = `small_copy_${i}`;
    const res = await guard(
      restoreBackup(r.file, { databaseUrl: pg.url(name) }),
      30_000,
      `restore #${i + 1}`,
    );
    assert.equal(res.database, name);
    const [{ n }] = await pg.query<{ n: number }>("SELECT count(*)::int AS n FROM t", [], name);
    assert.equal(n, 10000);
    await pg.query(`DROP DATABASE ${name}`);
  }
});
