import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ReplayError, replayChanges, slotName, type ReleaseSlot } from "../../../src/core/changes";
import { startPostgres, type TestPostgres } from "../../helpers/postgres";
import { connOf, local, restoreInto, slotAndDump } from "./fixture";

// A replay that cannot finish (a conflicting unique key, Ctrl-C) stops with nothing half-applied,
// says what to do, and leaves the live database and the stream as they were (issue 20).
let pg: TestPostgres;
let dir: string;

before(async () => {
  pg = await startPostgres({ walLevel: "logical" });
  dir = mkdtempSync(join(tmpdir(), "sd-changes-stop-"));
});
after(async () => {
  await pg?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const count = async (db: string, table: string) =>
  Number((await pg.query<{ n: string }>(`SELECT count(*) AS n FROM ${table}`, [], db))[0].n);

/** What the live database holds, to see that a replay left it alone. */
const liveState = async (db: string, slot: string) => ({
  rows: await pg.query("SELECT * FROM customers ORDER BY id", [], db),
  slot: await pg.query(
    "SELECT slot_name, restart_lsn::text, confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1",
    [slot],
    db,
  ),
});

test("a conflicting unique key stops the replay: nothing of its batch applied, the live database and the stream untouched, the message says what to do", async () => {
  await pg.createDatabase("shop");
  await pg.query(
    `CREATE TABLE customers (id serial PRIMARY KEY, email text NOT NULL UNIQUE);
     INSERT INTO customers (email) SELECT 'c' || g || '@x.test' FROM generate_series(1, 10) g;`,
    [],
    "shop",
  );
  const slot = slotName("shop", "r1");
  const dump = join(dir, "shop.dump");
  const s = await slotAndDump(pg, "shop", slot, dump);
  // The release drops the unique email; its users then sign up twice with one address.
  await pg.query("ALTER TABLE customers DROP CONSTRAINT customers_email_key", [], "shop");
  await pg.query("INSERT INTO customers (email) VALUES ('a@x.test')", [], "shop");
  await pg.query("INSERT INTO customers (email) VALUES ('dup@x.test')", [], "shop");
  await pg.query("INSERT INTO customers (email) VALUES ('dup@x.test')", [], "shop");
  const before = await liveState("shop", slot);

  for (const db of ["shop_rb1", "shop_rb2"]) {
    const into = await restoreInto(pg, dump, db);
    const err = await replayChanges({
      target: local,
      live: connOf(pg, "shop"),
      slot,
      startLsn: s.startLsn,
      into,
      reportDir: dir,
    }).then(
      () => assert.fail("the replay should have stopped"),
      (e: unknown) => e,
    );
    assert.ok(err instanceof ReplayError);
    assert.match(err.message, /duplicate key value violates unique constraint "customers_email_key"/);
    assert.match(err.message, /Key \(email\)=\(dup@x\.test\) already exists/);
    assert.match(err.message, new RegExp(`Discard database "${db}"`));
    assert.match(err.message, /roll back again|without replaying/);
    assert.doesNotMatch(err.message, new RegExp(pg.password));
    // The batch with the conflict was one transaction on the target: none of it is visible.
    assert.equal(await count(db, "customers"), 10);
    // Run twice: the stream was only peeked, so the second replay sees the same writes.
    assert.deepEqual(await liveState("shop", slot), before);
  }
  assert.deepEqual(
    readdirSync(dir).filter((f) => f.includes(".partial")),
    [],
  );
});

test("an interrupt stops the replay at a transaction boundary; a second replay from the kept stream gets everything", async () => {
  await pg.createDatabase("events");
  await pg.query("CREATE TABLE events (id int PRIMARY KEY, txn int NOT NULL)", [], "events");
  const slot = slotName("events", "r1");
  const dump = join(dir, "events.dump");
  const s: ReleaseSlot = await slotAndDump(pg, "events", slot, dump);
  // 3000 transactions of 3 rows each: more than one batch.
  await pg.query(
    `DO $$ BEGIN FOR i IN 1..3000 LOOP
       INSERT INTO events SELECT i * 3 + k, i FROM generate_series(0, 2) k;
       COMMIT;
     END LOOP; END $$;`,
    [],
    "events",
  );

  const into = await restoreInto(pg, dump, "events_rb1");
  let progressed = 0;
  const err = await replayChanges({
    target: local,
    live: connOf(pg, "events"),
    slot,
    startLsn: s.startLsn,
    into,
    reportDir: dir,
    onProgress: (n) => (progressed = n),
    interrupted: () => (progressed > 0 ? "SIGINT" : undefined),
  }).then(
    () => assert.fail("the replay should have stopped"),
    (e: unknown) => e,
  );
  assert.ok(err instanceof ReplayError);
  assert.equal(err.interrupted, "SIGINT");
  assert.match(err.message, /stopped by SIGINT after \d+ transactions/);
  assert.match(err.message, /discard database "events_rb1"/);
  const applied = await count("events_rb1", "events");
  assert.ok(applied > 0 && applied < 9000, `${applied} rows: the interrupt should land part-way`);
  assert.equal(applied, progressed * 3, "a transaction half-applied");
  const whole = await pg.query<{ n: string }>(
    "SELECT count(*) AS n FROM (SELECT txn FROM events GROUP BY txn HAVING count(*) <> 3) t",
    [],
    "events_rb1",
  );
  assert.equal(whole[0].n, "0");

  const again = await restoreInto(pg, dump, "events_rb2");
  const r = await replayChanges({
    target: local,
    live: connOf(pg, "events"),
    slot,
    startLsn: s.startLsn,
    into: again,
    reportDir: dir,
  });
  assert.equal(r.transactions, 3000);
  assert.equal(await count("events_rb2", "events"), 9000);
});

test("a replay from a slot that is gone says the writes cannot be replayed and what to do", async () => {
  await pg.createDatabase("gone");
  await pg.query("CREATE TABLE t (id int PRIMARY KEY)", [], "gone");
  const slot = slotName("gone", "r1");
  const dump = join(dir, "gone.dump");
  const s = await slotAndDump(pg, "gone", slot, dump);
  await pg.query("INSERT INTO t VALUES (1)", [], "gone");
  await pg.query("SELECT pg_drop_replication_slot($1)", [slot], "gone");
  const into = await restoreInto(pg, dump, "gone_rb");
  await assert.rejects(
    replayChanges({
      target: local,
      live: connOf(pg, "gone"),
      slot,
      startLsn: s.startLsn,
      into,
      reportDir: dir,
    }),
    /the slot is gone .* roll back without replaying/,
  );
});
