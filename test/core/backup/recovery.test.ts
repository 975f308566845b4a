import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BIN, interruptCli, pgRestoreRunning } from "../../helpers/interrupt";
import { until } from "../../helpers/bounded";
import { standinPgBin } from "../../helpers/pg-bin";
import { PG_BIN, startPostgres, type TestPostgres } from "../../helpers/postgres";
import { createBackup, restoreBackup, verifyBackup } from "../../../src/core/backup";
import { CannotRunError } from "../../../src/core/errors";

// Disaster recovery: the server the backup goes back to is not the one it came from.
let pg: TestPostgres;
let dir: string;

before(async () => {
  pg = await startPostgres();
  dir = mkdtempSync(join(tmpdir(), "sd-bk-dr-"));
});
after(async () => {
  await pg?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const databases = async () =>
  (await pg.query<{ datname: string }>("SELECT datname FROM pg_database ORDER BY 1")).map((d) => d.datname);

test("a database the server does not have is created, owned as in the backup, with no safety backup", async () => {
  await pg.query("CREATE ROLE app_owner LOGIN PASSWORD 'owner-pw'");
  await pg.query("CREATE DATABASE lost OWNER app_owner");
  await pg.query(
    "CREATE TABLE t (id int); INSERT INTO t SELECT generate_series(1, 50); ALTER TABLE t OWNER TO app_owner",
    [],
    "lost",
  );
  const d = join(dir, "lost");
  const r = await createBackup({ databaseUrl: pg.url("lost"), dir: d, label: "manual" });
  await pg.query("DROP DATABASE lost");

  const res = await restoreBackup(r.file, { databaseUrl: pg.url("lost") });
  assert.equal(res.database, "lost");
  assert.equal(res.previousDatabase, undefined);
  assert.equal(res.safety, undefined);
  const [{ n }] = await pg.query<{ n: number }>("SELECT count(*)::int AS n FROM t", [], "lost");
  assert.equal(n, 50);
  const [{ owner }] = await pg.query<{ owner: string }>(
    "SELECT pg_get_userbyid(datdba) AS owner FROM pg_database WHERE datname = 'lost'",
  );
  assert.equal(owner, "app_owner");
  assert.deepEqual(
    readdirSync(d).filter((f) => f.includes("safety")),
    [],
  );

  // The same backup as a copy under another name, next to the original.
  await restoreBackup(r.file, { databaseUrl: pg.url("lost_copy") });
  const [{ m }] = await pg.query<{ m: number }>("SELECT count(*)::int AS m FROM t", [], "lost_copy");
  assert.equal(m, 50);
  assert.ok(!(await databases()).some((x) => x.includes("_restoring_")));
});

test("a new database whose owner role the server lacks: names the role and the fix, creates nothing", async () => {
  await pg.query("CREATE ROLE gone_owner LOGIN");
  await pg.query("CREATE DATABASE orphan OWNER gone_owner");
  await pg.query("CREATE TABLE t (id int); INSERT INTO t VALUES (1)", [], "orphan");
  const r = await createBackup({ databaseUrl: pg.url("orphan"), dir: join(dir, "orphan"), label: "manual" });
  await pg.query("DROP DATABASE orphan");
  await pg.query("DROP ROLE gone_owner");
  const before = await databases();
  await assert.rejects(restoreBackup(r.file, { databaseUrl: pg.url("orphan") }), (e: Error) => {
    assert.ok(e instanceof CannotRunError, `${e.constructor.name}: ${e.message}`);
    assert.match(e.message, /role "gone_owner".* does not exist on this server/);
    assert.match(e.message, /CREATE ROLE "gone_owner" LOGIN/);
    return true;
  });
  assert.deepEqual(await databases(), before);
});

test("a table owner role the server lacks: names the role, never calls the backup corrupt; original untouched", async () => {
  await pg.query("CREATE ROLE table_owner LOGIN");
  await pg.query("CREATE DATABASE owned");
  await pg.query(
    "CREATE TABLE t AS SELECT g AS id, repeat('x', 200) AS s FROM generate_series(1, 20000) g; ALTER TABLE t OWNER TO table_owner",
    [],
    "owned",
  );
  const r = await createBackup({ databaseUrl: pg.url("owned"), dir: join(dir, "owned"), label: "manual" });
  await pg.query("REASSIGN OWNED BY table_owner TO CURRENT_USER", [], "owned");
  await pg.query("DROP ROLE table_owner");
  await pg.query("INSERT INTO t VALUES (-1, 'marker')", [], "owned");
  const before = await databases();
  await assert.rejects(restoreBackup(r.file, { databaseUrl: pg.url("owned") }), (e: Error) => {
    assert.ok(e instanceof CannotRunError, `${e.constructor.name}: ${e.message}`);
    assert.match(e.message, /role "table_owner" owns objects in .* but does not exist on this server/);
    assert.match(e.message, /CREATE ROLE "table_owner" LOGIN/);
    assert.doesNotMatch(e.message, /decompress|corrupt/);
    return true;
  });
  assert.deepEqual(await databases(), before);
  const [{ n }] = await pg.query<{ n: number }>(
    "SELECT count(*)::int AS n FROM t WHERE id = -1",
    [],
    "owned",
  );
  assert.equal(n, 1, "original untouched");
});

test("Ctrl-C during a restore or a restore test: the original untouched, nothing left behind, said so, exit 3", async () => {
  await pg.createDatabase("big");
  await pg.query(
    "CREATE TABLE big AS SELECT g, repeat(md5(g::text), 8) AS s FROM generate_series(1, 400000) g",
    [],
    "big",
  );
  const r = await createBackup({ databaseUrl: pg.url("big"), dir: join(dir, "big"), label: "manual" });
  await pg.query("INSERT INTO big VALUES (-1, 'marker')", [], "big");
  const before = await databases();
  // Mid-way for sure: the scratch database exists and pg_restore is running into it (a signal that
  // lands after the swap rightly ends in a finished restore, so the test waits for pg_restore).
  const scratch = (prefix: string) => async (pgid: number) =>
    (await databases()).some((d) => d.startsWith(prefix)) && pgRestoreRunning(pgid);

  const res = await interruptCli(
    ["backup", "restore", r.file, "--yes", "--database-url", pg.url("big")],
    scratch("big_restoring_"),
  );
  assert.equal(res.code, 3, res.err);
  assert.match(res.err, /restore interrupted by SIGINT: database "big" is as it was/);
  assert.deepEqual(await databases(), before);
  const [{ n, open }] = await pg.query<{ n: number; open: boolean }>(
    "SELECT (SELECT count(*)::int FROM big WHERE g = -1) AS n, (SELECT datallowconn FROM pg_database WHERE datname = 'big') AS open",
    [],
    "big",
  );
  assert.deepEqual({ n, open }, { n: 1, open: true });

  const v = await interruptCli(
    ["backup", "verify", r.file, "--restore-test", "--database-url", pg.url("big")],
    scratch("safe_deploy_verify_"),
  );
  assert.equal(v.code, 3, v.err);
  assert.match(v.err, /restore test interrupted by SIGINT: the scratch database was dropped/);
  assert.deepEqual(await databases(), before);

  // A later restore still works.
  const again = await restoreBackup(r.file, { databaseUrl: pg.url("big") });
  await pg.query(`DROP DATABASE "${again.previousDatabase}"`);
});

test("two restores of one database at once: the second is refused (exit 3) and the first reports the right old database", async () => {
  await pg.createDatabase("twice");
  await pg.query(
    "CREATE TABLE big AS SELECT g, repeat(md5(g::text), 8) AS s FROM generate_series(1, 300000) g",
    [],
    "twice",
  );
  const r = await createBackup({ databaseUrl: pg.url("twice"), dir: join(dir, "twice"), label: "manual" });
  await pg.query("INSERT INTO big VALUES (-1, 'only in the original')", [], "twice");
  // The first restore's pg_restore waits for the gate: it holds the restore's lock for as long as the
  // second one tries it (2 s), whatever the speed of the machine.
  const gate = join(dir, "twice-gate");
  const bin = standinPgBin(join(dir, "twice-bin"), {
    pg_restore: `while [ ! -e "${gate}" ]; do sleep 0.05; done\nexec "${PG_BIN}/pg_restore" "$@"`,
  });
  const first = spawn(BIN, ["backup", "restore", r.file, "--yes", "--database-url", pg.url("twice")], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, PG_BIN: bin },
  });
  let out = "";
  first.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => first.on("close", (code) => resolve(code)));
  try {
    await until("the first restore to hold its lock", async () => {
      const [{ n }] = await pg.query<{ n: number }>(
        // A bigint key's low 32 bits are the lock's objid (the deploy lock is taken first, for a moment).
        "SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND granted AND objid::bigint = (hashtext('safe-deploy:restore:twice')::bigint & 4294967295)",
      );
      return n > 0;
    });
    await assert.rejects(restoreBackup(r.file, { databaseUrl: pg.url("twice") }), (e: Error) => {
      assert.ok(e instanceof CannotRunError, String(e));
      assert.match(e.message, /another restore of database "twice" is running right now/);
      return true;
    });
  } finally {
    writeFileSync(gate, "");
  }
  assert.equal(await exited, 0, out);
  const previous = /the previous database is kept as "([^"]+)"/.exec(out)?.[1];
  assert.ok(previous, out);
  const [{ n }] = await pg.query<{ n: number }>(
    "SELECT count(*)::int AS n FROM big WHERE g = -1",
    [],
    previous,
  );
  assert.equal(n, 1, "the database named as the previous one is the original");
  assert.equal(
    (await databases()).filter((d) => d.startsWith("twice_before_restore_")).length,
    1,
    "one restore happened",
  );
});

