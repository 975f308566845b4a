// The backup's snapshot session and the counts a manifest and a restore compare (issue 22, mutation
// testing of src/core/backup/session.ts): one small server, every call in this process.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { Client } from "pg";
import { startPostgres, type TestPostgres } from "../../helpers/postgres";
import { parseDatabaseUrl, type RunTarget } from "../../../src/core/backup/runner";
import {
  countLoadedRows,
  countRows,
  holdAdvisoryLock,
  mergeRowCounts,
  openSnapshot,
  psqlSession,
  runSql,
  tableChecksums,
} from "../../../src/core/backup/session";
import { CannotRunError } from "../../../src/core/errors";

const local: RunTarget = { runIn: "local" };
let pg: TestPostgres;

/** `p`, or a failure naming `what` after `ms`: no wait in this file outlives its own bound. */
function bounded<T>(p: Promise<T>, what: string, ms = 30_000): Promise<T> {
  let t: NodeJS.Timeout;
  return Promise.race([
    p.finally(() => clearTimeout(t)),
    new Promise<T>((_, reject) => {
      t = setTimeout(() => reject(new Error(`${what}: not done after ${ms} ms`)), ms);
    }),
  ]);
}

before(async () => {
  pg = await startPostgres();
  await pg.createDatabase("shop");
  await pg.query(
    `CREATE SCHEMA "Odd s";
     CREATE TABLE "Odd s"."T 1" (id int PRIMARY KEY);
     INSERT INTO "Odd s"."T 1" SELECT generate_series(1, 3);
     CREATE TABLE items (id int PRIMARY KEY, name text);
     INSERT INTO items SELECT g, 'n' || g FROM generate_series(1, 5) g;
     CREATE TABLE empty (id int);
     CREATE TABLE ev (id int, at date) PARTITION BY RANGE (at);
     CREATE TABLE ev_a PARTITION OF ev FOR VALUES FROM ('2020-01-01') TO ('2021-01-01');
     CREATE TABLE ev_b PARTITION OF ev FOR VALUES FROM ('2021-01-01') TO ('2022-01-01');
     INSERT INTO ev VALUES (1, '2020-05-01'), (2, '2020-06-01'), (3, '2021-02-01');
     CREATE VIEW v AS SELECT * FROM items;`,
    [],
    "shop",
  );
});
after(async () => {
  await pg?.close();
});

const EXPECTED = {
  "Odd s.T 1": 3,
  "public.empty": 0,
  "public.ev": 3,
  "public.ev_a": 2,
  "public.ev_b": 1,
  "public.items": 5,
};

test("mergeRowCounts: the server's counts, the stream's where the server gave null, a parent as the sum of its leaves", () => {
  assert.deepEqual(
    mergeRowCounts(
      { "s.a": 4, "s.b": null, "s.p": null, "s.l1": null, "s.l2": 6, "s.c": null },
      { "s.p": ["s.l1", "s.l2"], "s.gone": ["s.l1"] },
      { "s.b": 7, "s.l1": 2 },
    ),
    { counts: { "s.a": 4, "s.b": 7, "s.l1": 2, "s.l2": 6, "s.p": 8 }, missing: ["s.c"] },
  );
  // A leaf neither side counted: its parent is missing too (counted on the server by the caller).
  assert.deepEqual(mergeRowCounts({ "s.p": null, "s.l1": null }, { "s.p": ["s.l1"] }, {}), {
    counts: {},
    missing: ["s.l1", "s.p"],
  });
  // Counts may come as text (bigint from JSON) and are numbers in the manifest; 0 is a count, not a gap.
  assert.deepEqual(mergeRowCounts({ "s.a": "12" as unknown as number, "s.z": 0 }, {}, { "s.a": 1 }), {
    counts: { "s.a": 12, "s.z": 0 },
    missing: [],
  });
  assert.deepEqual(mergeRowCounts({ "s.p": null }, { "s.p": [] }, {}), { counts: { "s.p": 0 }, missing: [] });
});

