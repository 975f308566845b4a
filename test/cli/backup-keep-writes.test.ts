import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createBackup } from "../../src/core/backup";
import { slotName } from "../../src/core/changes/slot";
import { startPostgres, type TestPostgres } from "../helpers/postgres";

// `backup restore --keep-writes`: a person restoring a pre-deploy backup by hand, as their old scripts
// did, gets the rollback's no-loss restore (the backup's change stream replayed before the swap); without
// the flag the restore is as before and says where the later writes are.
const BIN = join(__dirname, "..", "..", "bin", "safe-deploy");
let pg: TestPostgres;
let dir: string;

before(async () => {
  pg = await startPostgres({ walLevel: "logical" });
  dir = mkdtempSync(join(tmpdir(), "sd-keep-writes-"));
});
after(async () => {
  await pg?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const cli = (args: string[]) => {
  const r = spawnSync(BIN, args, {
    encoding: "utf8",
    env: { ...process.env, DATABASE_URL: "" },
    timeout: 180_000,
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
};
const values = async (db: string) =>
  (await pg.query<{ v: string }>("SELECT string_agg(v, ',' ORDER BY id) AS v FROM t", [], db))[0].v;
const slots = async () =>
  (await pg.query<{ slot_name: string }>("SELECT slot_name FROM pg_replication_slots")).map(
    (r) => r.slot_name,
  );

async function backupThenWrites(db: string) {
  const url = await pg.createDatabase(db);
  await pg.query(
    "CREATE TABLE t (id serial PRIMARY KEY, v text); INSERT INTO t (v) VALUES ('before')",
    [],
    db,
  );
  const b = await createBackup({ databaseUrl: url, dir, label: db, changeSlot: slotName("prod", db) });
  assert.ok(b.manifest.changes, b.changesSkipped);
  // A bad migration and a user's order after the backup.
  await pg.query(
    "ALTER TABLE t ADD COLUMN bad int; INSERT INTO t (v, bad) VALUES ('order-after', 1)",
    [],
    db,
  );
  return { url, file: b.file };
}

test(
  "--keep-writes replays the writes made after the backup into the restored copy, then drops the slot",
  { timeout: 180_000 },
  async () => {
    const { url, file } = await backupThenWrites("shop");
    const r = cli(["backup", "restore", file, "--yes", "--keep-writes", "--database-url", url]);
    assert.equal(r.code, 0, r.err);
    assert.equal(await values("shop"), "before,order-after");
    const cols = await pg.query<{ n: string }>(
      "SELECT count(*) AS n FROM information_schema.columns WHERE table_name = 't' AND column_name = 'bad'",
      [],
      "shop",
    );
    assert.equal(cols[0].n, "0", "the restored schema is the backup's");
    assert.match(
      r.out,
      /1 write\(s\) made after the backup replayed \(\d+ transaction\(s\)\); nothing went to a report/,
    );
    assert.deepEqual(await slots(), []);
    assert.ok(!`${r.out}${r.err}`.includes(pg.password));
  },
);

test(
  "without it the restore is as before and says the later writes are only in the kept database",
  { timeout: 180_000 },
  async () => {
    const { url, file } = await backupThenWrites("cafe");
    const r = cli(["backup", "restore", file, "--yes", "--database-url", url]);
    assert.equal(r.code, 0, r.err);
    assert.equal(await values("cafe"), "before");
    const kept = /previous database is kept as "([^"]+)"/.exec(r.out)![1];
    assert.equal(await values(kept), "before,order-after");
    assert.match(
      r.out,
      new RegExp(
        `writes made after this backup were not replayed \\(they are only in "${kept}"\\); .*--keep-writes`,
      ),
    );
    await pg.query("SELECT pg_drop_replication_slot($1)", [slotName("prod", "cafe")]);
  },
);
