// Issue 22, session 14: the restore test of verify.ts on one server, for what Stryker's session-13 run
// left surviving: a backup whose bytea the server writes as hex (the scratch database left so), one
// in LATIN1 (re-dumped in it), manifests without an encoding or content checksums (older ones), the
// texts of lost rows and changed content with two tables each, the roles looked up together, and the
// step each late failure names (setting bytea_output, listing the backup's contents, dropping the
// scratch database). Manifests are edited beside a copy of the archive (its checksum is the archive's);
// stand-in tools under PG_BIN only to make one step fail.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { withEnv } from "../../helpers/env";
import { psqlRefusing, standinPgBin } from "../../helpers/pg-bin";
import { PG_BIN, scratchDatabases, startPostgres, type TestPostgres } from "../../helpers/postgres";
import { createBackup } from "../../../src/core/backup/create";
import type { Manifest } from "../../../src/core/backup/manifest";
import { verifyBackup } from "../../../src/core/backup/verify";
import { CannotRunError, CheckFailedError } from "../../../src/core/errors";

let pg: TestPostgres;
let dir: string;
let file: string;

before(async () => {
  pg = await startPostgres();
  await pg.query(`CREATE ROLE plain LOGIN PASSWORD 'plainpw'`);
  await pg.createDatabase("shop");
  await pg.query(
    `CREATE TABLE items (id int PRIMARY KEY, name text, data bytea);
     INSERT INTO items SELECT g, 'n' || g, decode(md5(g::text) || '00ff5c', 'hex') FROM generate_series(1, 20) g;
     CREATE TABLE notes (id int, body text);
     INSERT INTO notes VALUES (1, 'a'), (2, 'b');
     GRANT SELECT ON items TO plain;`,
    [],
    "shop",
  );
  dir = mkdtempSync(join(tmpdir(), "sd-verify-scratch-"));
  file = (await createBackup({ databaseUrl: pg.url("shop"), dir: join(dir, "b") })).file;
});
after(async () => {
  await pg?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** verifyBackup's restore test of `f` on this server, with the tools under `bin`. */
const restoreTest = (f: string, bin = PG_BIN) =>
  withEnv({ PG_BIN: bin }, () => verifyBackup(f, { restoreTest: true, databaseUrl: pg.url() }));

/** A copy of the backup in `name/` whose manifest is `edit` of the real one. */
function edited(name: string, edit: (m: Manifest) => Manifest): string {
  mkdirSync(join(dir, name));
  const copy = join(dir, name, basename(file));
  copyFileSync(file, copy);
  writeFileSync(`${copy}.json`, JSON.stringify(edit(JSON.parse(readFileSync(`${file}.json`, "utf8")))));
  return copy;
}

test("a backup whose bytea the server writes as hex: passes, every table's content compared, its two roles found", async () => {
  const v = await restoreTest(file);
  assert.equal(v.manifest.byteaOutput, undefined);
  assert.equal(v.checksummedTables, 2);
  assert.deepEqual(v.missingRoles, []);
  assert.deepEqual(await scratchDatabases(pg), []);
});

test("a LATIN1 database restored into a UTF8 scratch one: re-dumped in LATIN1, its checksums match", async () => {
  await pg.query("CREATE DATABASE latin ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0");
  await pg.query("CREATE TABLE words (w text); INSERT INTO words VALUES ('café'), ('Ærø')", [], "latin");
  const r = await createBackup({ databaseUrl: pg.url("latin"), dir: join(dir, "latin") });
  assert.equal(r.manifest.encoding, "LATIN1");
  const v = await restoreTest(r.file);
  assert.equal(v.checksummedTables, 1);
});

test("older manifests: without the archive's encoding, or without content checksums, the restore test passes", async () => {
  const noEncoding = edited("no-encoding", ({ encoding: _, ...m }) => m as Manifest);
  assert.equal((await restoreTest(noEncoding)).checksummedTables, 2);
  const noSums = edited("no-sums", ({ tableChecksums: _, ...m }) => m as Manifest);
  const v = await restoreTest(noSums);
  assert.equal(v.checksummedTables, undefined);
  assert.deepEqual(v.restoredRowCounts, { "public.items": 20, "public.notes": 2 });
});

test("two tables with other counts, then two with other content: each named on its own, in order", async () => {
  const counts = edited("counts", (m) => ({ ...m, rowCounts: { "public.notes": 3, "public.items": 21 } }));
  await assert.rejects(
    restoreTest(counts),
    (e: Error) =>
      e instanceof CheckFailedError &&
      e.message ===
        `restore test of ${basename(file)} lost rows:\n` +
          "  public.items: backup had 21, restore has 20\n  public.notes: backup had 3, restore has 2",
  );
  const sums = edited("sums", (m) => ({
    ...m,
    tableChecksums: { "public.notes": "0", "public.items": "0" },
  }));
  await assert.rejects(
    restoreTest(sums),
    (e: Error) =>
      e instanceof CheckFailedError &&
      e.message ===
        `restore test of ${basename(file)}: the content of 2 table(s) differs from the backup's checksums ` +
          "although the row counts match: public.items, public.notes",
  );
  assert.deepEqual(await scratchDatabases(pg), []);
});

test("each late failure names its step: setting bytea_output, listing the backup's contents, dropping the scratch database", async () => {
  const escape = edited("escape", (m) => ({ ...m, byteaOutput: "escape" }));
  await assert.rejects(
    restoreTest(escape, psqlRefusing(join(dir, "bytea-refused"), "bytea_output")),
    (e: Error) =>
      e instanceof CannotRunError &&
      e.message === "setting bytea_output on the scratch database failed: ERROR:  stand-in refused",
  );
  const listing = standinPgBin(join(dir, "listing-fails"), {
    pg_restore:
      `case "$1" in -s) cat > /dev/null; echo "pg_restore: error: stand-in refused" >&2; exit 1;; esac\n` +
      `exec "${PG_BIN}/pg_restore" "$@"`,
  });
  await assert.rejects(
    restoreTest(file, listing),
    (e: Error) =>
      e instanceof CannotRunError &&
      e.message === "listing the backup's contents failed: pg_restore: error: stand-in refused",
  );
  assert.deepEqual(await scratchDatabases(pg), []);
  await assert.rejects(
    restoreTest(file, psqlRefusing(join(dir, "drop-refused"), "DROP DATABASE")),
    (e: Error) =>
      e instanceof CannotRunError &&
      e.message === "dropping the scratch database failed: ERROR:  stand-in refused",
  );
  // The one left by the refused drop.
  const left = await scratchDatabases(pg);
  assert.equal(left.length, 1);
  await pg.query(`DROP DATABASE "${left[0]}"`);
});
