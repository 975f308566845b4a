// restoreKeepingWrites' edges the other files do not reach (issue 22, changes.ts survivors): a restore
// that keeps no old database, a backup's slot now on another database of the server, and a swap that
// fails after the replay. One server at wal_level=logical; psql through a stand-in under PG_BIN that can
// fail the swap (its renames turned into an error), as restore-edges.test.ts does with its `BEGIN;`.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { chmodSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { createBackup } from "../../../src/core/backup";
import { slotName } from "../../../src/core/changes/slot";
import { restoreKeepingWrites } from "../../../src/core/release/changes";
import { PG_BIN, startPostgres, type TestPostgres } from "../../helpers/postgres";

let pg: TestPostgres;
let dir: string;
let bin: string;
before(async () => {
  pg = await startPostgres({ walLevel: "logical" });
  dir = mkdtempSync(join(tmpdir(), "sd-changes-edges-"));
  bin = join(dir, "bin");
  mkdirSync(bin);
  for (const t of ["pg_dump", "pg_restore"]) symlinkSync(join(PG_BIN, t), join(bin, t));
  writeFileSync(
    join(bin, "psql"),
    // Streamed line by line: a psql session (the restore's lock, the replay) keeps its input open. psql
    // replaces the shell, so the stand-in exits when psql does (a pipeline would wait for sed's input).
    `#!/bin/bash\nif [ -n "$SD_TEST_FAIL_SWAP" ]; then f='s/^ALTER DATABASE .* RENAME TO .*;$/SELECT 1\\/0;/'; else f=''; fi\n` +
      `exec "${PG_BIN}/psql" "$@" < <(sed -u "$f")\n`,
  );
  chmodSync(join(bin, "psql"), 0o755);
});
after(async () => {
  await pg?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const SCHEMA = `CREATE TABLE items (id serial PRIMARY KEY, name text NOT NULL);
  INSERT INTO items (name) SELECT 'n' || g FROM generate_series(1, 20) g;`;

async function shop(db: string, changeSlot?: string) {
  const url = await pg.createDatabase(db);
  await pg.query(SCHEMA, [], db);
  const backup = await createBackup({ databaseUrl: url, dir: join(dir, db), label: "pre", changeSlot });
  return { url, backup };
}

const slotsOn = async (slot: string) =>
  (
    await pg.query<{ database: string }>("SELECT database FROM pg_replication_slots WHERE slot_name = $1", [
      slot,
    ])
  ).map((r) => r.database);

test("a restore onto a server without the database keeps no old one: the writes are said lost", async () => {
  const { url, backup } = await shop("gone");
  await pg.query("DROP DATABASE gone");
  const kept = await restoreKeepingWrites(backup.file, {
    databaseUrl: url,
    reportDir: dir,
    changeStream: false,
    safetyDir: join(dir, "safety-gone"),
  });
  assert.equal(kept.restore.previousDatabase, undefined);
  assert.equal(kept.lost, "rollback.changeStream is off; they are lost");
  assert.equal(kept.replay, undefined);
});

test("the backup's slot now belongs to another database of the server (the old one renamed): no replay, the slot left there", async () => {
  const slot = slotName("prod", "moved");
  const { url, backup } = await shop("moved", slot);
  assert.equal(backup.manifest.changes?.slot, slot);
  // A restore outside the rollback swapped the database: the slot went with the old one, now renamed.
  await pg.query("ALTER DATABASE moved RENAME TO moved_before");
  await pg.createDatabase("moved");
  await pg.query(SCHEMA, [], "moved");
  try {
    assert.deepEqual(await slotsOn(slot), ["moved_before"]);
    const kept = await restoreKeepingWrites(backup.file, {
      databaseUrl: url,
      reportDir: dir,
      changeStream: true,
      safetyDir: join(dir, "safety-moved"),
    });
    assert.equal(kept.replay, undefined);
    assert.equal(
      kept.lost,
      `its slot ${slot} no longer exists (dropped after its keep window or at rollback.maxRetainedWalMB); ` +
        `they are only in the kept database ${kept.restore.previousDatabase}`,
    );
    assert.deepEqual(await slotsOn(slot), ["moved_before"], "another database's slot is not dropped");
  } finally {
    await pg.query("SELECT pg_drop_replication_slot($1)", [slot]).catch(() => {});
  }
});

test("the swap fails after the writes were replayed: its own error, not a replay failure", async () => {
  const slot = slotName("prod", "swapfail");
  const { url, backup } = await shop("swapfail", slot);
  await pg.query("INSERT INTO items (name) VALUES ('after the backup')", [], "swapfail");
  const saved = process.env.PG_BIN;
  process.env.PG_BIN = bin;
  process.env.SD_TEST_FAIL_SWAP = "1";
  try {
    await assert.rejects(
      restoreKeepingWrites(backup.file, {
        databaseUrl: url,
        reportDir: dir,
        changeStream: true,
        safetyDir: join(dir, "safety-swapfail"),
      }),
      (e: Error) => {
        assert.match(e.message, /^swapping the restored database in failed: .*division by zero/s);
        assert.doesNotMatch(
          e.message,
          new RegExp(`replaying the writes made since ${basename(backup.file)}`),
        );
        return true;
      },
    );
    const [{ n }] = await pg.query<{ n: number }>("SELECT count(*)::int AS n FROM items", [], "swapfail");
    assert.equal(n, 21, "the live database is the one before the restore");
  } finally {
    if (saved === undefined) delete process.env.PG_BIN;
    else process.env.PG_BIN = saved;
    delete process.env.SD_TEST_FAIL_SWAP;
    await pg.query("SELECT pg_drop_replication_slot($1)", [slot]).catch(() => {});
  }
});
