// Issue 22, session 13: the restore test of verify.ts on one server (survivors of session 10 that the
// key's files left): the steps it tells, the step each failure names (creating the scratch database, the
// restore, looking up roles), a stop by signal half-way, a version 1 manifest's server-side sums, a
// re-dump the reader cannot follow, and a backup whose schema names no role. Stand-in tools under
// PG_BIN only where the real ones cannot show the case; the scratch database is dropped every time.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { withEnv } from "../../helpers/env";
import { standinPgBin } from "../../helpers/pg-bin";
import { PG_BIN, scratchDatabases, startPostgres, type TestPostgres } from "../../helpers/postgres";
import { deferRunnerSignalHandlers } from "../../helpers/runner-signals";
import { createBackup } from "../../../src/core/backup/create";
import { verifyBackup, type VerifyOptions } from "../../../src/core/backup/verify";
import { CannotRunError } from "../../../src/core/errors";

deferRunnerSignalHandlers();

const V1_FIXTURE = join(__dirname, "fixtures", "backup_20261206_070000_v1.pgdump.zst");

let pg: TestPostgres;
let dir: string;
let file: string;

before(async () => {
  pg = await startPostgres();
  await pg.createDatabase("shop");
  await pg.query(
    `CREATE TABLE items (id int PRIMARY KEY, name text);
     INSERT INTO items SELECT g, 'n' || g FROM generate_series(1, 20) g;
     CREATE TABLE notes (id int, body text);
     INSERT INTO notes VALUES (1, 'a');`,
    [],
    "shop",
  );
  await pg.query(`CREATE ROLE plain LOGIN PASSWORD 'plainpw'`);
  dir = mkdtempSync(join(tmpdir(), "sd-verify-restore-"));
  file = (await createBackup({ databaseUrl: pg.url("shop"), dir: join(dir, "b") })).file;
});
after(async () => {
  await pg?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** How many scratch databases a restore test left on the server. */
const scratchLeft = async () => (await scratchDatabases(pg)).length;

/** verifyBackup's restore test on this server, with the tools under `bin` (default: the real ones). */
const restoreTest = (f: string, o: VerifyOptions = {}, bin = PG_BIN) =>
  withEnv({ PG_BIN: bin }, () => verifyBackup(f, { restoreTest: true, databaseUrl: pg.url(), ...o }));

/** The real pg_restore, but `-d` (the restore test's restore) runs `onRestore` instead. */
const restoreStandin = (name: string, onRestore: string) =>
  standinPgBin(join(dir, name), {
    pg_restore: `case "$*" in *" -d "*) cat > /dev/null\n${onRestore};; esac\nexec "${PG_BIN}/pg_restore" "$@"`,
  });

test("the steps a restore test tells, and a backup whose schema names no role: none missing", async () => {
  const steps: string[] = [];
  // pg_restore's schema listing without owners (as of a dump made with --no-owner): no role to look up.
  const bin = standinPgBin(join(dir, "no-owners"), {
    pg_restore: `case "$1" in -s) cat > /dev/null; exit 0;; esac\nexec "${PG_BIN}/pg_restore" "$@"`,
  });
  const v = await restoreTest(file, { onStep: (s) => steps.push(s) }, bin);
  assert.deepEqual(v.missingRoles, []);
  assert.deepEqual(v.restoredRowCounts, { "public.items": 20, "public.notes": 1 });
  assert.equal(steps.length, 3, steps.join("\n"));
  assert.match(steps[0], /^reading every block of the archive \(\d+ bytes\)$/);
  assert.match(steps[1], /^restoring into the scratch database safe_deploy_verify_[0-9a-f]{8}$/);
  assert.equal(steps[2], "comparing 2 tables with the backup's manifest");
  assert.equal(await scratchLeft(), 0);
});

test("each failure names its step: creating the scratch database, the restore, looking up the roles", async () => {
  await assert.rejects(
    withEnv({ PG_BIN }, () =>
      verifyBackup(file, {
        restoreTest: true,
        databaseUrl: pg.url().replace(/\/\/[^@]*@/, "//plain:plainpw@"),
      }),
    ),
    (e: Error) =>
      e instanceof CannotRunError &&
      e.message.startsWith('creating the scratch database: role "plain" may not create databases'),
  );
  await assert.rejects(
    restoreTest(
      file,
      {},
      restoreStandin("restore-fails", 'echo "pg_restore: error: stand-in out of memory" >&2; exit 1'),
    ),
    (e: Error) =>
      e instanceof CannotRunError &&
      e.message === "restore test failed: pg_restore: error: stand-in out of memory",
  );
  const psql = standinPgBin(join(dir, "roles-fail"), {
    psql:
      `case "$*" in *" -c "*) exec "${PG_BIN}/psql" "$@";; esac\nsql=$(cat)\n` +
      `case "$sql" in *pg_roles*) echo "ERROR:  stand-in refused" >&2; exit 1;; esac\n` +
      `printf "%s\\n" "$sql" | exec "${PG_BIN}/psql" "$@"`,
  });
  await assert.rejects(
    restoreTest(file, {}, psql),
    (e: Error) =>
      e instanceof CannotRunError &&
      e.message === "looking up the backup's roles failed: ERROR:  stand-in refused",
  );
  assert.equal(await scratchLeft(), 0);
});

test("a signal during the restore test: said so, the scratch database dropped", async () => {
  // pg_restore signals this process, and fails once this process has heard it (as a tool in the same
  // process group, stopped by the same Ctrl-C, would).
  const heard = join(dir, "heard");
  process.once("SIGTERM", () => writeFileSync(heard, ""));
  const bin = restoreStandin(
    "signalled",
    `kill -TERM $PPID\ni=0; while [ ! -e "${heard}" ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i+1)); done\nexit 1`,
  );
  await assert.rejects(
    restoreTest(file, {}, bin),
    (e: Error) =>
      e instanceof CannotRunError &&
      e.message ===
        "restore test interrupted by SIGTERM: the scratch database was dropped; " +
          `${file.split("/").pop()} is not verified`,
  );
  assert.ok(existsSync(heard));
  assert.equal(await scratchLeft(), 0);
});

test("a version 1 manifest is checked against the server's sums; a re-dump the reader cannot follow is told", async () => {
  const v1 = await restoreTest(V1_FIXTURE);
  assert.equal(v1.checksummedTables, 3);
  // A pg_dump that compresses what it is asked: the restored tables cannot be summed from its archive.
  const z1 = standinPgBin(join(dir, "z1"), { pg_dump: `exec "${PG_BIN}/pg_dump" "$@" -Z1` });
  await assert.rejects(
    restoreTest(file, {}, z1),
    (e: Error) =>
      e instanceof CannotRunError &&
      /^cannot checksum the restored tables: the archive its pg_dump wrote could not be read \(.+\); run the check with the pg_dump the backup was made with \(`--run-in container`\)$/.test(
        e.message,
      ),
  );
  assert.equal(await scratchLeft(), 0);
});
