import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { Client } from "pg";
import { PG_BIN, startPostgres, type TestPostgres } from "../../helpers/postgres";
import { orchestratorCases } from "./orchestrator-cases";

const run = promisify(execFile);

// The orchestrator's cases over a real PostgreSQL server the "migrations" really change, with real
// pg_dump/pg_restore backups (orchestrator-fast.test.ts runs the same cases over a model, for speed).
let pg: TestPostgres;

const sql = async (q: string) => {
  const c = new Client({ connectionString: pg.url("app") });
  await c.connect();
  try {
    return (await c.query(q)).rows;
  } finally {
    await c.end();
  }
};

orchestratorCases({
  tmpPrefix: "sd-orch-",
  start: async () => {
    pg = await startPostgres();
  },
  stop: async () => {
    await pg?.close();
  },
  reset: async () => {
    await pg.query("DROP DATABASE IF EXISTS app WITH (FORCE)");
    await pg.query("CREATE DATABASE app");
    await sql(`CREATE TABLE schema_version (v text); INSERT INTO schema_version VALUES ('002');
               CREATE TABLE notes (id serial PRIMARY KEY, body text NOT NULL);
               INSERT INTO notes (body) SELECT 'note ' || g FROM generate_series(1, 50) g;`);
  },
  migrate: async () => {
    await sql("ALTER TABLE notes ADD COLUMN title text; UPDATE schema_version SET v = '003'");
  },
  destroy: async () => {
    await sql("DELETE FROM notes WHERE id > 10; UPDATE schema_version SET v = '003'");
  },
  snapshot: async () => {
    const { stdout } = await run(join(PG_BIN, "pg_dump"), ["--no-owner", "-d", pg.url("app")]);
    // Comments and pg_dump's per-run `\restrict <random key>` lines differ between two dumps of one database.
    return stdout.replace(/^--.*$/gm, "").replace(/^\\(un)?restrict .*$/gm, "");
  },
  schemaVersion: async () =>
    ((await sql("SELECT v FROM schema_version"))[0] as { v?: string } | undefined)?.v,
  dump: async (file) => {
    await run(join(PG_BIN, "pg_dump"), ["-Fc", "-f", file, "-d", pg.url("app")]);
  },
  restore: async (file) => {
    await run(join(PG_BIN, "pg_restore"), [
      "--clean",
      "--if-exists",
      "--single-transaction",
      "-d",
      pg.url("app"),
      file,
    ]);
  },
});
