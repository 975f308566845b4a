import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { parseDatabaseUrl } from "../../../src/core/backup/runner";
import {
  createReleaseSlot,
  formatBlockers,
  dropReleaseSlot,
  listReleaseSlots,
  logicalReadiness,
  readinessProblems,
  slotFailure,
  slotName,
} from "../../../src/core/changes";
import { CannotRunError } from "../../../src/core/errors";
import { startPostgres, type TestPostgres } from "../../helpers/postgres";
import { connOf, local } from "./fixture";

// Slot hygiene and the requirements check (issue 20).
let pg: TestPostgres;
let replica: TestPostgres;

before(async () => {
  [pg, replica] = await Promise.all([startPostgres({ walLevel: "logical" }), startPostgres()]);
  for (const p of [pg, replica]) {
    await p.createDatabase("app");
    await p.query(
      `CREATE TABLE orders (id serial PRIMARY KEY, v text);
       CREATE TABLE wide (a int, b text); ALTER TABLE wide REPLICA IDENTITY FULL;`,
      [],
      "app",
    );
  }
  await replica.query("CREATE TABLE audit_log (at timestamptz, line text)", [], "app");
  await pg.query("CREATE ROLE plain LOGIN PASSWORD 'plain-pw'; GRANT ALL ON DATABASE app TO plain");
});
after(async () => {
  await Promise.all([pg?.close(), replica?.close()]);
});

test("slotName: safe_deploy_ prefix, at most 63 chars of [a-z0-9_], distinct for distinct long ids", () => {
  const cases: Array<[string, string, string]> = [
    ["prod", "r1", "safe_deploy_prod_r1"],
    ["Prod-EU", "2026-12-06T10:00:00Z", "safe_deploy_prod_eu_2026_12_06t10_00_00z"],
    ["", "--", "safe_deploy_stack_release"],
  ];
  for (const [stack, id, want] of cases) assert.equal(slotName(stack, id), want);
  const a = slotName("organisation-production-europe-west", "release-2026-12-06T10:00:00.123Z-aaaa");
  const b = slotName("organisation-production-europe-west", "release-2026-12-06T10:00:00.123Z-aaab");
  for (const n of [a, b]) {
    assert.match(n, /^safe_deploy_[a-z0-9_]+$/);
    assert.ok(n.length <= 63, n);
  }
  assert.notEqual(a, b);
  assert.equal(a, slotName("organisation-production-europe-west", "release-2026-12-06T10:00:00.123Z-aaaa"));
});

test("slots are listed with the WAL they hold, which grows with writes; drop ends the session holding one; the publication goes with the last slot", async () => {
  const conn = connOf(pg, "app");
  const one = await createReleaseSlot(local, conn, slotName("app", "one"));
  const two = await createReleaseSlot(local, conn, slotName("app", "two"));
  await two.close();
  // Someone else's slot is not ours to list or drop.
  await pg.query("SELECT pg_create_logical_replication_slot('other_tool', 'test_decoding')", [], "app");

  const first = await listReleaseSlots(local, conn);
  assert.deepEqual(
    first.map((s) => [s.slot, s.database]),
    [
      ["safe_deploy_app_one", "app"],
      ["safe_deploy_app_two", "app"],
    ],
  );
  await pg.query("INSERT INTO orders (v) SELECT repeat('x', 200) FROM generate_series(1, 20000)", [], "app");
  const later = await listReleaseSlots(local, conn);
  for (const [i, s] of later.entries()) {
    assert.ok(
      s.retainedBytes > first[i].retainedBytes + 4_000_000,
      `${s.slot}: ${first[i].retainedBytes} → ${s.retainedBytes}`,
    );
  }

  // `one`'s replication session is still open: drop ends it.
  assert.equal(await dropReleaseSlot(local, conn, one.slot), true);
  await one.close();
  assert.equal(await dropReleaseSlot(local, conn, one.slot), false);
  const pubs = async () =>
    (await pg.query<{ pubname: string }>("SELECT pubname FROM pg_publication", [], "app")).map(
      (p) => p.pubname,
    );
  assert.deepEqual(await pubs(), ["safe_deploy_changes"], "a slot still needs the publication");
  assert.equal(await dropReleaseSlot(local, conn, two.slot), true);
  assert.deepEqual(await listReleaseSlots(local, conn), []);
  assert.deepEqual(
    await pubs(),
    [],
    "no slot left: the publication (which blocks UPDATE on tables without a key) is dropped",
  );
  const all = await pg.query<{ slot_name: string }>("SELECT slot_name FROM pg_replication_slots", [], "app");
  assert.deepEqual(
    all.map((s) => s.slot_name),
    ["other_tool"],
  );
  await pg.query("SELECT pg_drop_replication_slot('other_tool')", [], "app");
});

