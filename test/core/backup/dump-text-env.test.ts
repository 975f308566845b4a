// Issue 22 (mutation testing of streams.ts): DUMP_TEXT_ENV is what makes a dump's timestamptz text the
// same whatever TimeZone the database or role sets, so a restored copy (a scratch database without the
// original's settings) dumps to the bytes the backup's checksums were taken over. One small server.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { PG_BIN, startPostgres, type TestPostgres } from "../../helpers/postgres";
import { DUMP_TEXT_ENV } from "../../../src/core/backup/streams";

let pg: TestPostgres;
before(async () => {
  pg = await startPostgres();
  await pg.createDatabase("tokyo");
  await pg.query(`ALTER DATABASE tokyo SET timezone TO 'Asia/Tokyo'`);
  await pg.query(
    `CREATE TABLE t (at timestamptz); INSERT INTO t VALUES ('2026-01-02 03:04:05+00')`,
    [],
    "tokyo",
  );
});
after(async () => {
  await pg?.close();
});

/** The COPY text pg_dump writes for table `t`, with `extra` over an environment without PGTZ. */
async function dumpRows(extra: Record<string, string>): Promise<string> {
  const env: NodeJS.ProcessEnv = { ...process.env, ...extra };
  if (!("PGTZ" in extra)) delete env.PGTZ;
  delete env.PGOPTIONS;
  const { stdout } = await promisify(execFile)(
    join(PG_BIN, "pg_dump"),
    ["--data-only", "--table=t", "--dbname", pg.url("tokyo")],
    { env, timeout: 60_000 },
  );
  return stdout;
}

test("a dump's timestamptz is written in UTC under DUMP_TEXT_ENV, whatever the database's TimeZone", async () => {
  // Without it the database's own TimeZone shows (the test can tell the difference).
  assert.match(await dumpRows({}), /^2026-01-02 12:04:05\+09$/m);
  assert.match(await dumpRows(DUMP_TEXT_ENV), /^2026-01-02 03:04:05\+00$/m);
});
