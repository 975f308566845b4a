// Issue 22 (session 13): runner.ts's lists of migrations (lines 309-470) where session 12's Stryker run
// left survivors: node-pg-migrate's order for an 18-digit prefix that starts like a UTC timestamp, and
// the session `migrate down` opens to list what it would revert, as an operator sees it.
import assert from "node:assert/strict";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { before, describe, it } from "node:test";
import { Client } from "pg";
import { migrationFiles, migrationsToRevert } from "../../../src/core/migrations/runner";
import { until, within } from "../../helpers/bounded";
import { fileServer } from "../../helpers/file-server";

const f = fileServer("sd-runner-lists-");

describe("migrationFiles", () => {
  it("an 18-digit prefix is a plain number even when its first 17 digits read as a UTC timestamp", async () => {
    for (const name of ["202401010000000001_v.sql", "1800000000000_t.sql", "20240101000000000_u.sql"])
      await writeFile(join(f.tmp, name), "-- Up Migration\n");
    assert.deepEqual(await migrationFiles(f.tmp), [
      "20240101000000000_u", // 2024-01-01 as UTC yyyymmddhhmmssSSS
      "1800000000000_t", // 2027 in ms
      "202401010000000001_v", // 2.0e17: after both
    ]);
  });
});

describe("migrationsToRevert", () => {
  let url: string;
  before(async () => {
    url = await f.pg.createDatabase("revert");
    await f.pg.query(
      `CREATE TABLE pgmigrations (id serial PRIMARY KEY, name varchar(255) NOT NULL, run_on timestamp NOT NULL);
       INSERT INTO pgmigrations (name, run_on) VALUES ('1_a', '2026-01-01'), ('2_b', '2026-01-02')`,
      [],
      "revert",
    );
  });

  it("its session is named `safe-deploy migrate` in pg_stat_activity, like the run's own", async () => {
    const holder = new Client({ connectionString: url });
    await holder.connect();
    try {
      // The table locked, the listing waits where an operator can see it.
      await holder.query("BEGIN; LOCK TABLE pgmigrations IN ACCESS EXCLUSIVE MODE");
      const listing = migrationsToRevert(url);
      let names: string[] = [];
      await until("the listing to wait for the locked table", async () => {
        // Another session: pg_stat_activity holds still within the holder's transaction.
        names = (
          await f.pg.query<{ a: string }>(
            "SELECT application_name AS a FROM pg_stat_activity WHERE datname = 'revert' AND wait_event_type = 'Lock'",
          )
        ).map((r) => r.a);
        return names.length > 0;
      });
      assert.deepEqual(names, ["safe-deploy migrate"]);
      await holder.query("COMMIT");
      assert.deepEqual(await within("the listing", listing), ["2_b"]);
      // Its session is closed once it answered, not left holding a connection.
      await until(
        "the listing's session to close",
        async () =>
          (await f.pg.query("SELECT 1 FROM pg_stat_activity WHERE application_name = 'safe-deploy migrate'"))
            .length === 0,
      );
    } finally {
      await holder.end();
    }
  });
});