test("abort (a failed or cancelled backup) leaves no slot behind", async () => {
  const conn = connOf(pg, "app");
  const s = await createReleaseSlot(local, conn, slotName("app", "cancelled"));
  assert.equal((await listReleaseSlots(local, conn)).length, 1);
  await s.abort();
  assert.deepEqual(await listReleaseSlots(local, conn), []);
});

test("a name that is not one of ours is refused before anything runs", async () => {
  await assert.rejects(
    dropReleaseSlot(local, connOf(pg, "app"), "other_tool; DROP TABLE x"),
    /not one of safe-deploy's/,
  );
});

test("readiness on a server at wal_level=replica names the problem and the fix, and the tables without a key", async () => {
  const r = await logicalReadiness(local, connOf(replica, "app"));
  assert.equal(r.walLevel, "replica");
  assert.deepEqual(r.tablesWithoutIdentity, ["public.audit_log"]);
  assert.ok(
    r.problems.some((p) => /wal_level is replica, not logical: set `wal_level = logical`.*restart/.test(p)),
    r.problems.join("\n"),
  );
  assert.ok(r.problems.some((p) => /public\.audit_log.*add a primary key.*REPLICA IDENTITY FULL/.test(p)));
  const err = await createReleaseSlot(local, connOf(replica, "app"), slotName("app", "x")).then(
    () => assert.fail("a slot on wal_level=replica"),
    (e: unknown) => e,
  );
  assert.ok(err instanceof CannotRunError);
  assert.match(err.message, /wal_level = logical.*rds\.logical_replication = 1/);
  assert.deepEqual(await listReleaseSlots(local, connOf(replica, "app")), []);
});

test("readiness of a role without REPLICATION names the grant; its slot creation fails saying so", async () => {
  const conn = parseDatabaseUrl(`postgres://plain:plain-pw@127.0.0.1:${pg.port}/app`);
  const r = await logicalReadiness(local, conn);
  assert.equal(r.walLevel, "logical");
  assert.equal(r.canReplicate, false);
  assert.equal(r.canPublish, false);
  assert.ok(
    r.problems.some((p) => p.includes('ALTER ROLE "plain" REPLICATION')),
    r.problems.join("\n"),
  );
  assert.ok(r.problems.some((p) => p.includes("CREATE PUBLICATION safe_deploy_changes FOR ALL TABLES")));
  await assert.rejects(createReleaseSlot(local, conn, slotName("app", "plain")), (e: Error) => {
    assert.ok(e instanceof CannotRunError);
    assert.match(e.message, /superuser/);
    assert.match(e.message, /ALTER ROLE "plain" REPLICATION/);
    assert.doesNotMatch(e.message, /plain-pw/);
    return true;
  });
});

test("readinessProblems: an RDS server is told its parameter, a full set of slots is named", () => {
  const ok = {
    walLevel: "logical",
    rds: null,
    superuser: true,
    replication: false,
    publication: false,
    maxSlots: 10,
    usedSlots: 0,
    noIdentity: [],
  };
  assert.deepEqual(readinessProblems(ok, "app"), []);
  const rds = readinessProblems(
    { ...ok, walLevel: "replica", rds: "off", superuser: false, publication: true, replication: true },
    "app",
  );
  assert.equal(rds.length, 1);
  assert.match(rds[0], /`rds\.logical_replication = 1`.*parameter group.*reboot/);
  assert.match(readinessProblems({ ...ok, usedSlots: 10 }, "app")[0], /raise `max_replication_slots`/);
});