test("openSnapshot: the snapshot, the server's version, bytea_output and exact counts of every table, views left out", async () => {
  const conn = parseDatabaseUrl(pg.url("shop"));
  const snap = await bounded(openSnapshot(local, conn), "openSnapshot");
  try {
    assert.match(snap.snapshot, /^[0-9A-F]+-[0-9A-F]+-\d+$/);
    const ver = await pg.query<{ n: string; v: string }>(
      "SELECT current_setting('server_version_num') AS n, current_setting('server_version') AS v",
    );
    assert.equal(snap.serverVersionNum, Number(ver[0].n));
    assert.equal(snap.serverVersion, ver[0].v);
    assert.equal(snap.byteaOutput, "hex");
    // Written after the snapshot: counted neither by the snapshot's counts nor by its checksums.
    await pg.query("INSERT INTO items VALUES (99, 'late')", [], "shop");
    assert.deepEqual(await snap.rowCounts(), EXPECTED);
    assert.equal(snap.rowCounts(), snap.rowCounts(), "counted once");
    const side = await snap.countsBesideStream(["public.items", "Odd s.T 1"]);
    assert.deepEqual(side, {
      rows: {
        "Odd s.T 1": null,
        "public.empty": 0,
        "public.ev": null,
        "public.ev_a": 2,
        "public.ev_b": 1,
        "public.items": null,
      },
      parts: { "public.ev": ["public.ev_a", "public.ev_b"] },
    });
    assert.deepEqual(await snap.countTables(["public.ev", "public.items"]), {
      "public.ev": 3,
      "public.items": 5,
    });
    assert.deepEqual(await snap.countTables([]), {});
    const sums = await snap.tableChecksums();
    assert.deepEqual(Object.keys(sums), Object.keys(EXPECTED));
    for (const v of Object.values(sums)) assert.match(v, /^-?\d+:-?\d+$/);
    await pg.query("DELETE FROM items WHERE id = 99", [], "shop");
    assert.deepEqual(
      await tableChecksums(local, conn),
      sums,
      "the same data outside the snapshot sums the same",
    );
    assert.deepEqual(await countRows(local, conn), EXPECTED);
  } finally {
    await snap.close();
  }
});

test("openSnapshot: one backup of a database at a time; the lock goes with close, and with abort", async () => {
  const conn = parseDatabaseUrl(pg.url("shop"));
  const first = await openSnapshot(local, conn);
  try {
    await assert.rejects(openSnapshot(local, conn), (e: Error) => {
      assert.ok(e instanceof CannotRunError);
      assert.equal(
        e.message,
        'another backup of database "shop" is running right now; wait for it to finish and retry',
      );
      return true;
    });
    // Another database's backup is not held up by it.
    const other = await openSnapshot(local, parseDatabaseUrl(pg.url("postgres")));
    await other.close();
  } finally {
    await first.close();
  }
  const second = await openSnapshot(local, conn);
  await second.abort();
  const third = await openSnapshot(local, conn);
  await third.close();
  const left = await pg.query(
    "SELECT pid FROM pg_stat_activity WHERE datname = 'shop' AND pid <> pg_backend_pid() AND backend_type = 'client backend'",
  );
  assert.deepEqual(left, [], "every session ended");
});

test("openSnapshot: a snapshot exported elsewhere (a release slot's) is the one counted", async () => {
  const holder = new Client({ connectionString: pg.url("shop") });
  await holder.connect();
  try {
    await holder.query("BEGIN ISOLATION LEVEL REPEATABLE READ");
    const { rows } = await holder.query<{ s: string }>("SELECT pg_export_snapshot() AS s");
    await pg.query("INSERT INTO items VALUES (100, 'after the slot')", [], "shop");
    const snap = await bounded(openSnapshot(local, parseDatabaseUrl(pg.url("shop")), rows[0].s), "imported");
    try {
      assert.equal(snap.snapshot, rows[0].s);
      assert.equal((await snap.rowCounts())["public.items"], 5);
    } finally {
      await snap.close();
    }
  } finally {
    await holder.query("ROLLBACK");
    await holder.end();
    await pg.query("DELETE FROM items WHERE id = 100", [], "shop");
  }
});

test("abort: a count stuck behind a lock is cancelled and the session ends, where close would wait", async () => {
  const conn = parseDatabaseUrl(pg.url("shop"));
  const snap = await openSnapshot(local, conn);
  const holder = new Client({ connectionString: pg.url("shop") });
  await holder.connect();
  try {
    await holder.query("BEGIN; LOCK TABLE items IN ACCESS EXCLUSIVE MODE");
    const counting = snap.rowCounts();
    counting.catch(() => {});
    for (let i = 0; ; i++) {
      const w = await pg.query(
        "SELECT 1 FROM pg_stat_activity WHERE datname = 'shop' AND wait_event_type = 'Lock'",
      );
      if (w.length) break;
      if (i > 2000) throw new Error("the count never waited on the lock");
      await new Promise((r) => setTimeout(r, 10));
    }
    await bounded(snap.abort(), "abort while the count waits", 20_000);
    await assert.rejects(counting, (e: Error) => e instanceof CannotRunError && /^backup/.test(e.message));
  } finally {
    await holder.query("ROLLBACK");
    await holder.end();
  }
  // Aborting a session already ended is quiet.
  await snap.abort();
});