test("a role that may not create databases: restore and restore test say to grant CREATEDB, nothing changed", async () => {
  await pg.query("CREATE ROLE plain_app LOGIN PASSWORD 'plain-Pa55'");
  await pg.query("CREATE DATABASE plain OWNER plain_app");
  await pg.query(
    "CREATE TABLE t (id int); INSERT INTO t SELECT generate_series(1, 20); ALTER TABLE t OWNER TO plain_app",
    [],
    "plain",
  );
  const r = await createBackup({ databaseUrl: pg.url("plain"), dir: join(dir, "plain"), label: "manual" });
  const asApp = `postgres://plain_app:plain-Pa55@${pg.host}:${pg.port}/plain`;
  const before = await databases();
  for (const run of [
    () => restoreBackup(r.file, { databaseUrl: asApp, safetyDir: join(dir, "plain-safety") }),
    () => verifyBackup(r.file, { restoreTest: true, databaseUrl: asApp }),
  ]) {
    await assert.rejects(run(), (e: Error) => {
      assert.ok(e instanceof CannotRunError, String(e));
      assert.match(e.message, /role "plain_app" may not create databases.*`ALTER ROLE "plain_app" CREATEDB`/);
      assert.ok(!e.message.includes("plain-Pa55"));
      return true;
    });
  }
  assert.deepEqual(await databases(), before);
});