test("slotFailure reads the message of an error copied by value (Pulumi's provider host), not '[object Object]'", () => {
  const conn = connOf(pg, "app");
  // What a CannotRunError thrown by pgFailure looks like inside the provider host: not instanceof Error.
  const copied = {
    name: "CannotRunError",
    exitCode: 3,
    message: "psql: ERROR:  logical decoding requires wal_level >= logical",
  };
  assert.equal(copied instanceof Error, false);
  const e = slotFailure("creating the change stream slot", copied, conn);
  assert.match(e.message, /set `wal_level = logical`/);
  const other = { name: "CannotRunError", exitCode: 3, message: "psql: could not connect" };
  assert.equal(slotFailure("creating", other, conn), other, "passed on as thrown, keeping its exit code");
  assert.match(slotFailure("creating", "text thrown", conn).message, /creating failed: text thrown/);
});

test("a table without primary key or replica identity: no publication and no slot, the error names it and the fix", async () => {
  await pg.createDatabase("keyless");
  const conn = connOf(pg, "keyless");
  await pg.query(
    "CREATE TABLE t (id int PRIMARY KEY); CREATE TABLE audit_log (at timestamptz, line text)",
    [],
    "keyless",
  );
  await assert.rejects(createReleaseSlot(local, conn, slotName("keyless", "r1")), (e: Error) => {
    assert.ok(e instanceof CannotRunError);
    assert.match(e.message, /public\.audit_log has no primary key or replica identity/);
    assert.match(e.message, /refuses UPDATE and DELETE/);
    assert.match(e.message, /REPLICA IDENTITY FULL/);
    return true;
  });
  assert.deepEqual(await pg.query("SELECT pubname FROM pg_publication", [], "keyless"), []);
  assert.deepEqual(await listReleaseSlots(local, conn), []);
  // The app's updates on it still work, as before.
  await pg.query("INSERT INTO audit_log VALUES (now(), 'a'); UPDATE audit_log SET line = 'b'", [], "keyless");
  await pg.query("ALTER TABLE audit_log REPLICA IDENTITY FULL", [], "keyless");
  const s = await createReleaseSlot(local, conn, slotName("keyless", "r1"));
  await s.abort();
});

test(
  "a transaction left open: slot creation gives up after waitMs naming that session, leaves no slot, and works once it ends",
  { timeout: 60_000 },
  async (t) => {
    const conn = connOf(pg, "app");
    const { Client } = await import("pg");
    const app = new Client({ connectionString: pg.url("app"), application_name: "web-worker" });
    await app.connect();
    t.after(() => app.end().catch(() => {}));
    await app.query("BEGIN");
    await app.query("INSERT INTO orders (v) VALUES ('held')");
    const pid = (await app.query<{ pid: number }>("SELECT pg_backend_pid() AS pid")).rows[0].pid;
    const slot = slotName("app", "waited");
    const err = await createReleaseSlot(local, conn, slot, { waitMs: 1500 }).then(
      () => assert.fail("created a slot while a transaction that holds an xid was open"),
      (e: Error) => e,
    );
    assert.ok(err instanceof CannotRunError, String(err));
    assert.match(
      err.message,
      new RegExp(
        `waited 2 s for transactions that were already running to end .*pid ${pid} \\(role "${pg.user}", ` +
          `application "web-worker" on "app", idle in transaction, transaction open \\d+ s\\).*rollback\\.slotWaitSeconds`,
      ),
    );
    assert.ok(!err.message.includes(pg.password));
    // The attempt is gone from the server: no slot, no walsender still waiting.
    const left = async () =>
      pg.query<{ n: string }>(
        `SELECT (SELECT count(*) FROM pg_replication_slots) + (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'walsender') AS n`,
        [],
        "app",
      );
    for (let i = 0; i < 100 && Number((await left())[0].n) > 0; i++)
      await new Promise((r) => setTimeout(r, 50));
    assert.equal(Number((await left())[0].n), 0);
    await app.query("COMMIT");
    const s = await createReleaseSlot(local, conn, slot, { waitMs: 30_000 });
    await s.abort();
    assert.deepEqual(await listReleaseSlots(local, conn), []);
  },
);

test("formatBlockers: each session as a person reads it; an empty or unreadable list says why", () => {
  assert.equal(
    formatBlockers(
      'BLOCK:[{"pid":7,"db":"app","user":"web","app":"api","state":"idle in transaction","seconds":95},{"pid":9,"state":"active"}]',
    ),
    'pid 7 (role "web", application "api" on "app", idle in transaction, transaction open 95 s), ' +
      "pid 9 (another role, active)",
  );
  for (const out of ["BLOCK:[]", "", "BLOCK:{broken"])
    assert.match(formatBlockers(out), /could not be listed .*pg_read_all_stats/);
});