test("psqlSession: a failing statement rejects at once, naming the step and psql's error", async () => {
  const s = psqlSession(local, parseDatabaseUrl(pg.url("shop")), "checking things");
  await assert.rejects(bounded(s.send(["SELECT * FROM no_such_table;"], "__M__"), "send"), (e: Error) => {
    assert.ok(e instanceof CannotRunError);
    assert.match(e.message, /^checking things failed: .*relation "no_such_table" does not exist/s);
    return true;
  });
  assert.equal(s.running(), false);
  // Sent to a psql that has exited: rejects with the same error, and the broken pipe does not crash this process.
  await assert.rejects(
    bounded(s.send(["SELECT 1;"], "__AFTER__"), "send after exit"),
    /^CannotRunError: checking things failed/,
  );
  await new Promise((r) => setImmediate(r));
  const ok = psqlSession(local, parseDatabaseUrl(pg.url("shop")), "x");
  const out = await ok.send(["SELECT 'A:' || 1;", "SELECT 'B:' || 2;"], "__M2__");
  assert.equal(out, "A:1\nB:2\n__M2__1\n");
  assert.equal(ok.running(), true);
  await ok.end();
  assert.equal(ok.running(), false);
});

test("runSql and countRows: a failure names the step and the fix, never the password", async () => {
  const bad = parseDatabaseUrl(pg.url("shop").replace(/:[^:@/]+@/, ":wrongpass@"));
  for (const call of [
    () => runSql(local, bad, "SELECT 1;", "reading things"),
    () => countRows(local, bad),
    () => tableChecksums(local, bad),
  ]) {
    await assert.rejects(call(), (e: Error) => {
      assert.ok(e instanceof CannotRunError);
      assert.match(e.message, /^(reading things|counting rows|computing table checksums): could not log in/);
      assert.ok(!e.message.includes("wrongpass"));
      return true;
    });
  }
  assert.equal(await runSql(local, parseDatabaseUrl(pg.url("shop")), "SELECT 'x' || 1", "y"), "x1\n");
  await assert.rejects(
    runSql(local, parseDatabaseUrl(pg.url("shop")), "SELECT 1/0;", "dividing"),
    /^CannotRunError: dividing failed: .*division by zero/s,
  );
});

test("countLoadedRows: the statistics when they match exactly; a count of every table otherwise", async () => {
  const url = await pg.createDatabase("loaded");
  await pg.query(
    `CREATE TABLE a (x int); CREATE TABLE b (x int);
     CREATE TABLE p (x int) PARTITION BY RANGE (x);
     CREATE TABLE p1 PARTITION OF p FOR VALUES FROM (0) TO (10);
     CREATE TABLE p2 PARTITION OF p FOR VALUES FROM (10) TO (20);
     INSERT INTO a SELECT generate_series(1, 4); INSERT INTO p VALUES (1), (2), (15);`,
    [],
    "loaded",
  );
  const conn = parseDatabaseUrl(url);
  const exact = { "public.a": 4, "public.b": 0, "public.p": 3, "public.p1": 2, "public.p2": 1 };
  assert.deepEqual(await countLoadedRows(local, conn, exact), { counts: exact, from: "statistics" });
  // One more table in the expected counts than the copy has: counted, which shows the copy's own set.
  assert.deepEqual(await countLoadedRows(local, conn, { ...exact, "public.c": 1 }), {
    counts: exact,
    from: "count",
  });
  // A count the statistics do not give: counted (the count decides; here it agrees with the stats).
  assert.deepEqual(await countLoadedRows(local, conn, { ...exact, "public.a": 5 }), {
    counts: exact,
    from: "count",
  });
  // A table missing from the expected ones: counted.
  const { "public.b": _b, ...lessB } = exact;
  assert.equal((await countLoadedRows(local, conn, lessB)).from, "count");
  // Rows updated or deleted: n_tup_ins is no longer the count, so every table is counted.
  await pg.query("DELETE FROM a WHERE x = 4", [], "loaded");
  const after = { ...exact, "public.a": 3 };
  assert.deepEqual(await countLoadedRows(local, conn, after), { counts: after, from: "count" });
  // Statistics unreadable (the role cannot connect): the count's own failure is what the user sees.
  const bad = parseDatabaseUrl(url.replace(/:[^:@/]+@/, ":wrongpass@"));
  await assert.rejects(countLoadedRows(local, bad, exact), /counting rows: could not log in/);
});

test("holdAdvisoryLock: one holder at a time; released by the returned function", async () => {
  const conn = parseDatabaseUrl(pg.url("shop"));
  const release = await holdAdvisoryLock(local, conn, "safe-deploy:test:it's");
  assert.equal(typeof release, "function");
  assert.equal(await holdAdvisoryLock(local, conn, "safe-deploy:test:it's"), undefined);
  const other = await holdAdvisoryLock(local, conn, "safe-deploy:test:other");
  await other!();
  await release!();
  const again = await holdAdvisoryLock(local, conn, "safe-deploy:test:it's");
  assert.equal(typeof again, "function");
  await again!();
});
