// The way into a restore (issue 22, mutation testing of src/core/backup/restore.ts: `listSessions`,
// `restoreBackup`'s lock, `readArchiveDatabase`, the name the old database is kept under): the sessions
// the confirmation prompt lists, a second restore of one database refused while the first holds its
// lock (and the lock given back after), a backup whose owner role the server lacks refused before
// anything is created, an archive whose `-C` output names no owner, a kept name already taken, each early
// step's failure named, the database named postgres restored over (its admin session is template1's).
// One small server, in process; stand-ins under PG_BIN: pg_restore prints nothing for `-C` with
// SD_TEST_C_EMPTY set, psql passes its SQL through `sed "$SD_TEST_SED"` (a test turns one statement
// into `SELECT 1/0;`).
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, rmSync } from "node:fs";
import { basename, join } from "node:path";
import { Client } from "pg";
import { withEnv } from "../../helpers/env";
import { killLeftPsqlSessions, until } from "../../helpers/bounded";
import { sedPsqlBin, shopWithBackup } from "../../helpers/pg-standins";
import { PG_BIN, type TestPostgres } from "../../helpers/postgres";
import { createBackup, restoreBackup, type BackupResult } from "../../../src/core/backup";
import { listSessions, previousName } from "../../../src/core/backup/restore";
import { CannotRunError } from "../../../src/core/errors";

let pg: TestPostgres;
let dir: string;
let bin: string;
let backup: BackupResult;
const NOW = new Date("2026-11-23T03:45:00Z");

