// A restore over the live database never swaps in a copy that does not match, always has its safety
// backup, and always gives the database its connections back (issue 22, mutation testing of
// src/core/backup/restore.ts). One small server, in process. psql runs through a stand-in PG_BIN that
// logs the SQL it is given and, when asked, fails the swap half-way (after connections were refused:
// its `BEGIN;` line becomes an error).
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client } from "pg";
import { withEnv } from "../../helpers/env";
import { PG_BIN, startPostgres, type TestPostgres } from "../../helpers/postgres";
import { createBackup, restoreBackup, type BackupResult } from "../../../src/core/backup";
import { previousName } from "../../../src/core/backup/restore";
import { CannotRunError, CheckFailedError } from "../../../src/core/errors";

let pg: TestPostgres;
let dir: string;
let bin: string;
let log: string;
let backup: BackupResult;
const NOW = new Date("2026-11-23T03:45:00Z");

before(async () => {
  pg = await startPostgres();
  dir = mkdtempSync(join(tmpdir(), "sd-restore-edges-"));
  await pg.query("CREATE ROLE app LOGIN PASSWORD 'app-pw'");
  await pg.query("CREATE DATABASE shop OWNER app CONNECTION LIMIT 7");
  await pg.query(
    "CREATE TABLE items (id int PRIMARY KEY, name text); INSERT INTO items SELECT g, 'n' || g FROM generate_series(1, 20) g; ALTER TABLE items OWNER TO app",
    [],
    "shop",
  );
  backup = await createBackup({ databaseUrl: pg.url("shop"), dir: join(dir, "b"), label: "good" });
  // psql through a script: logs every SQL text, and with SD_TEST_FAIL_SWAP set turns the swap's BEGIN
  // into an error, so the swap fails after ALLOW_CONNECTIONS false already ran.
  bin = join(dir, "bin");
  log = join(dir, "psql.log");
  mkdirSync(bin);
  for (const t of ["pg_dump", "pg_restore"]) symlinkSync(join(PG_BIN, t), join(bin, t));
  writeFileSync(
    join(bin, "psql"),
    // Streamed line by line: a psql session (the restore's lock) keeps its input open.
    `#!/bin/sh\nif [ -n "$SD_TEST_FAIL_SWAP" ]; then f='s/^BEGIN;$/SELECT 1\\/0;/'; else f=''; fi\n` +
      `tee -a "${log}" | sed -u "$f" | "${PG_BIN}/psql" "$@"\n`,
  );
  chmodSync(join(bin, "psql"), 0o755);
});
after(async () => {
  await pg?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const databases = async () =>
  (await pg.query<{ datname: string }>("SELECT datname FROM pg_database ORDER BY 1")).map((r) => r.datname);
const dbProps = async (db: string) =>
  (
    await pg.query<{ l: number; a: boolean }>(
      "SELECT datconnlimit AS l, datallowconn AS a FROM pg_database WHERE datname = $1",
      [db],
    )
  )[0];
const marker = async () =>
  (await pg.query<{ n: string }>("SELECT count(*) AS n FROM items WHERE id = 999", [], "shop"))[0].n;

/** A client of the app connected to `shop`; `ended()` says whether the server cut it off. */
async function appClient(name: string) {
  const c = new Client({ connectionString: pg.url("shop"), application_name: name });
  let ended = false;
  c.on("error", () => (ended = true));
  c.on("end", () => (ended = true));
  await c.connect();
  return { ended: () => ended, close: () => c.end().catch(() => {}) };
}

/** Nothing changed: the live database has its marker row, its limit, and takes connections; no copy left. */
async function untouched(): Promise<void> {
  assert.equal(await marker(), "1", "the live database is the one before the restore");
  assert.deepEqual(await dbProps("shop"), { l: 7, a: true }, "connections allowed again, limit as it was");
  const names = await databases();
  assert.ok(!names.some((n) => /_restoring_|_before_restore_/.test(n)), names.join(", "));
}

/** The backup under another name, its manifest changed by `edit`. */
function tampered(name: string, edit: (m: Record<string, unknown>) => void): string {
  const d = join(dir, name);
  mkdirSync(d, { recursive: true });
  const file = join(d, backup.manifest.file);
  copyFileSync(backup.file, file);
  const m = JSON.parse(readFileSync(backup.manifestFile, "utf8")) as Record<string, unknown>;
  edit(m);
  writeFileSync(`${file}.json`, JSON.stringify(m));
  return file;
}

test("a copy whose row counts differ from its manifest is never swapped in; limit and connections back; the safety backup kept", async () => {
  await pg.query("INSERT INTO items VALUES (999, 'after the backup')", [], "shop");
  const file = tampered("counts", (m) => {
    (m.rowCounts as Record<string, number>)["public.items"] = 21;
    (m.rowCounts as Record<string, number>)["public.ghost"] = 3;
  });
  const app = await appClient("app-before");
  const safetyDir = join(dir, "safety-counts");
  await assert.rejects(restoreBackup(file, { databaseUrl: pg.url("shop"), safetyDir }), (e: Error) => {
    assert.ok(e instanceof CheckFailedError, e.message);
    assert.equal(
      e.message,
      `restored copy of ${backup.manifest.file} differs from its manifest:\n  public.ghost: backup had 3, restore has no table\n  public.items: backup had 21, restore has 20`,
    );
    return true;
  });
  await untouched();
  assert.ok(app.ended(), "the app's session was ended before the safety backup");
  await app.close();
  const safety = readFileSync(
    join(
      safetyDir,
      (await import("node:fs")).readdirSync(safetyDir).find((n) => n.endsWith(".zst"))!,
    ),
  );
  assert.ok(safety.length > 0, "the safety backup was taken and kept");
});

test("a good copy is swapped in: the old database kept under its dated name, the safety backup, the ended sessions, the limit on both", async () => {
  await pg.query("COMMENT ON DATABASE shop IS 'the shop'; ALTER DATABASE shop SET work_mem = '8MB'");
  const app = await appClient("app-live");
  const safetyDir = join(dir, "safety-good");
  const told: string[] = [];
  let progressed = 0;
  const steps: string[] = [];
  const r = await restoreBackup(backup.file, {
    databaseUrl: pg.url("shop"),
    safetyDir,
    now: NOW,
    onSafetyStart: (d) => told.push(`start ${d}`),
    onProgress: (b) => {
      if (!progressed) told.push("progress");
      progressed = b;
    },
    onStep: (s) => steps.push(s),
  });
  assert.equal(r.database, "shop");
  assert.equal(r.previousDatabase, previousName("shop", NOW));
  assert.equal(r.previousDatabase, "shop_before_restore_20261123034500");
  assert.deepEqual(told, [`start ${safetyDir}`, "progress"]);
  assert.ok(progressed > 0);
  assert.match(r.safety?.file ?? "", new RegExp(`^${safetyDir}/backup_\\d{8}_\\d{6}_safety\\.pgdump\\.zst$`));
  assert.equal(r.safety?.manifest.label, "safety");
  assert.equal(r.safety?.manifest.compression, "zstd");
  assert.equal(r.safety?.manifest.rowCounts["public.items"], 21);
  assert.deepEqual(
    r.endedSessions?.map((s) => [s.application, s.user]),
    [["app-live", "tester"]],
  );
  assert.equal(r.lateSessions, undefined);
  assert.ok(app.ended());
  await app.close();
  assert.equal(await marker(), "0", "the live database is the backup's");
  const kept = await pg.query<{ n: string }>("SELECT count(*) AS n FROM items", [], r.previousDatabase);
  assert.equal(kept[0].n, "21", "the old database, with its last write, kept");
  assert.deepEqual(await dbProps("shop"), { l: 7, a: true });
  assert.deepEqual(await dbProps(r.previousDatabase!), { l: 7, a: true });
  assert.ok(
    steps.some((s) => s.startsWith("restore: ")),
    steps.join("; "),
  );
  const carried = await pg.query<{ c: string; s: string[] }>(
    `SELECT shobj_description(d.oid, 'pg_database') AS c, (SELECT setconfig FROM pg_db_role_setting WHERE setdatabase = d.oid AND setrole = 0) AS s
       FROM pg_database d WHERE datname = 'shop'`,
  );
  assert.deepEqual(
    carried,
    [{ c: "the shop", s: ["work_mem=8MB"] }],
    "comment and settings carried to the copy",
  );
  // Put the live database back as the next tests expect it: the marker row in, the kept copy gone.
  await pg.query(`DROP DATABASE "${r.previousDatabase}"`);
  await pg.query("INSERT INTO items VALUES (999, 'after the backup')", [], "shop");
});

test("a swap that fails half-way re-opens the database and gives its limit back; the copy dropped", async () => {
  await withEnv({ PG_BIN: bin, SD_TEST_FAIL_SWAP: "1" }, async () => {
    await assert.rejects(
      restoreBackup(backup.file, { databaseUrl: pg.url("shop"), safetyDir: join(dir, "safety-swap") }),
      (e: Error) => {
        assert.ok(e instanceof CannotRunError, e.message);
        assert.match(e.message, /^swapping the restored database in failed: .*division by zero/s);
        return true;
      },
    );
  });
  await untouched();
});

test("a safety backup given (a rollback's) is verified and used, none taken; a damaged one stops the restore before anything changes", async () => {
  const given = await createBackup({ databaseUrl: pg.url("shop"), dir: join(dir, "given"), label: "given" });
  const bad = join(dir, "given-bad");
  mkdirSync(bad);
  const badFile = join(bad, given.manifest.file);
  const bytes = readFileSync(given.file);
  bytes[bytes.length >> 1] ^= 0xff;
  writeFileSync(badFile, bytes);
  copyFileSync(given.manifestFile, `${badFile}.json`);
  await assert.rejects(
    restoreBackup(backup.file, {
      databaseUrl: pg.url("shop"),
      safetyFile: badFile,
      safetyDir: join(dir, "none"),
    }),
    (e: Error) => e instanceof CheckFailedError && /sha256 \w+ does not match the manifest's/.test(e.message),
  );
  await untouched();
  assert.ok(!existsSync(join(dir, "none")), "no safety backup taken");
  const during = await appClient("app-during");
  const r = await restoreBackup(backup.file, {
    databaseUrl: pg.url("shop"),
    safetyFile: given.file,
    safetyDir: join(dir, "none"),
  });
  await during.close();
  assert.deepEqual(
    r.lateSessions?.map((x) => x.application),
    ["app-during"],
    "a client connected during the restore is ended at the swap and named",
  );
  assert.equal(r.safety?.file, given.file);
  assert.equal(r.safety?.manifestFile, given.manifestFile);
  assert.deepEqual(r.safety?.manifest, given.manifest);
  assert.equal(r.endedSessions, undefined, "no sessions ended before a safety backup it did not take");
  assert.ok(!existsSync(join(dir, "none")));
  assert.equal(await marker(), "0");
  await pg.query(`DROP DATABASE "${r.previousDatabase}"`);
  await pg.query("INSERT INTO items VALUES (999, 'after the backup')", [], "shop");
});

test("beforeSwap runs on the checked copy with the writers stopped; its failure leaves the live database and drops the copy", async () => {
  const given = await createBackup({ databaseUrl: pg.url("shop"), dir: join(dir, "given2"), label: "given" });
  const app = await appClient("app-late");
  let seen: { db: string; rows: string; appEnded: boolean } | undefined;
  await assert.rejects(
    restoreBackup(backup.file, {
      databaseUrl: pg.url("shop"),
      safetyFile: given.file,
      beforeSwap: async (restored) => {
        const rows = await pg.query<{ n: string }>("SELECT count(*) AS n FROM items", [], restored.database);
        seen = { db: restored.database, rows: rows[0].n, appEnded: app.ended() };
        throw new CannotRunError("replay refused");
      },
    }),
    /^CannotRunError: replay refused$/,
  );
  assert.match(seen?.db ?? "", /^shop_restoring_[0-9a-f]{8}$/);
  assert.equal(seen?.rows, "20", "the copy is the backup's");
  assert.equal(seen?.appEnded, true, "writers were stopped before the replay");
  await app.close();
  await untouched();
});

test("a database the server does not have: created from the archive, no safety backup, no kept copy, no kept names read", async () => {
  writeFileSync(log, "");
  const r = await withEnv({ PG_BIN: bin }, () =>
    restoreBackup(backup.file, { databaseUrl: pg.url("shop_copy"), safetyDir: join(dir, "none2") }),
  );
  assert.deepEqual(r, { database: "shop_copy", safety: undefined });
  assert.ok(!existsSync(join(dir, "none2")));
  const rows = await pg.query<{ n: string }>("SELECT count(*) AS n FROM items", [], "shop_copy");
  assert.equal(rows[0].n, "20");
  const owner = await pg.query<{ o: string }>(
    "SELECT pg_get_userbyid(datdba) AS o FROM pg_database WHERE datname = 'shop_copy'",
  );
  assert.equal(owner[0].o, "app");
  const sql = readFileSync(log, "utf8");
  assert.ok(sql.includes("CREATE DATABASE"), "the log holds the restore's SQL");
  assert.ok(
    !sql.includes("FROM pg_database WHERE datname LIKE"),
    "no kept copies looked up: there is none to keep",
  );
});

test("a role that may not create databases: the step and the grant are named, nothing changed, connections back", async () => {
  const url = pg.url("shop").replace(/\/\/[^@]+@/, "//app:app-pw@");
  await assert.rejects(
    restoreBackup(backup.file, { databaseUrl: url, safetyDir: join(dir, "safety-app") }),
    (e: Error) => {
      assert.ok(e instanceof CannotRunError, e.message);
      assert.equal(
        e.message,
        'creating the database to restore into: role "app" may not create databases, and a restore or restore test first restores into a new one: grant it with `ALTER ROLE "app" CREATEDB` or use an admin\'s `--database-url`',
      );
      return true;
    },
  );
  await untouched();
});

test("Ctrl-C during beforeSwap: no swap, the live database as it was, the copy dropped, said so", async () => {
  const given = await createBackup({ databaseUrl: pg.url("shop"), dir: join(dir, "given3"), label: "given" });
  // Only the restore's own handler hears this SIGINT: the test runner's and the server helper's are set
  // aside meanwhile (emitted in process, no real signal is sent).
  const others = process.listeners("SIGINT");
  process.removeAllListeners("SIGINT");
  try {
    await assert.rejects(
      restoreBackup(backup.file, {
        databaseUrl: pg.url("shop"),
        safetyFile: given.file,
        beforeSwap: async () => {
          process.emit("SIGINT", "SIGINT");
        },
      }),
      (e: Error) => {
        assert.ok(e instanceof CannotRunError, e.message);
        assert.equal(
          e.message,
          'restore interrupted by SIGINT: database "shop" is as it was and no partly restored copy is left; run the restore again',
        );
        return true;
      },
    );
  } finally {
    for (const l of others) process.on("SIGINT", l as NodeJS.SignalsListener);
  }
  await untouched();
});
