// Each step of a restore that can fail names itself and leaves nothing behind; a database is restored
// whatever its name's length; a client that slipped in after the safety backup began is named at the
// swap; a new database keeps the archive's encoding and locale (issue 22, the survivors of the mutation
// run of src/core/backup/restore.ts). One small server, in process. psql and pg_restore run through
// stand-ins under PG_BIN: psql passes its SQL through `sed "$SD_TEST_SED"` (a test turns one statement
// into `SELECT 1/0;`), pg_restore with SD_TEST_C_FAIL set prints its `-C` output and then fails, with SD_TEST_PGR_LOG set logs
// its arguments, with SD_TEST_C_OUT set prints that instead of its `-C` output.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { withEnv } from "../../helpers/env";
import { killLeftPsqlSessions } from "../../helpers/bounded";
import { GATED_PG_DUMP, sedPsqlBin } from "../../helpers/pg-standins";
import { PG_BIN, startPostgres, type TestPostgres } from "../../helpers/postgres";
import { createBackup, restoreBackup, type BackupResult } from "../../../src/core/backup";
import { previousName } from "../../../src/core/backup/restore";
import { CannotRunError } from "../../../src/core/errors";

let pg: TestPostgres;
let dir: string;
let bin: string;
let backup: BackupResult;
const NOW = new Date("2026-11-23T03:45:00Z");
/** 63 bytes: PostgreSQL's longest database name. */
const LONG = "a_shop_whose_database_name_takes_all_sixty_three_bytes_allowed_";