before(async () => {
  ({ pg, dir, backup } = await shopWithBackup("sd-restore-entry-", "entry"));
  bin = sedPsqlBin(join(dir, "bin"), {
    pg_restore:
      `if [ -n "$SD_TEST_C_EMPTY" ]; then case " $* " in *" -C "*) cat >/dev/null; exit 0;; esac; fi\n` +
      `exec "${PG_BIN}/pg_restore" "$@"\n`,
  });
});
after(async () => {
  await pg?.close();
  killLeftPsqlSessions();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const databases = async () =>
  (await pg.query<{ datname: string }>("SELECT datname FROM pg_database ORDER BY 1")).map((r) => r.datname);

/** A client connected to `db` (over TCP, or the server's Unix socket), with its backend's pid. */
async function client(db: string, opts: { application?: string; socket?: boolean } = {}) {
  const c = new Client({
    ...(opts.socket
      ? { host: pg.dataDir, port: pg.port, user: pg.user, password: pg.password, database: db }
      : { connectionString: pg.url(db) }),
    ...(opts.application === undefined ? {} : { application_name: opts.application }),
  });
  c.on("error", () => {});
  await c.connect();
  const [{ pid }] = (await c.query<{ pid: number }>("SELECT pg_backend_pid() AS pid")).rows;
  return { pid, end: () => c.end().catch(() => {}) };
}

test("listSessions: every client of the database, by pid, with its application, user and address; none of another database", async () => {
  assert.deepEqual(await listSessions(pg.url("shop")), [], "nobody connected");
  const clients = [
    await client("shop", { application: "web" }),
    await client("shop", { application: "", socket: true }),
    await client("shop", { application: "worker" }),
    await client("postgres", { application: "elsewhere" }),
  ];
  try {
    const want = [
      { pid: clients[0].pid, application: "web", user: "tester", client: "127.0.0.1" },
      { pid: clients[1].pid, application: "", user: "tester", client: "a local socket" },
      { pid: clients[2].pid, application: "worker", user: "tester", client: "127.0.0.1" },
    ].sort((a, b) => a.pid - b.pid);
    assert.deepEqual(await listSessions(pg.url("shop")), want);
    assert.deepEqual(await listSessions(pg.url("shop"), { runIn: "local" }), want);
  } finally {
    for (const c of clients) await c.end();
  }
});

test("a second restore of the database while another holds its lock: refused by name, nothing done; the lock given back after a restore", async () => {
  const key = "safe-deploy:restore:shop";
  const holder = new Client({ connectionString: pg.url("postgres") });
  await holder.connect();
  try {
    await holder.query("SELECT pg_advisory_lock(hashtext($1))", [key]);
    const before = await databases();
    await assert.rejects(
      restoreBackup(backup.file, { databaseUrl: pg.url("shop"), safetyDir: join(dir, "refused"), now: NOW }),
      (e: Error) => {
        assert.ok(e instanceof CannotRunError, `${e.constructor.name}: ${e.message}`);
        assert.equal(
          e.message,
          'another restore of database "shop" is running right now; wait for it to finish, check what it did, then restore again if still needed',
        );
        return true;
      },
    );
    assert.deepEqual(await databases(), before);
    await holder.query("SELECT pg_advisory_unlock(hashtext($1))", [key]);

    const web = await client("shop", { application: "web" });
    const r = await restoreBackup(backup.file, {
      databaseUrl: pg.url("shop"),
      safetyDir: join(dir, "given-back"),
      now: NOW,
    }).finally(web.end);
    assert.deepEqual(
      r.endedSessions,
      [{ pid: web.pid, application: "web", user: "tester", client: "127.0.0.1" }],
      "the client connected before the safety backup, ended and named",
    );
    // Its psql session ends as the restore returns; the server drops the lock with the backend.
    await until("the restore's lock to be released", async () => {
      const [{ free }] = (
        await holder.query<{ free: boolean }>("SELECT pg_try_advisory_lock(hashtext($1)) AS free", [key])
      ).rows;
      return free;
    });
    await pg.query(`DROP DATABASE "${r.previousDatabase}"`);
  } finally {
    await holder.end().catch(() => {});
  }
});

test("kept names already taken by earlier restores in that second: the next free second, the old database kept under it", async () => {
  const first = previousName("shop", NOW);
  await pg.query(`CREATE DATABASE "${first}"`);
  await pg.query(`CREATE DATABASE "${previousName("shop", new Date(NOW.getTime() + 1000))}"`);
  const r = await restoreBackup(backup.file, {
    databaseUrl: pg.url("shop"),
    safetyDir: join(dir, "next"),
    now: NOW,
  });
  assert.equal(r.previousDatabase, "shop_before_restore_20261123034502");
  const [{ n }] = await pg.query<{ n: string }>("SELECT count(*) AS n FROM t", [], r.previousDatabase);
  assert.equal(n, "10", "the database as it was, under the third name");
  for (const d of await databases())
    if (d.startsWith("shop_before_restore_")) await pg.query(`DROP DATABASE "${d}"`);
});

test("a new database whose archived owner the server lacks: the role, the file and the fix named, nothing created", async () => {
  const role = 'gone "owner"';
  await pg.query(`CREATE ROLE "gone ""owner""" LOGIN`);
  await pg.query(`CREATE DATABASE orphan OWNER "gone ""owner"""`);
  const b = await createBackup({ databaseUrl: pg.url("orphan"), dir: join(dir, "orphan"), label: "orphan" });
  await pg.query("DROP DATABASE orphan");
  await pg.query(`DROP ROLE "gone ""owner"""`);
  const before = await databases();
  await assert.rejects(restoreBackup(b.file, { databaseUrl: pg.url("orphan") }), (e: Error) => {
    assert.ok(e instanceof CannotRunError, `${e.constructor.name}: ${e.message}`);
    assert.equal(
      e.message,
      `role "${role}", owner of database "orphan" in ${basename(b.file)}, does not exist on this server ` +
        `(roles live outside a database's backup): create it, e.g. \`CREATE ROLE "gone ""owner""" LOGIN PASSWORD '...'\`, ` +
        "and run the restore again; nothing was changed",
    );
    return true;
  });
  assert.deepEqual(await databases(), before);
});

test("an archive whose -C output names no owner: the new database is created plainly, owned by the restoring role", async () => {
  const r = await withEnv({ PG_BIN: bin, SD_TEST_C_EMPTY: "1" }, () =>
    restoreBackup(backup.file, { databaseUrl: pg.url("shop_plain") }),
  );
  assert.deepEqual(r, { database: "shop_plain", safety: undefined });
  const [p] = await pg.query<{ o: string }>(
    "SELECT pg_get_userbyid(datdba) AS o FROM pg_database WHERE datname = 'shop_plain'",
  );
  assert.equal(p.o, "tester");
  const [{ n }] = await pg.query<{ n: string }>("SELECT count(*) AS n FROM t", [], "shop_plain");
  assert.equal(n, "10");
  await pg.query("DROP DATABASE shop_plain");
});

test("each early step that fails is named, and nothing is changed", async () => {
  const steps: [string, string, string][] = [
    [
      "s/^DO .. BEGIN IF .SELECT rolsuper.*/SELECT 1\\/0;/",
      "shop",
      "ending the database's sessions before the safety backup",
    ],
    // After its DO set the limit to 0: the limit must be put back all the same.
    [
      "s/^SELECT 'SESSIONS:'.*/SELECT 1\\/0;/",
      "shop",
      "ending the database's sessions before the safety backup",
    ],
    ["s/^SELECT 'PROPS:'.*/SELECT 1\\/0;/", "shop", "reading the database's properties"],
    ["s/^SELECT 'ROLE:'.*/SELECT 1\\/0;/", "shop_new", "looking up the database's owner"],
  ];
  for (const [sed, db, what] of steps) {
    const before = await databases();
    await assert.rejects(
      withEnv({ PG_BIN: bin, SD_TEST_SED: sed }, () =>
        restoreBackup(backup.file, { databaseUrl: pg.url(db), safetyDir: join(dir, "early"), now: NOW }),
      ),
      (e: Error) => {
        assert.ok(e instanceof CannotRunError, `${e.constructor.name}: ${e.message}`);
        assert.match(e.message, new RegExp(`^${what} failed: .*division by zero`, "s"));
        return true;
      },
    );
    assert.deepEqual(await databases(), before, what);
    const [{ l }] = await pg.query<{ l: number }>(
      "SELECT datconnlimit AS l FROM pg_database WHERE datname = 'shop'",
    );
    assert.equal(l, -1, `the connection limit as it was after "${what}" failed`);
  }
  await assert.rejects(
    withEnv({ PG_BIN: bin, SD_TEST_SED: "s/^SELECT 'SESSIONS:'.*/SELECT 1\\/0;/" }, () =>
      listSessions(pg.url("shop")),
    ),
    (e: Error) => /^listing the database's sessions failed: .*division by zero/s.test(e.message),
  );
  const [{ l }] = await pg.query<{ l: number }>(
    "SELECT datconnlimit AS l FROM pg_database WHERE datname = 'shop'",
  );
  assert.equal(l, -1, "the connection limit as it was");
});

test("the kept databases' names cannot be read: said so, and the safety backup begun alongside has ended by then", async () => {
  const safetyDir = join(dir, "names-unread");
  await assert.rejects(
    withEnv(
      { PG_BIN: bin, SD_TEST_SED: "s/^SELECT datname FROM pg_database WHERE datname LIKE .*/SELECT 1\\/0;/" },
      () => restoreBackup(backup.file, { databaseUrl: pg.url("shop"), safetyDir, now: NOW }),
    ),
    (e: Error) => /^reading the kept databases' names failed: .*division by zero/s.test(e.message),
  );
  // Returned before the safety dump ended, the restore would leave a pg_dump running and a half-written file.
  const files = readdirSync(safetyDir);
  const dump = files.find((f) => f.endsWith(".pgdump.zst"));
  assert.ok(dump && files.includes(`${dump}.json`), `a whole safety backup: ${files.join(", ")}`);
  assert.deepEqual(
    await pg.query("SELECT pid FROM pg_stat_activity WHERE application_name = 'pg_dump'"),
    [],
    "no pg_dump left running",
  );
});

test("a database whose name holds a single quote is restored over, the old one kept", async () => {
  await pg.query(`CREATE DATABASE "o'shop"`);
  await pg.query("CREATE TABLE t (id int); INSERT INTO t SELECT generate_series(1, 3)", [], "o'shop");
  const b = await createBackup({ databaseUrl: pg.url("o'shop"), dir: join(dir, "quote"), label: "quote" });
  await pg.query("INSERT INTO t VALUES (4)", [], "o'shop");
  const r = await restoreBackup(b.file, { databaseUrl: pg.url("o'shop"), now: NOW });
  assert.equal(r.previousDatabase, previousName("o'shop", NOW));
  const [now] = await pg.query<{ n: string }>("SELECT count(*) AS n FROM t", [], "o'shop");
  assert.equal(now.n, "3", "the backup's rows are live");
  const [kept] = await pg.query<{ n: string }>("SELECT count(*) AS n FROM t", [], r.previousDatabase);
  assert.equal(kept.n, "4", "the old database kept");
  await pg.query(`DROP DATABASE "${r.previousDatabase}"`);
  await pg.query(`DROP DATABASE "o'shop"`);
});

test("the database named postgres is restored over: the restore works from template1, the old one kept", async () => {
  await pg.query("CREATE TABLE pg_kept (id int); INSERT INTO pg_kept VALUES (1)");
  const b = await createBackup({ databaseUrl: pg.url("postgres"), dir: join(dir, "postgres"), label: "pg" });
  await pg.query("INSERT INTO pg_kept VALUES (2)");
  const r = await restoreBackup(b.file, { databaseUrl: pg.url("postgres"), now: NOW });
  assert.equal(r.previousDatabase, "postgres_before_restore_20261123034500");
  const [{ n }] = await pg.query<{ n: string }>("SELECT count(*) AS n FROM pg_kept");
  assert.equal(n, "1", "the backup's rows are live");
  const [{ k }] = await pg.query<{ k: string }>("SELECT count(*) AS k FROM pg_kept", [], r.previousDatabase);
  assert.equal(k, "2", "the old database kept");
  await pg.query(`DROP DATABASE "${r.previousDatabase}"`);
});
