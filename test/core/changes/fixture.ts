import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { parseDatabaseUrl, type Conn, type RunTarget } from "../../../src/core/backup/runner";
import { createReleaseSlot, type ReleaseSlot } from "../../../src/core/changes";
import { PG_BIN, type TestPostgres } from "../../helpers/postgres";

const run = promisify(execFile);

/** The tools run on this machine. */
export const local: RunTarget = { runIn: "local" };

/** Connection settings of database `db` of `pg`. */
export const connOf = (pg: TestPostgres, db: string): Conn => parseDatabaseUrl(pg.url(db));

/**
 * The Backup stage as issue 20 aligns it: a release slot, then pg_dump on its exported snapshot,
 * then the replication session ends (the slot stays).
 */
export async function slotAndDump(
  pg: TestPostgres,
  db: string,
  slot: string,
  file: string,
): Promise<ReleaseSlot> {
  const s = await createReleaseSlot(local, connOf(pg, db), slot);
  try {
    await run(join("pg_dump"), ["-Fc", `--snapshot=${s.snapshot}`, "-f", file, db], { env: pgEnv(pg) });
  } catch (e) {
    await s.abort();
    throw e;
  }
  await s.close();
  return s;
}

/** Restores `file` into a new database `db` (the rollback's restore step). */
export async function restoreInto(pg: TestPostgres, file: string, db: string): Promise<Conn> {
  await pg.createDatabase(db);
  await run(join("pg_restore"), ["--no-owner", "-d", db, file], { env: pgEnv(pg) });
  return connOf(pg, db);
}

const join = (tool: string) => `${PG_BIN}/${tool}`;

const pgEnv = (pg: TestPostgres) => ({
  ...process.env,
  PGHOST: pg.host,
  PGPORT: String(pg.port),
  PGUSER: pg.user,
  PGPASSWORD: pg.password,
});

/** Rows of `sql` in `db` as JSON text, for whole-table comparisons. */
export async function rowsJson(pg: TestPostgres, db: string, sql: string): Promise<string> {
  return JSON.stringify(await pg.query(sql, [], db));
}
