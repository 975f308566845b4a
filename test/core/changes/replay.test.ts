import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client } from "pg";
import { listReleaseSlots, replayChanges, slotName } from "../../../src/core/changes";
import { startPostgres, type TestPostgres } from "../../helpers/postgres";
import { connOf, local, restoreInto, rowsJson, slotAndDump } from "./fixture";

// Issue 20's scenario: a release adds a column to `orders` and creates `coupons`; the app writes to
// orders, customers (unchanged) and coupons; the rollback restores the pre-release dump and replays.
let pg: TestPostgres;
let dir: string;

before(async () => {
  pg = await startPostgres({ walLevel: "logical" });
  dir = mkdtempSync(join(tmpdir(), "sd-changes-"));
  await pg.createDatabase("shop");
  await pg.query(
    `CREATE TABLE customers (id serial PRIMARY KEY, email text NOT NULL UNIQUE, name text, balance numeric(12,2) NOT NULL DEFAULT 0);
     CREATE TABLE orders (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, customer_id int NOT NULL REFERENCES customers, amount numeric(12,2) NOT NULL, note text);
     CREATE TABLE pgmigrations (id serial PRIMARY KEY, name text NOT NULL, run_on timestamp NOT NULL);
     INSERT INTO customers (email, name, balance) SELECT 'c' || g || '@shop.test', 'Customer ' || g, g FROM generate_series(1, 50) g;
     INSERT INTO orders (customer_id, amount) SELECT 1 + g % 50, g * 1.25 FROM generate_series(1, 200) g;
     INSERT INTO pgmigrations (name, run_on) VALUES ('000_init', now());`,
    [],
    "shop",
  );
});
after(async () => {
  await pg?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test("after a rollback every committed write is back, or in the report: customers all, orders without the new column, coupons reported", async () => {
  const slot = slotName("prod", "r-2026-12-06");
  const dump = join(dir, "pre.dump");
  const s = await slotAndDump(pg, "shop", slot, dump);

  // The release's migration (node-pg-migrate style, one transaction with its bookkeeping row): a new
  // NOT NULL column with a backfill that must not be replayed as if a user wrote it, and a new table.
  await pg.query(
    `BEGIN;
     ALTER TABLE orders ADD COLUMN discount numeric(12,2) NOT NULL DEFAULT 0;
     UPDATE orders SET discount = 1, note = 'backfilled' WHERE id <= 100;
     CREATE TABLE coupons (id serial PRIMARY KEY, code text NOT NULL UNIQUE, order_id bigint REFERENCES orders, used boolean NOT NULL DEFAULT false);
     INSERT INTO pgmigrations (name, run_on) VALUES ('001_discount_coupons', now());
     COMMIT;`,
    [],
    "shop",
  );
  // The new release's users, in many small transactions.
  for (let i = 1; i <= 30; i++) {
    await pg.query(
      `BEGIN;
       INSERT INTO customers (email, name, balance) VALUES ('new${i}@shop.test', 'It''s "new" ${i}; \\ ok', ${i}.5);
       INSERT INTO orders (customer_id, amount, discount) VALUES (currval('customers_id_seq'), ${i} * 3.10, 2);
       INSERT INTO coupons (code, order_id) VALUES ('SAVE${i}', currval('orders_id_seq'));
       UPDATE customers SET balance = balance + 1 WHERE id = ${i};
       COMMIT;`,
      [],
      "shop",
    );
  }
  await pg.query(
    `UPDATE orders SET amount = amount + 10, discount = 5 WHERE id % 7 = 0;
     UPDATE coupons SET used = true WHERE id % 2 = 0;
     DELETE FROM coupons WHERE id = 3;
     DELETE FROM orders WHERE id IN (196, 197, 198, 199, 200);
     UPDATE customers SET email = 'renamed@shop.test' WHERE id = 2;
     INSERT INTO customers (email, name) VALUES ('gone@shop.test', 'short-lived');
     DELETE FROM customers WHERE email = 'gone@shop.test';`,
    [],
    "shop",
  );

  const into = await restoreInto(pg, dump, "shop_rollback");
  const progress: number[] = [];
  const r = await replayChanges({
    target: local,
    live: connOf(pg, "shop"),
    slot,
    startLsn: s.startLsn,
    into,
    reportDir: dir,
    onProgress: (n) => progress.push(n),
  });

  // customers: unchanged by the release, so identical, row for row.
  const customers = "SELECT * FROM customers ORDER BY id";
  assert.equal(await rowsJson(pg, "shop_rollback", customers), await rowsJson(pg, "shop", customers));
  // orders: the old columns of every row; the backfill's note not replayed (only rows a user updated
  // afterwards carry it: an update's row image holds every column as it was then).
  const oldCols = "SELECT id, customer_id, amount FROM orders ORDER BY id";
  assert.equal(await rowsJson(pg, "shop_rollback", oldCols), await rowsJson(pg, "shop", oldCols));
  const notes = await pg.query<{ n: string }>(
    "SELECT count(*) AS n FROM orders WHERE note IS NOT NULL AND id % 7 <> 0",
    [],
    "shop_rollback",
  );
  assert.equal(notes[0].n, "0", "the migration's backfill was replayed as if a user wrote it");
  const sums = "SELECT count(*) AS n, sum(amount) AS s FROM orders";
  assert.deepEqual(await pg.query(sums, [], "shop_rollback"), await pg.query(sums, [], "shop"));
  const cols = await pg.query<{ column_name: string }>(
    "SELECT column_name FROM information_schema.columns WHERE table_name = 'orders' ORDER BY ordinal_position",
    [],
    "shop_rollback",
  );
  assert.deepEqual(
    cols.map((c) => c.column_name),
    ["id", "customer_id", "amount", "note"],
  );
  const pgm = await pg.query<{ name: string }>("SELECT name FROM pgmigrations", [], "shop_rollback");
  assert.deepEqual(
    pgm.map((m) => m.name),
    ["000_init"],
    "the migration's bookkeeping was replayed",
  );
  assert.equal(r.excluded, 1);

  // coupons: absent in the old schema, so every write is in the report, and its SQL re-creates them
  // on the new schema.
  assert.ok(r.reportJson && r.reportSql);
  const report = JSON.parse(readFileSync(r.reportJson, "utf8")) as {
    changes: Array<{ table: string; op: string }>;
  };
  const couponOps = report.changes.filter((c) => c.table === "public.coupons").map((c) => c.op);
  assert.equal(couponOps.filter((o) => o === "insert").length, 30);
  assert.equal(couponOps.filter((o) => o === "update").length, 15);
  assert.equal(couponOps.filter((o) => o === "delete").length, 1);
  assert.equal(r.reported, 46);
  await pg.query("CREATE DATABASE shop_new TEMPLATE shop_rollback");
  await pg.query(
    `ALTER TABLE orders ADD COLUMN discount numeric(12,2) NOT NULL DEFAULT 0;
     CREATE TABLE coupons (id serial PRIMARY KEY, code text NOT NULL UNIQUE, order_id bigint REFERENCES orders, used boolean NOT NULL DEFAULT false);`,
    [],
    "shop_new",
  );
  await pg.query(readFileSync(r.reportSql, "utf8"), [], "shop_new");
  const coupons = "SELECT * FROM coupons ORDER BY id";
  assert.equal(await rowsJson(pg, "shop_new", coupons), await rowsJson(pg, "shop", coupons));

  // Sequences: the next id in the restored database follows the live one, never reusing one.
  const next = await pg.query<{ c: string; o: string }>(
    "SELECT nextval('customers_id_seq') AS c, nextval('orders_id_seq') AS o",
    [],
    "shop_rollback",
  );
  const liveMax = await pg.query<{ c: string; o: string }>(
    "SELECT (SELECT last_value FROM customers_id_seq) AS c, (SELECT last_value FROM orders_id_seq) AS o",
    [],
    "shop",
  );
  assert.ok(Number(next[0].c) > Number(liveMax[0].c) && Number(next[0].o) > Number(liveMax[0].o));
  assert.deepEqual(r.sequencesAdvanced.sort(), ["public.customers_id_seq", "public.orders_id_seq"]);

  // 30 small transactions and one of several statements; the migration's is not among them.
  assert.equal(r.transactions, 31);
  assert.ok(progress.length > 0 && progress[progress.length - 1] === r.transactions);
  // Only peeked: the slot still holds everything, for a replay that must run again.
  assert.deepEqual(
    (await listReleaseSlots(local, connOf(pg, "shop"))).map((x) => x.slot),
    [slot],
  );
});

test("a migration's transaction named by its txid_current() is not replayed, though it writes no bookkeeping row", async () => {
  await pg.createDatabase("crm");
  await pg.query(
    "CREATE TABLE contacts (id int PRIMARY KEY, phone text); INSERT INTO contacts SELECT g, '+34 600 00' || g FROM generate_series(10, 30) g",
    [],
    "crm",
  );
  const slot = slotName("crm", "r1");
  const dump = join(dir, "crm.dump");
  const s = await slotAndDump(pg, "crm", slot, dump);
  // A data migration run by a tool that records nothing in the database (e.g. a custom command).
  const c = new Client({ connectionString: pg.url("crm") });
  await c.connect();
  await c.query("BEGIN");
  await c.query("UPDATE contacts SET phone = replace(phone, ' ', '')");
  const xid = (await c.query<{ xid: string }>("SELECT txid_current()::text AS xid")).rows[0].xid;
  await c.query("COMMIT");
  await c.end();
  assert.ok(xid);
  await pg.query("INSERT INTO contacts VALUES (1, 'user wrote this')", [], "crm");
  const replay = async (db: string, excludeXids: string[]) =>
    replayChanges({
      target: local,
      live: connOf(pg, "crm"),
      slot,
      startLsn: s.startLsn,
      into: await restoreInto(pg, dump, db),
      reportDir: dir,
      excludeXids,
    });
  const r = await replay("crm_rb", [xid]);
  assert.equal(r.excluded, 1);
  assert.equal(r.applied, 1);
  const spaced = await pg.query<{ n: string }>(
    "SELECT count(*) AS n FROM contacts WHERE phone LIKE '+34 %'",
    [],
    "crm_rb",
  );
  assert.equal(spaced[0].n, "21", "the migration's rewrite of the old rows was replayed");
  // Without the xid it is taken for a user's writes: the reason the option exists.
  const without = await replay("crm_rb2", []);
  assert.equal(without.excluded, 0);
  assert.equal(without.applied, 22);
});
