import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, it } from "node:test";
import { createBackup } from "../../../src/core/backup";
import { migrate } from "../../../src/core/migrations/runner";
import { startPostgres, type TestPostgres } from "../../helpers/postgres";

const ROOT = join(__dirname, "../../..");
const base = { tool: "node-pg-migrate" as const, workDir: ROOT, dir: "test/fixtures/migrations/npm-loss" };
let pg: TestPostgres;
before(async () => {
  pg = await startPostgres();
});
after(async () => pg?.close());

it("a migration deleting rows of a critical table is rolled back inside its transaction: rows stay, exit 1 names the loss", async () => {
  const url = await pg.createDatabase("guard");
  const o = { ...base, databaseUrl: url };
  await migrate({ ...o, action: "up", target: "3" });
  const err = await migrate({ ...o, action: "up", integrity: { criticalTables: ["orders"] } }).then(
    () => assert.fail("must fail"),
    (e: Error & { exitCode?: number }) => e,
  );
  assert.equal(err.exitCode, 1);
  assert.match(
    err.message,
    /^integrity check failed: public\.orders would lose 20\.0% of its rows \(50 -> 40\)/,
  );
  assert.match(err.message, /no row was lost: schema version still 1700000003000_users-name/);
  const [{ n }] = await pg.query<{ n: string }>("SELECT count(*) AS n FROM orders", [], "guard");
  assert.equal(n, "50");
  const applied = await pg.query<{ name: string }>("SELECT name FROM pgmigrations ORDER BY id", [], "guard");
  assert.equal(applied.length, 3);
  // The guard is gone after the run: the same migration with a high enough limit goes through.
  const trig = await pg.query("SELECT 1 FROM pg_trigger WHERE tgname = 'safe_deploy_row_guard'", [], "guard");
  assert.equal(trig.length, 0);
  const ok = await migrate({
    ...o,
    action: "up",
    integrity: { criticalTables: ["orders"], maxRowLossPercent: 25 },
  });
  assert.equal(ok.after, "1700000004000_delete-orders");
});

it("a dropped critical table counts as a 100% loss and is rolled back too", async () => {
  const url = await pg.createDatabase("guarddrop");
  const o = { ...base, databaseUrl: url };
  await migrate({ ...o, action: "up", target: "3" });
  await assert.rejects(
    migrate({
      ...o,
      action: "down",
      target: "3",
      integrity: { criticalTables: ["users"], maxRowLossPercent: 99 },
    }),
    /public\.users would lose 100\.0% of its rows \(50 -> dropped\)/,
  );
  const [{ n }] = await pg.query<{ n: string }>("SELECT count(*) AS n FROM users", [], "guarddrop");
  assert.equal(n, "50");
});

it("tools that do not run in one transaction need --backup with --critical-tables (exit 2 naming it)", async () => {
  const url = await pg.createDatabase("guardcmd");
  const err = await migrate({
    tool: "command",
    dir: ".",
    workDir: ROOT,
    databaseUrl: url,
    action: "up",
    custom: { up: "true" },
    integrity: { criticalTables: ["orders"] },
  }).then(
    () => assert.fail("must fail"),
    (e: Error & { exitCode?: number }) => e,
  );
  assert.equal(err.exitCode, 2);
  assert.match(err.message, /`--critical-tables` with `--tool command` needs `--backup FILE`/);
});

it("with a tool outside one transaction, a loss restores the --backup automatically and says so", async () => {
  const url = await pg.createDatabase("guardrestore");
  await pg.query(
    "CREATE TABLE orders (id int); INSERT INTO orders SELECT generate_series(1, 50)",
    [],
    "guardrestore",
  );
  const dir = await mkdtemp(join(tmpdir(), "guard-"));
  try {
    const b = await createBackup({ databaseUrl: url, dir, compression: "none" });
    const err = await migrate({
      tool: "command",
      dir: ".",
      workDir: ROOT,
      databaseUrl: url,
      action: "up",
      custom: { up: `psql "$DATABASE_URL" -c 'DELETE FROM orders WHERE id > 40'` },
      backupFile: b.file,
      integrity: { criticalTables: ["orders"] },
    }).then(
      () => assert.fail("must fail"),
      (e: Error & { exitCode?: number }) => e,
    );
    assert.equal(err.exitCode, 1);
    assert.match(err.message, /public\.orders lost 20\.0% of its rows \(50 -> 40\)/);
    assert.match(
      err.message,
      /restored automatically from .*, so no row is lost; the database as the migrations left it is kept as guardrestore_before_restore_/,
    );
    const [{ n }] = await pg.query<{ n: string }>("SELECT count(*) AS n FROM orders", [], "guardrestore");
    assert.equal(n, "50");
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
