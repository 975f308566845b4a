import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseDatabaseUrl, withDatabase, type RunTarget } from "../../../src/core/backup/runner";
import { runSql } from "../../../src/core/backup/session";
import {
  createReleaseSlot,
  dropReleaseSlot,
  listReleaseSlots,
  logicalReadiness,
  replayChanges,
  slotName,
} from "../../../src/core/changes";
import {
  docker,
  ensureDocker,
  postgresImage,
  removeContainer,
  runContainer,
  type TestContainer,
  waitForPostgresIn,
} from "../../helpers/docker";

// The change stream where the tool may not reach the server's port: every step (the replication
// session, the peek, the replay) through `docker exec` in the database container (issue 20).
let db: TestContainer;
let dir: string;
let target: RunTarget;
const conn = parseDatabaseUrl("postgres://app:In5ide-Secret@127.0.0.1:5432/app");

const sql = (text: string, database = "app") => runSql(target, withDatabase(conn, database), text, "test");

before(async () => {
  await ensureDocker();
  db = await runContainer({
    image: await postgresImage(),
    env: { POSTGRES_USER: "app", POSTGRES_PASSWORD: "In5ide-Secret", POSTGRES_DB: "app" },
    command: ["-c", "wal_level=logical"],
  });
  target = { runIn: "container", container: db.name };
  await waitForPostgresIn(db.name);
  dir = mkdtempSync(join(tmpdir(), "sd-changes-docker-"));
});
after(async () => {
  if (db) await removeContainer(db.id);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test("slot, dump on its snapshot, and replay all run through docker exec", async () => {
  await sql(
    `CREATE TABLE customers (id serial PRIMARY KEY, email text NOT NULL UNIQUE);
     INSERT INTO customers (email) SELECT 'c' || g || '@x.test' FROM generate_series(1, 20) g;`,
  );
  assert.deepEqual((await logicalReadiness(target, conn)).problems, []);
  const slot = slotName("docker", "r1");
  const s = await createReleaseSlot(target, conn, slot);
  // The backup stage's dump, in the container, on the slot's snapshot.
  await docker([
    "exec",
    "-e",
    "PGPASSWORD=In5ide-Secret",
    db.name,
    "pg_dump",
    "-h",
    "127.0.0.1",
    "-U",
    "app",
    "-Fc",
    `--snapshot=${s.snapshot}`,
    "-f",
    "/tmp/pre.dump",
    "app",
  ]);
  await s.close();
  await sql(
    `INSERT INTO customers (email) VALUES ('after@x.test'); UPDATE customers SET email = 'moved@x.test' WHERE id = 1;
     DELETE FROM customers WHERE id = 2;`,
  );
  await sql("CREATE DATABASE app_rb", "postgres");
  await docker([
    "exec",
    "-e",
    "PGPASSWORD=In5ide-Secret",
    db.name,
    "pg_restore",
    "-h",
    "127.0.0.1",
    "-U",
    "app",
    "-d",
    "app_rb",
    "/tmp/pre.dump",
  ]);
  const r = await replayChanges({
    target,
    live: conn,
    slot,
    startLsn: s.startLsn,
    into: withDatabase(conn, "app_rb"),
    reportDir: dir,
  });
  assert.equal(r.applied, 3);
  const rows = "SELECT string_agg(id || '=' || email, ',' ORDER BY id) FROM customers;";
  assert.equal(await sql(rows, "app_rb"), await sql(rows));
  const slots = await listReleaseSlots(target, conn);
  assert.deepEqual(
    slots.map((x) => x.slot),
    [slot],
  );
  assert.ok(slots[0].retainedBytes > 0);
  assert.equal(await dropReleaseSlot(target, conn, slot), true);
  assert.deepEqual(await listReleaseSlots(target, conn), []);
});
