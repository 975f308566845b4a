// Issue 22 (session 13): what a run leaves alone, where session 11 and 12 left survivors of runner.ts: a
// read-only verb writes nothing, not even to clean the marker a killed run left behind (the next `up`
// does that); and a failed look at the sessions blocking the tool does not fail the migration.
import assert from "node:assert/strict";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { it } from "node:test";
import { Client } from "pg";
import { armMigrationMarker } from "../../../src/core/migrations/marker";
import { migrate } from "../../../src/core/migrations/runner";
import { until } from "../../helpers/bounded";
import { fileServer } from "../../helpers/file-server";
import { PG_BIN } from "../../helpers/postgres";

const f = fileServer("sd-runner-quiet-");

it(
  "`migrate current` leaves a killed run's marker as it is: a read-only verb writes nothing",
  { timeout: 60_000 },
  async () => {
    const url = await f.pg.createDatabase("stale");
    const killed = new Client({ connectionString: url });
    await killed.connect();
    assert.deepEqual(await armMigrationMarker(killed), { armed: true });
    const pid = (await killed.query<{ pid: number }>("SELECT pg_backend_pid() AS pid")).rows[0].pid;
    await killed.end();
    await until(
      "the killed run's session to leave",
      async () =>
        (await f.pg.query("SELECT 1 FROM pg_stat_activity WHERE pid = $1", [pid], "stale")).length === 0,
    );
    const marker = () =>
      f.pg.query(
        `SELECT (SELECT count(*)::int FROM safe_deploy.migration_marker) AS rows,
              (SELECT count(*)::int FROM pg_event_trigger WHERE evtname LIKE 'safe_deploy_mark%') AS triggers`,
        [],
        "stale",
      );
    assert.deepEqual(await marker(), [{ rows: 1, triggers: 2 }]);
    await mkdir(join(f.tmp, "mig"));
    const r = await migrate({
      tool: "node-pg-migrate",
      action: "current",
      dir: "mig",
      workDir: f.tmp,
      databaseUrl: url,
      targetChecked: true,
    });
    assert.equal(r.output, "(no migration applied)");
    assert.deepEqual(await marker(), [{ rows: 1, triggers: 2 }]);
  },
);

it(
  "the blockers' query failing while the tool runs (cancelled by an operator): the run still succeeds",
  { timeout: 60_000 },
  async () => {
    const url = await f.pg.createDatabase("watch");
    // The watch's own query, and only it, fails as a cancelled statement does.
    const proto = Client.prototype as unknown as { query: (...a: unknown[]) => unknown };
    const real = proto.query;
    let failed = 0;
    proto.query = function (this: Client, ...a: unknown[]) {
      if (typeof a[0] === "string" && a[0].includes("pg_blocking_pids")) {
        failed++;
        return Promise.reject(new Error("canceling statement due to user request"));
      }
      return real.apply(this, a);
    };
    try {
      const r = await migrate({
        tool: "command",
        action: "up",
        dir: ".",
        workDir: f.tmp,
        databaseUrl: url,
        custom: { up: `"${PG_BIN}/psql" "$DATABASE_URL" -Xqc "CREATE TABLE t (id int)"` },
      });
      assert.deepEqual(r, { before: undefined, after: undefined, output: "" });
    } finally {
      proto.query = real;
    }
    assert.ok(failed > 0, "the blockers' query never ran");
    assert.deepEqual(await f.pg.query("SELECT count(*)::int AS n FROM t", [], "watch"), [{ n: 0 }]);
  },
);
