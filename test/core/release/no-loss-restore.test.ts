import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { createBackup } from "../../../src/core/backup";
import { slotName } from "../../../src/core/changes/slot";
import { describeKept, restoreKeepingWrites } from "../../../src/core/release/changes";
import { startPostgres, type TestPostgres } from "../../helpers/postgres";

// Issue 20, part B item 4: a rollback's restore keeps the writes made after the pre-deploy backup, on a
// real PostgreSQL at wal_level=logical, through the restore the rollback step and `rollback --to` use.
let pg: TestPostgres;
let dir: string;

before(async () => {
  pg = await startPostgres({ walLevel: "logical" });
  dir = mkdtempSync(join(tmpdir(), "sd-noloss-"));
});
after(async () => {
  await pg?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const SCHEMA = `CREATE TABLE customers (id serial PRIMARY KEY, email text UNIQUE NOT NULL, name text);
  CREATE TABLE orders (id serial PRIMARY KEY, customer_id int REFERENCES customers, total int NOT NULL);
  CREATE TABLE pgmigrations (id serial PRIMARY KEY, name text, run_on timestamptz DEFAULT now());
  INSERT INTO customers (email, name) SELECT 'c' || g || '@x', 'c' || g FROM generate_series(1, 50) g;
  INSERT INTO orders (customer_id, total) SELECT 1 + g % 50, g FROM generate_series(1, 200) g;`;

/** A database at the previous release, its pre-deploy backup with a change stream, and the release's migration. */
async function deployed(db: string, migration: string) {
  const url = await pg.createDatabase(db);
  await pg.query(SCHEMA, [], db);
  const backup = await createBackup({
    databaseUrl: url,
    dir,
    label: `pre-${db}`,
    changeSlot: slotName("prod", db),
  });
  assert.ok(backup.manifest.changes, "the backup opened a change stream");
  // The migration, recorded by its tool in the same transaction (so it is not replayed as a user's write).
  await pg.query(`BEGIN; ${migration}; INSERT INTO pgmigrations (name) VALUES ('002'); COMMIT;`, [], db);
  return { url, backup };
}

const one = async (q: string, db: string) => (await pg.query<Record<string, unknown>>(q, [], db))[0];
const slotExists = async (slot: string) =>
  (await pg.query("SELECT 1 FROM pg_replication_slots WHERE slot_name = $1", [slot])).length === 1;

test("the issue's scenario: customers' writes kept, orders without the new column, coupons in the report", async () => {
  const { url, backup } = await deployed(
    "shop",
    "ALTER TABLE orders ADD COLUMN coupon text; CREATE TABLE coupons (code text PRIMARY KEY, pct int NOT NULL)",
  );
  // The new release's users write.
  await pg.query(
    `INSERT INTO customers (email, name) SELECT 'n' || g || '@x', 'new' || g FROM generate_series(1, 30) g;
     UPDATE customers SET name = 'renamed' WHERE id <= 5;
     DELETE FROM orders WHERE id <= 10;
     INSERT INTO orders (customer_id, total, coupon) SELECT 1 + g % 80, 1000 + g, 'SPRING' FROM generate_series(1, 40) g;
     INSERT INTO coupons VALUES ('SPRING', 10), ('FALL', 15);`,
    [],
    "shop",
  );
  const live = {
    customers: await one(
      "SELECT count(*)::int AS n, string_agg(name, ',' ORDER BY id) AS names FROM customers",
      "shop",
    ),
    orders: await one("SELECT count(*)::int AS n, sum(total)::int AS s FROM orders", "shop"),
  };
  // The rollback took its safety backup first, as the orchestrator's plan does.
  const safety = await createBackup({ databaseUrl: url, dir, label: "safety" });
  const kept = await restoreKeepingWrites(backup.file, {
    databaseUrl: url,
    safetyFile: safety.file,
    reportDir: dir,
    changeStream: true,
  });
  assert.ok(kept.replay, kept.lost);
  assert.equal(kept.replay.reported, 2, "the two coupons");
  assert.equal(kept.replay.applied, 30 + 5 + 10 + 40);
  // Old schema, every committed write of the tables it has.
  assert.deepEqual(
    await one("SELECT count(*)::int AS n, string_agg(name, ',' ORDER BY id) AS names FROM customers", "shop"),
    live.customers,
  );
  assert.deepEqual(
    await one("SELECT count(*)::int AS n, sum(total)::int AS s FROM orders", "shop"),
    live.orders,
  );
  assert.equal(
    (
      await one(
        "SELECT count(*)::int AS n FROM information_schema.columns WHERE table_name = 'orders' AND column_name = 'coupon'",
        "shop",
      )
    ).n,
    0,
  );
  assert.equal((await one("SELECT to_regclass('coupons') IS NULL AS gone", "shop")).gone, true);
  // The migration's bookkeeping stays the old release's.
  assert.equal((await one("SELECT count(*)::int AS n FROM pgmigrations", "shop")).n, 0);
  // New rows get ids past the replayed ones.
  await pg.query("INSERT INTO customers (email) VALUES ('after@x')", [], "shop");
  const report = readFileSync(kept.replay.reportJson!, "utf8");
  assert.match(report, /SPRING/);
  assert.match(report, /FALL/);
  assert.match(
    describeKept(kept),
    /^85 write\(s\) made after the backup replayed .*2 did not fit the old schema and are in .*json/,
  );
  assert.equal(await slotExists(backup.manifest.changes!.slot), false, "the slot is dropped after the swap");
  assert.ok(kept.restore.previousDatabase);
});

test("a replay that cannot apply (a unique key the release dropped): the live database is untouched, the slot kept, the error says what to do", async () => {
  const { url, backup } = await deployed("dup", "ALTER TABLE customers DROP CONSTRAINT customers_email_key");
  await pg.query("INSERT INTO customers (email, name) VALUES ('c1@x', 'twin')", [], "dup");
  const before = await one("SELECT count(*)::int AS n FROM customers", "dup");
  const safety = await createBackup({ databaseUrl: url, dir, label: "safety" });
  await assert.rejects(
    restoreKeepingWrites(backup.file, {
      databaseUrl: url,
      safetyFile: safety.file,
      reportDir: dir,
      changeStream: true,
    }),
    (e: Error) => {
      assert.match(e.message, /replaying the writes made since .* failed: /);
      assert.match(
        e.message,
        /live database "dup" is untouched and the slot kept: fix the cause and run the rollback again/,
      );
      assert.ok(!e.message.includes(pg.password));
      return true;
    },
  );
  assert.deepEqual(await one("SELECT count(*)::int AS n FROM customers", "dup"), before);
  assert.equal(
    (await pg.query("SELECT datname FROM pg_database WHERE datname LIKE 'dup\\_%'")).length,
    0,
    "no restored copy or renamed database left",
  );
  assert.equal(await slotExists(backup.manifest.changes!.slot), true);
  await pg.query("SELECT pg_drop_replication_slot($1)", [backup.manifest.changes!.slot]);
});

test("no stream (switched off): the restore is today's, and says the later writes are only in the kept database", async () => {
  const { url, backup } = await deployed("off", "ALTER TABLE orders ADD COLUMN note text");
  await pg.query("INSERT INTO customers (email) VALUES ('late@x')", [], "off");
  const kept = await restoreKeepingWrites(backup.file, {
    databaseUrl: url,
    reportDir: dir,
    changeStream: false,
  });
  assert.equal(kept.replay, undefined);
  assert.match(
    kept.lost!,
    /^rollback\.changeStream is off; they are only in the kept database off_before_restore_\d{14}$/,
  );
  assert.equal((await one("SELECT count(*)::int AS n FROM customers WHERE email = 'late@x'", "off")).n, 0);
  // The switch off does not drop a slot it did not use; the next prune does.
  await pg.query("SELECT pg_drop_replication_slot($1)", [backup.manifest.changes!.slot]);
});

test("stream on, but nothing to replay: a backup without a stream, or a slot already dropped, says why and where the writes are", async () => {
  const { url, backup } = await deployed("gone", "ALTER TABLE orders ADD COLUMN note text");
  const slot = backup.manifest.changes!.slot;
  await pg.query("SELECT pg_drop_replication_slot($1)", [slot]);
  // Another release's slot on the same database is not this backup's stream.
  await pg.query(
    "SELECT pg_create_logical_replication_slot('safe_deploy_test_other', 'test_decoding')",
    [],
    "gone",
  );
  try {
    const kept = await restoreKeepingWrites(backup.file, {
      databaseUrl: url,
      reportDir: dir,
      changeStream: true,
    });
    assert.equal(kept.replay, undefined);
    assert.match(
      kept.lost!,
      new RegExp(
        `^its slot ${slot} no longer exists \\(dropped after its keep window or at rollback\\.maxRetainedWalMB\\); ` +
          "they are only in the kept database gone_before_restore_\\d{14}$",
      ),
    );
  } finally {
    await pg.query("SELECT pg_drop_replication_slot('safe_deploy_test_other')");
  }
  // Another database: two restores of one database within a second would name their kept copies alike.
  const other = await pg.createDatabase("nostream");
  await pg.query(SCHEMA, [], "nostream");
  const plain = await createBackup({ databaseUrl: other, dir, label: "no-stream" });
  const again = await restoreKeepingWrites(plain.file, {
    databaseUrl: other,
    reportDir: dir,
    changeStream: true,
  });
  assert.match(
    again.lost!,
    new RegExp(
      `^${basename(plain.file).replace(/[.]/g, "\\.")} has no change stream \\(taken without one, or the server ` +
        "did not allow it\\); they are only in the kept database nostream_before_restore_\\d{14}$",
    ),
  );
});
