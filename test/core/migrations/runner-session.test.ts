// A migration that terminates every other session of its database (to take a lock nobody holds)
// also ends safe-deploy's own: the run must fail with that said, not kill the process with an
// uncaught 'error' event of the pg client (found in session 12's mutation testing of runner.ts).
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { migrate } from "../../../src/core/migrations/runner";
import { failure } from "../../helpers/failure";
import { PG_BIN, startPostgres, type TestPostgres } from "../../helpers/postgres";

let pg: TestPostgres;
let url: string;
let work: string;

before(async () => {
  pg = await startPostgres();
  url = await pg.createDatabase("app");
  work = mkdtempSync(join(tmpdir(), "sd-runner-session-"));
});
after(async () => {
  await pg?.close();
  if (work) rmSync(work, { recursive: true, force: true });
});

test("a migration that ends safe-deploy's own session: the run fails saying so, the process lives on", async () => {
  const [name, message] = await failure(
    migrate({
      tool: "command",
      action: "up",
      dir: ".",
      workDir: work,
      databaseUrl: url,
      custom: {
        up: `"${PG_BIN}/psql" -X "$DATABASE_URL" -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"`,
      },
    }),
  );
  assert.equal(name, "CheckFailedError");
  assert.match(
    message,
    /^safe-deploy's own database session \("safe-deploy migrate"\) was ended during the run \(terminating connection due to administrator command\): did a migration terminate the other sessions\? .*`safe-deploy migrate current`/,
  );
  // The migration lock went with the session: another run may take it at once.
  const [{ free }] = await pg.query<{ free: boolean }>(
    "SELECT pg_try_advisory_lock(23294, 54161) AS free",
    [],
    "app",
  );
  assert.equal(free, true);
});
