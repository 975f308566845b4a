import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client } from "pg";
import { dropReleaseSlot, replayChanges, slotName } from "../../../src/core/changes";
import { migrate } from "../../../src/core/migrations/runner";
import { startPostgres, type TestPostgres } from "../../helpers/postgres";
import { connOf, local, restoreInto, rowsJson, slotAndDump } from "./fixture";

// A migration tool that records a migration in a transaction of its own (Prisma writes
// _prisma_migrations before and after the script; golang-migrate, noTransaction): the replay used to take
// its backfill for a user's write and put it into the restored old schema. `migrate up` now marks the
// transactions that change the schema while it runs (src/core/migrations/marker.ts).
let pg: TestPostgres;
let dir: string;

before(async () => {
  pg = await startPostgres({ walLevel: "logical" });
  dir = mkdtempSync(join(tmpdir(), "sd-marker-"));
  await pg.createDatabase("shop");
  await pg.query(
    `CREATE TABLE users (id serial PRIMARY KEY, email text NOT NULL);
     INSERT INTO users (email) SELECT 'u' || g || '@shop.test' FROM generate_series(1, 20) g;
     CREATE TABLE _prisma_migrations (id serial PRIMARY KEY, migration_name text NOT NULL, finished_at timestamptz);
     INSERT INTO _prisma_migrations (migration_name, finished_at) VALUES ('1_init', now());
     CREATE ROLE app_rw LOGIN PASSWORD 'app-pw'; GRANT ALL ON ALL TABLES IN SCHEMA public TO app_rw;
     GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO app_rw; GRANT CREATE ON SCHEMA public TO app_rw;`,
    [],
    "shop",
  );
  // Prisma's way (stand-in: its engine cannot be downloaded here): the row first, the script as one
  // implicit transaction (a multi-statement query), the row finished last, each in its own transaction.
  writeFileSync(
    join(dir, "prisma-like.sh"),
    `set -eu
psql "$DATABASE_URL" -Xq -v ON_ERROR_STOP=1 -c "INSERT INTO _prisma_migrations (migration_name) VALUES ('2_status')"
psql "$DATABASE_URL" -Xq -v ON_ERROR_STOP=1 -c "ALTER TABLE users ADD COLUMN status text; UPDATE users SET email = upper(email), status = 'active'"
psql "$DATABASE_URL" -Xq -v ON_ERROR_STOP=1 -c "UPDATE _prisma_migrations SET finished_at = now() WHERE migration_name = '2_status'"
`,
  );
});
after(async () => {
  await pg?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test(
  "a Prisma-like migration's backfill is not replayed; users' writes, before, during and after it, are",
  { timeout: 120_000 },
  async () => {
    const slot = slotName("prod", "marker");
    const dump = join(dir, "pre.dump");
    const s = await slotAndDump(pg, "shop", slot, dump);
    await pg.query("INSERT INTO users (email) VALUES ('before@shop.test')", [], "shop");
    // The app's own DDL while the marker is armed: a temporary table is no schema change of the app's.
    const app = new Client({ connectionString: pg.url("shop").replace(/\/\/[^@]+@/, "//app_rw:app-pw@") });
    await app.connect();
    try {
      const r = await migrate({
        tool: "command",
        action: "up",
        dir: ".",
        workDir: dir,
        databaseUrl: pg.url("shop"),
        custom: { up: "sh prisma-like.sh" },
      });
      assert.ok(r, "migrated");
      await app.query("BEGIN");
      await app.query("CREATE TEMP TABLE scratch (x int) ON COMMIT DROP");
      await app.query("INSERT INTO users (email, status) VALUES ('during@shop.test', 'new')");
      await app.query("COMMIT");
      // DDL by a role that may not write the marker's table never fails because of it.
      await app.query("CREATE TABLE app_cache (k text PRIMARY KEY)");
      await app.query("DROP TABLE app_cache");
    } finally {
      await app.end();
    }
    await pg.query("UPDATE users SET email = 'u1-changed@shop.test' WHERE id = 1", [], "shop");
    const triggers = await pg.query<{ evtname: string }>("SELECT evtname FROM pg_event_trigger", [], "shop");
    assert.deepEqual(triggers, [], "migrate up disarms the marker when it ends");

    const into = await restoreInto(pg, dump, "shop_rollback");
    const r = await replayChanges({
      target: local,
      live: connOf(pg, "shop"),
      slot,
      startLsn: s.startLsn,
      into,
      reportDir: dir,
    });
    assert.ok(r.excluded >= 1, `the migration's transaction skipped: ${JSON.stringify(r)}`);
    // safe-deploy's own bookkeeping (the marker's arming, checksums) is neither replayed nor reported.
    assert.equal(r.reported, 0, JSON.stringify(r));
    // Old schema, users' rows: nobody's email upper-cased by the rolled-back migration.
    assert.deepEqual(await pg.query("SELECT id, email FROM users ORDER BY id", [], "shop_rollback"), [
      { id: 1, email: "u1-changed@shop.test" },
      ...Array.from({ length: 19 }, (_, i) => ({ id: i + 2, email: `u${i + 2}@shop.test` })),
      { id: 21, email: "before@shop.test" },
      { id: 22, email: "during@shop.test" },
    ]);
    assert.equal(
      await rowsJson(pg, "shop_rollback", "SELECT migration_name FROM _prisma_migrations ORDER BY id"),
      JSON.stringify([{ migration_name: "1_init" }]),
    );
    await dropReleaseSlot(local, connOf(pg, "shop"), slot);
  },
);

test(
  "a role that may not create event triggers: the migration runs as before and the log says what a rollback will not recognise",
  { timeout: 60_000 },
  async () => {
    const said: string[] = [];
    await migrate({
      tool: "command",
      action: "up",
      dir: ".",
      workDir: dir,
      databaseUrl: pg.url("shop").replace(/\/\/[^@]+@/, "//app_rw:app-pw@"),
      custom: { up: "true" },
      log: (l) => said.push(l),
    });
    const note = said.find((l) => l.startsWith("note: "));
    assert.match(
      note ?? said.join("\n"),
      /not marked for a rollback's replay .*superuser.*would have its data changes replayed/,
    );
    assert.ok(!note!.includes("app-pw"));
    // safe_deploy was made by the superuser's run above: this role cannot read its checksums, which is
    // said with the grant (it failed the whole migration with "permission denied for schema" before).
    assert.ok(
      said.some((l) => /could not be read .*GRANT USAGE ON SCHEMA safe_deploy TO "app_rw"/.test(l)),
      said.join("\n"),
    );
  },
);
