// The restore's lock (`holdAdvisoryLock`, also rebuild's): a restore right after another must not be
// refused as "another restore is running" because the first one's session, already gone from the
// client's side, still held the lock on the server; the lock is tried for up to 2 s and given back
// before psql exits, as the backup's lock is (backup-lock.test.ts).
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { Client } from "pg";
import { until } from "../../helpers/bounded";
import { startPostgres, type TestPostgres } from "../../helpers/postgres";
import { parseDatabaseUrl } from "../../../src/core/backup/runner";
import { holdAdvisoryLock } from "../../../src/core/backup/session";

let pg: TestPostgres;
const KEY = "safe-deploy:restore:it's";
const LOCAL = { runIn: "local" } as const;

before(async () => {
  pg = await startPostgres();
});
after(async () => {
  await pg?.close();
});

const advisoryLocks = () => pg.query<{ pid: number }>("SELECT pid FROM pg_locks WHERE locktype = 'advisory'");
const lockSessions = async () => {
  const [{ n }] = await pg.query<{ n: number }>(
    "SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'safe-deploy-backup'",
  );
  return n;
};

test("the lock is given back before the release returns, every time", async () => {
  for (let i = 0; i < 10; i++) {
    const release = await holdAdvisoryLock(LOCAL, parseDatabaseUrl(pg.url()), KEY);
    assert.ok(release, `lock ${i + 1} taken`);
    assert.equal((await advisoryLocks()).length, 1, "held while the release is not called");
    await release();
    assert.deepEqual(await advisoryLocks(), [], `no advisory lock held after release ${i + 1}`);
  }
});

test("a lock given back moments after it is first asked for (a session still leaving): taken", async () => {
  const holder = new Client({ connectionString: pg.url() });
  await holder.connect();
  try {
    await holder.query("SELECT pg_advisory_lock(hashtext($1))", [KEY]);
    const taking = holdAdvisoryLock(LOCAL, parseDatabaseUrl(pg.url()), KEY);
    taking.catch(() => {});
    // Its session is there, trying the lock: only then is it given back.
    await until("the lock's session to be connected", async () => (await lockSessions()) > 0);
    await holder.query("SELECT pg_advisory_unlock(hashtext($1))", [KEY]);
    const release = await taking;
    assert.ok(release, "taken once the other session let go");
    await release();
  } finally {
    await holder.query("SELECT pg_advisory_unlock_all()").catch(() => {});
    await holder.end();
  }
});

test("a lock held throughout: refused (undefined), and the session that asked is gone", async () => {
  const holder = new Client({ connectionString: pg.url() });
  await holder.connect();
  try {
    await holder.query("SELECT pg_advisory_lock(hashtext($1))", [KEY]);
    assert.equal(await holdAdvisoryLock(LOCAL, parseDatabaseUrl(pg.url()), KEY), undefined);
    await until("the refused session to leave", async () => (await lockSessions()) === 0);
  } finally {
    await holder.end();
  }
});
