import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client } from "pg";
import { interruptCli, pgRestoreRunning } from "../../helpers/interrupt";
import { startPostgres, type TestPostgres } from "../../helpers/postgres";
import { createBackup, restoreBackup } from "../../../src/core/backup";

// Writers during a restore over the live database (issue 15).
let pg: TestPostgres;
let dir: string;

before(async () => {
  pg = await startPostgres();
  dir = mkdtempSync(join(tmpdir(), "sd-bk-writers-"));
  await pg.query("CREATE ROLE writer LOGIN PASSWORD 'writer-pw'");
  await pg.query("CREATE DATABASE live OWNER writer CONNECTION LIMIT 5");
  await pg.query(
    "CREATE TABLE w (id serial PRIMARY KEY, at timestamptz DEFAULT now()); CREATE TABLE bulk AS SELECT g, md5(g::text) FROM generate_series(1, 100000) g; ALTER TABLE w OWNER TO writer",
    [],
    "live",
  );
});
after(async () => {
  await pg?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** An app that inserts a row at a time and reconnects whenever it is cut off, like a real one. */
function startWriter() {
  let stop = false;
  let committed = 0;
  let connected = 0;
  let onFirst: () => void = () => {};
  const first = new Promise<void>((r) => (onFirst = r));
  const done = (async () => {
    while (!stop) {
      const c = new Client({
        host: pg.host,
        port: pg.port,
        user: "writer",
        password: "writer-pw",
        database: "live",
        application_name: "writer-app",
      });
      c.on("error", () => {});
      try {
        await c.connect();
        connected++;
        while (!stop) {
          await c.query("INSERT INTO w DEFAULT VALUES");
          committed++;
          onFirst();
        }
      } catch {
        await new Promise((r) => setTimeout(r, 20));
      } finally {
        await c.end().catch(() => {});
      }
    }
  })();
  return {
    first,
    stop: async () => ((stop = true), await done),
    committed: () => committed,
    connected: () => connected,
  };
}

test("writers are stopped before the safety backup: it holds the old database's last write; named; connections back", async () => {
  const base = await createBackup({ databaseUrl: pg.url("live"), dir, label: "manual" });
  const writer = startWriter();
  await writer.first;
  const res = await restoreBackup(base.file, { databaseUrl: pg.url("live") });
  await writer.stop();
  assert.ok(res.previousDatabase && res.safety);
  const [{ n }] = await pg.query<{ n: number }>("SELECT count(*)::int AS n FROM w", [], res.previousDatabase);
  assert.ok(n > 0);
  assert.equal(
    res.safety.manifest.rowCounts["public.w"],
    n,
    "every write of the old database is in the safety backup",
  );
  assert.ok(
    res.endedSessions?.some(
      (x) => x.application === "writer-app" && x.user === "writer" && x.client === "127.0.0.1",
    ),
    JSON.stringify(res.endedSessions),
  );
  const limits = await pg.query<{ datname: string; datconnlimit: number }>(
    "SELECT datname, datconnlimit FROM pg_database WHERE datname IN ('live', $1) ORDER BY 1",
    [res.previousDatabase],
  );
  assert.deepEqual(
    limits.map((l) => l.datconnlimit),
    [5, 5],
    "both the restored and the kept database take connections as before",
  );
});

test("a restore that fails after stopping writers lets them connect again", async () => {
  const base = await createBackup({ databaseUrl: pg.url("live"), dir, label: "manual" });
  // The safety backup cannot be written (its directory would be inside a file): fails after the stop.
  await assert.rejects(
    restoreBackup(base.file, { databaseUrl: pg.url("live"), safetyDir: join(base.file, "safety") }),
    /not a directory/,
  );
  const [{ datconnlimit }] = await pg.query<{ datconnlimit: number }>(
    "SELECT datconnlimit FROM pg_database WHERE datname = 'live'",
  );
  assert.equal(datconnlimit, 5);
});

test("a client connected at the swap, after the safety backup, is named: its writes are only in the kept database", async () => {
  const base = await createBackup({ databaseUrl: pg.url("live"), dir, label: "manual" });
  const safety = await createBackup({ databaseUrl: pg.url("live"), dir, label: "safety" });
  const client = new Client({ connectionString: pg.url("live"), application_name: "late-app" });
  client.on("error", () => {});
  await client.connect();
  try {
    // A rollback's restore brings a safety backup taken earlier, so nobody is stopped before it.
    const res = await restoreBackup(base.file, { databaseUrl: pg.url("live"), safetyFile: safety.file });
    assert.equal(res.endedSessions, undefined);
    assert.deepEqual(
      res.lateSessions?.map((x) => [x.application, x.user]),
      [["late-app", pg.user]],
    );
  } finally {
    await client.end().catch(() => {});
  }
});

test("Ctrl-C during a restore after writers were stopped: the connection limit is put back", async () => {
  await pg.query("CREATE DATABASE stopped CONNECTION LIMIT 4");
  await pg.query(
    "CREATE TABLE big AS SELECT g, repeat(md5(g::text), 8) AS s FROM generate_series(1, 300000) g",
    [],
    "stopped",
  );
  const r = await createBackup({ databaseUrl: pg.url("stopped"), dir, label: "manual" });
  const limit = async () =>
    (await pg.query<{ l: number }>("SELECT datconnlimit AS l FROM pg_database WHERE datname = 'stopped'"))[0]
      .l;
  const res = await interruptCli(
    ["backup", "restore", r.file, "--yes", "--database-url", pg.url("stopped")],
    // Mid-way for sure: the limit is 0 (writers stopped) and pg_restore fills the new database.
    async (pgid) => (await limit()) === 0 && pgRestoreRunning(pgid),
  );
  assert.equal(res.code, 3, res.err);
  assert.equal(await limit(), 4, res.err);
});