before(async () => {
  pg = await startPostgres();
  dir = mkdtempSync(join(tmpdir(), "sd-restore-steps-"));
  await pg.query("CREATE ROLE app LOGIN PASSWORD 'app-pw'");
  await pg.query("CREATE DATABASE shop OWNER app CONNECTION LIMIT 7");
  await pg.query("COMMENT ON DATABASE shop IS 'the shop'");
  await pg.query(
    "CREATE TABLE items (id int PRIMARY KEY, name text); INSERT INTO items SELECT g, 'n' || g FROM generate_series(1, 20) g; ALTER TABLE items OWNER TO app",
    [],
    "shop",
  );
  backup = await createBackup({ databaseUrl: pg.url("shop"), dir: join(dir, "b"), label: "good" });
  bin = sedPsqlBin(join(dir, "bin"), {
    pg_dump: GATED_PG_DUMP,
    pg_restore:
      `if [ -n "$SD_TEST_PGR_LOG" ]; then echo "$*" >> "$SD_TEST_PGR_LOG"; fi\ncase " $* " in *" -C "*) if [ -n "$SD_TEST_C_OUT" ]; then cat >/dev/null; printf '%s\\n' "$SD_TEST_C_OUT"; exit 0; fi; if [ -n "$SD_TEST_C_FAIL" ]; then "${PG_BIN}/pg_restore" "$@"; exit 1; fi;; esac\n` +
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

/** The live `shop` as before: its 20 rows, its limit, open to clients; no copy or kept database left. */
async function untouched(): Promise<void> {
  const [n] = await pg.query<{ n: string }>("SELECT count(*) AS n FROM items", [], "shop");
  assert.equal(n.n, "20");
  const [p] = await pg.query<{ l: number; a: boolean }>(
    "SELECT datconnlimit AS l, datallowconn AS a FROM pg_database WHERE datname = 'shop'",
  );
  assert.deepEqual(p, { l: 7, a: true }, "connections allowed again, limit as it was");
  const names = await databases();
  assert.ok(!names.some((x) => /_restoring_|_before_restore_|^shop_new$/.test(x)), names.join(", "));
}

/** A restore through the stand-ins, with `sed` applied to every SQL text psql is given. */
const restoreWith = (sed: string, url: string, safetyDir = join(dir, "safety")) =>
  withEnv({ PG_BIN: bin, SD_TEST_SED: sed }, () =>
    restoreBackup(backup.file, { databaseUrl: url, safetyDir, now: NOW }),
  );

const failing = (what: string) => (e: Error) => {
  assert.ok(e instanceof CannotRunError, e.message);
  assert.match(e.message, new RegExp(`^${what} failed: .*division by zero`, "s"));
  return true;
};

test("a new database whose archived owner, comment or grants cannot be given: said so, nothing left", async () => {
  await assert.rejects(
    restoreWith("s/^COMMENT ON DATABASE .*/SELECT 1\\/0;/", pg.url("shop_new")),
    failing("giving the restored database the owner, comment, grants and settings it had"),
  );
  await untouched();
});

test("a new database that cannot be given its name: the step named, the copy dropped", async () => {
  await assert.rejects(
    restoreWith("s/^ALTER DATABASE .* RENAME TO .*/SELECT 1\\/0;/", pg.url("shop_new")),
    failing('naming the restored database "shop_new"'),
  );
  await untouched();
});

test("the live database's grants and settings cannot be read: said so before the swap, nothing changed", async () => {
  await assert.rejects(
    restoreWith("s/^WITH d AS .*/SELECT 1\\/0;/", pg.url("shop")),
    failing("reading the database's grants and settings"),
  );
  await untouched();
});

test("the copy cannot be given the live database's grants and settings: said so before the swap, nothing changed", async () => {
  await assert.rejects(
    restoreWith("s/^COMMENT ON DATABASE shop_restoring_.*/SELECT 1\\/0;/", pg.url("shop")),
    failing("giving the restored copy the database's grants and settings"),
  );
  await untouched();
});

test("a database with a 63-byte name is restored over, its copy and kept names cut to fit", async () => {
  await pg.query(`CREATE DATABASE "${LONG}"`);
  await pg.query("CREATE TABLE t (id int); INSERT INTO t SELECT generate_series(1, 5)", [], LONG);
  const b = await createBackup({ databaseUrl: pg.url(LONG), dir: join(dir, "long"), label: "long" });
  await pg.query("INSERT INTO t VALUES (6)", [], LONG);
  const r = await restoreBackup(b.file, { databaseUrl: pg.url(LONG), now: NOW });
  assert.equal(r.previousDatabase, previousName(LONG, NOW));
  assert.equal(r.previousDatabase?.length, 63);
  const [now] = await pg.query<{ n: string }>("SELECT count(*) AS n FROM t", [], LONG);
  assert.equal(now.n, "5", "the backup's rows are live");
  const [kept] = await pg.query<{ n: string }>("SELECT count(*) AS n FROM t", [], r.previousDatabase);
  assert.equal(kept.n, "6", "the old database kept");
  assert.ok(!(await databases()).some((x) => x.includes("_restoring_")));
  await pg.query(`DROP DATABASE "${r.previousDatabase}"`);
});

test("a superuser client that connects after the safety backup began is ended at the swap and named, also with beforeSwap", async () => {
  let late: number | undefined;
  let atReplay: string[] = [];
  try {
    const r = await restoreBackup(backup.file, {
      databaseUrl: pg.url("shop"),
      safetyDir: join(dir, "safety-late"),
      now: NOW,
      // Synchronous: the session is connected before anything else of the restore runs. Connection
      // limit 0 does not hold a superuser back.
      onSafetyStart: () => {
        const out = execFileSync(
          "sh",
          [
            "-c",
            `PGAPPNAME=late-admin "${PG_BIN}/psql" -X "$URL" -c "SELECT pg_sleep(60)" </dev/null >/dev/null 2>&1 &
             echo $!
             for i in $(seq 1 400); do
               [ "$("${PG_BIN}/psql" -X -At "$ADMIN" -c "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'late-admin'")" = 1 ] && exit 0
               sleep 0.05
             done
             exit 1`,
          ],
          { env: { ...process.env, URL: pg.url("shop"), ADMIN: pg.url("postgres") }, encoding: "utf8" },
        );
        late = Number(out.trim());
      },
      beforeSwap: async () => {
        atReplay = (
          await pg.query<{ a: string }>(
            "SELECT application_name AS a FROM pg_stat_activity WHERE datname = 'shop' AND application_name = 'late-admin'",
          )
        ).map((x) => x.a);
      },
    });
    assert.deepEqual(atReplay, ["late-admin"], "still connected during the replay");
    assert.deepEqual(
      r.lateSessions?.map((s) => [s.application, s.user]),
      [["late-admin", "tester"]],
      "named as a late session: what it wrote is only in the kept database",
    );
    await pg.query(`DROP DATABASE "${r.previousDatabase}"`);
  } finally {
    if (late)
      try {
        process.kill(late, "SIGKILL");
      } catch {
        // ended by the swap
      }
  }
  await untouched();
});

test("pg_restore -C fails on the archive: the new database is created plainly, owned by the restoring role", async () => {
  const r = await withEnv({ PG_BIN: bin, SD_TEST_C_FAIL: "1" }, () =>
    restoreBackup(backup.file, { databaseUrl: pg.url("shop_plain") }),
  );
  assert.deepEqual(r, { database: "shop_plain", safety: undefined });
  const [p] = await pg.query<{ o: string; c: string | null; n: string }>(
    "SELECT pg_get_userbyid(datdba) AS o, shobj_description(oid, 'pg_database') AS c, datconnlimit::text AS n FROM pg_database WHERE datname = 'shop_plain'",
  );
  assert.deepEqual(p, { o: "tester", c: null, n: "-1" }, "what -C printed before failing is not used");
  const [n] = await pg.query<{ n: string }>("SELECT count(*) AS n FROM items", [], "shop_plain");
  assert.equal(n.n, "20");
  await pg.query("DROP DATABASE shop_plain");
});

test("a new database keeps the archive's encoding and locale, not the server's defaults", async () => {
  await pg.query(
    "CREATE DATABASE legacy ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0 CONNECTION LIMIT 3",
  );
  await pg.query("CREATE TABLE t (s text); INSERT INTO t VALUES ('caf\u00e9')", [], "legacy");
  const b = await createBackup({ databaseUrl: pg.url("legacy"), dir: join(dir, "legacy"), label: "legacy" });
  await restoreBackup(b.file, { databaseUrl: pg.url("legacy_copy") });
  const [p] = await pg.query<{ e: string; c: string; l: number }>(
    "SELECT pg_encoding_to_char(encoding) AS e, datcollate AS c, datconnlimit AS l FROM pg_database WHERE datname = 'legacy_copy'",
  );
  assert.deepEqual(p, { e: "LATIN1", c: "C", l: 3 });
  const [s] = await pg.query<{ s: string }>("SELECT s FROM t", [], "legacy_copy");
  assert.equal(s.s, "caf\u00e9");
});

test("a failure while the safety backup still runs waits for it: the restore ends with the safety backup whole on disk", async () => {
  const gate = join(dir, "dump-gate");
  const safetyDir = join(dir, "safety-wait");
  let opened: NodeJS.Timeout | undefined;
  let atFailure: string[] = [];
  try {
    await assert.rejects(
      withEnv(
        { PG_BIN: bin, SD_TEST_DUMP_GATE: gate, SD_TEST_SED: "s/^CREATE DATABASE .*/SELECT 1\\/0;/" },
        () =>
          restoreBackup(backup.file, {
            databaseUrl: pg.url("shop"),
            safetyDir,
            now: NOW,
            // The dump's first bytes start the load, which fails at once; the rest of the dump comes 3 s
            // later. The restore may only end after that (on a machine too slow to fail within 3 s, a
            // restore that did not wait passes too: never the other way round).
            onSafetyStart: () => {
              opened = setTimeout(() => writeFileSync(gate, ""), 3000);
            },
          }),
      ).finally(() => (atFailure = existsSync(safetyDir) ? readdirSync(safetyDir).sort() : [])),
      failing("creating the database to restore into"),
    );
    assert.equal(atFailure.length, 2, atFailure.join(", "));
    assert.match(atFailure[0], /^backup_\d{8}_\d{6}_safety\.pgdump\.zst$/);
    assert.equal(
      atFailure[1],
      `${atFailure[0]}.json`,
      "the safety backup and its manifest, nothing half-written",
    );
  } finally {
    clearTimeout(opened);
    writeFileSync(gate, "");
  }
  await untouched();
});

test("a restore reads the backup and a given safety backup once, into the new database: no extra pass of pg_restore over either", async () => {
  const given = await createBackup({
    databaseUrl: pg.url("shop"),
    dir: join(dir, "given-once"),
    label: "given",
  });
  const log = join(dir, "pg_restore.log");
  writeFileSync(log, "");
  const r = await withEnv({ PG_BIN: bin, SD_TEST_PGR_LOG: log }, () =>
    restoreBackup(backup.file, { databaseUrl: pg.url("shop"), safetyFile: given.file, now: NOW }),
  );
  const runs = readFileSync(log, "utf8").trim().split("\n");
  // The verify's full read (issue 18: minutes on a large backup) would be a `-f /dev/null` run.
  assert.ok(!runs.some((a) => a.includes("/dev/null")), runs.join("\n"));
  assert.equal(runs.filter((a) => a.includes("--exit-on-error")).length, 1, runs.join("\n"));
  await pg.query(`DROP DATABASE "${r.previousDatabase}"`);
  await untouched();
});

test("an archive whose -C output names the owner but holds no CREATE DATABASE: the plain database is still given that owner", async () => {
  const r = await withEnv(
    { PG_BIN: bin, SD_TEST_C_OUT: "-- Name: shop; Type: DATABASE; Schema: -; Owner: app" },
    () => restoreBackup(backup.file, { databaseUrl: pg.url("shop_owned") }),
  );
  assert.deepEqual(r, { database: "shop_owned", safety: undefined });
  const [p] = await pg.query<{ o: string }>(
    "SELECT pg_get_userbyid(datdba) AS o FROM pg_database WHERE datname = 'shop_owned'",
  );
  assert.equal(p.o, "app");
  await pg.query("DROP DATABASE shop_owned");
});
