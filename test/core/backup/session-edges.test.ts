// Issue 22 (s11, mutation testing of session.ts outside psqlSession/openSnapshot, and their two
// survivors): what a user's psqlrc, a database's own TimeZone and DateStyle, a psql that dies without
// a word and a statistics read that fails would do to the counts and sums a backup and a restore
// compare. One small server, every call in this process.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startPostgres, type TestPostgres } from "../../helpers/postgres";
import { parseDatabaseUrl, type RunTarget } from "../../../src/core/backup/runner";
import {
  COUNTS_AND_SUMS_SQL,
  STABLE_TEXT_SQL,
  countLoadedRows,
  countRows,
  holdAdvisoryLock,
  mergeRowCounts,
  openSnapshot,
  psqlSession,
  runSql,
  tableChecksums,
} from "../../../src/core/backup/session";
import { CannotRunError } from "../../../src/core/errors";

const local: RunTarget = { runIn: "local" };
let pg: TestPostgres;
const dir = mkdtempSync(join(tmpdir(), "sd-session-edges-"));

/** `p`, or a failure naming `what` after `ms`: no wait in this file outlives its own bound. */
function bounded<T>(p: Promise<T>, what: string, ms = 30_000): Promise<T> {
  let t: NodeJS.Timeout;
  return Promise.race([
    p.finally(() => clearTimeout(t)),
    new Promise<T>((_, reject) => {
      t = setTimeout(() => reject(new Error(`${what}: not done after ${ms} ms`)), ms);
    }),
  ]);
}

const DATA = `CREATE TABLE t (id int, at timestamptz, d date, b bytea, f float8, i interval);
  INSERT INTO t VALUES (1, '2026-01-02 03:04:05.5+00', '2026-03-04', '\\x00ff', 0.1, '1 day 2 hours'),
    (2, NULL, '1999-12-31', '\\x41', 1e-7, '-3 months');`;

before(async () => {
  pg = await startPostgres();
  await pg.createDatabase("utc");
  await pg.createDatabase("tokyo");
  // A database whose own settings write every one of those types otherwise than the server's defaults.
  await pg.query(`ALTER DATABASE tokyo SET timezone TO 'Asia/Tokyo'`);
  await pg.query(`ALTER DATABASE tokyo SET datestyle TO 'SQL, DMY'`);
  await pg.query(`ALTER DATABASE tokyo SET intervalstyle TO 'iso_8601'`);
  await pg.query(`ALTER DATABASE tokyo SET extra_float_digits TO -3`);
  await pg.query(`ALTER DATABASE tokyo SET bytea_output TO 'escape'`);
  await pg.query(DATA, [], "utc");
  await pg.query(DATA, [], "tokyo");
});
after(async () => {
  delete process.env.PSQLRC;
  // A session a failed case left open would keep this process alive: psql waits on its input.
  for (const l of execFileSync("ps", ["-o", "pid=,comm=", "--ppid", String(process.pid)], {
    encoding: "utf8",
  }).split("\n")) {
    if (/\bpsql\b/.test(l)) process.kill(Number(l.trim().split(/\s+/)[0]));
  }
  rmSync(dir, { recursive: true, force: true });
  await pg?.close();
});

test("mergeRowCounts: a leaf the server does not list (a foreign partition) leaves its parent to count", () => {
  assert.deepEqual(mergeRowCounts({ "s.p": null, "s.p1": 2 }, { "s.p": ["s.p1", "s.f"] }, {}), {
    counts: { "s.p1": 2 },
    missing: ["s.p"],
  });
  // A leaf only the stream counted still adds up.
  assert.deepEqual(mergeRowCounts({ "s.p": null }, { "s.p": ["s.q"] }, { "s.q": 4 }), {
    counts: { "s.p": 4 },
    missing: [],
  });
});

test("tableChecksums: the same sums whatever TimeZone, DateStyle, IntervalStyle, float digits and bytea output the database sets", async () => {
  const utc = await tableChecksums(local, parseDatabaseUrl(pg.url("utc")));
  const tokyo = await tableChecksums(local, parseDatabaseUrl(pg.url("tokyo")));
  assert.deepEqual(Object.keys(utc), ["public.t"]);
  assert.deepEqual(tokyo, utc);
  // Without the settings the text differs (the test can tell): the database's own TimeZone shows.
  const raw = await runSql(local, parseDatabaseUrl(pg.url("tokyo")), "SELECT at FROM t WHERE id = 1;", "x");
  assert.equal(raw, "02/01/2026 12:04:05.5 JST\n");
  // The scan of counts and sums together, on the same settings.
  const scan = await runSql(
    local,
    parseDatabaseUrl(pg.url("tokyo")),
    `${STABLE_TEXT_SQL}\n${COUNTS_AND_SUMS_SQL}`,
    "scanning",
  );
  const line = scan.split("\n").find((l) => l.startsWith("SCAN:"));
  assert.deepEqual(JSON.parse(line!.slice(5)), { "public.t": `2;${utc["public.t"]}` });
});

test("a user's psqlrc (expanded output, headers) changes no answer: psql runs without it", async () => {
  const rc = join(dir, "psqlrc");
  writeFileSync(rc, "\\x on\n\\pset tuples_only off\n\\set QUIET off\n");
  process.env.PSQLRC = rc;
  try {
    const conn = parseDatabaseUrl(pg.url("utc"));
    assert.deepEqual(await countRows(local, conn), { "public.t": 2 });
    assert.equal(await runSql(local, conn, "SELECT 'x' || 1;", "reading"), "x1\n");
    const s = psqlSession(local, conn, "asking");
    assert.equal(await bounded(s.send(["SELECT 'A:' || 1;"], "__M__"), "send"), "A:1\n__M__1\n");
    await bounded(s.end(), "end");
    const snap = await bounded(openSnapshot(local, conn), "openSnapshot");
    assert.match(snap.snapshot, /^[0-9A-F]+-[0-9A-F]+-\d+$/);
    assert.deepEqual(await bounded(snap.rowCounts(), "rowCounts"), { "public.t": 2 });
    await bounded(snap.close(), "close");
  } finally {
    delete process.env.PSQLRC;
  }
});

test("runSql and a session answer with the rows alone: no command tags of the SET before them", async () => {
  const conn = parseDatabaseUrl(pg.url("utc"));
  assert.equal(await runSql(local, conn, "SET TimeZone = 'UTC';\nSELECT 42;", "reading"), "42\n");
  const s = psqlSession(local, conn, "asking");
  assert.equal(
    await bounded(s.send(["SET TimeZone = 'UTC';", "SELECT 'A:' || 1;"], "__M__"), "send"),
    "A:1\n__M__1\n",
  );
  await bounded(s.end(), "end");
});

test("psql that cannot connect while a large SQL text is still being written: an error naming the step, no crash", async () => {
  const gone = parseDatabaseUrl(pg.url("no_such_db"));
  const big = `SELECT 1;\n${"-- padding\n".repeat(200_000)}`;
  await assert.rejects(bounded(runSql(local, gone, big, "reading things"), "runSql"), (e: Error) => {
    assert.ok(e instanceof CannotRunError);
    assert.match(e.message, /^reading things: database "no_such_db" .* does not exist/);
    return true;
  });
  const s = psqlSession(local, gone, "asking things");
  await assert.rejects(
    bounded(s.send([big], "__M__"), "send"),
    /^CannotRunError: asking things: database "no_such_db" .* does not exist/,
  );
  // The broken pipe of the unread text arrives after the exit: give it a turn to crash this process.
  await new Promise((r) => setTimeout(r, 200));
});

test("psql killed without a word on stderr: the session's error still says psql exited, and how", async () => {
  const s = psqlSession(local, parseDatabaseUrl(pg.url("utc")), "asking");
  await assert.rejects(bounded(s.send(["\\! kill -9 $PPID"], "__M__"), "send"), (e: Error) => {
    assert.ok(e instanceof CannotRunError);
    assert.match(e.message, /^asking failed: psql exited with 128/);
    return true;
  });
});

test("countLoadedRows: statistics that cannot be read never pass for an empty match", async () => {
  // Nothing expected and nothing read: the count runs, and its failure is the user's answer.
  await assert.rejects(
    bounded(countLoadedRows(local, parseDatabaseUrl(pg.url("no_such_db")), {}), "countLoadedRows"),
    /^CannotRunError: counting rows: database "no_such_db" .* does not exist/,
  );
});

test("holdAdvisoryLock: a key with a quote is its own lock; a failure names the step", async () => {
  const conn = parseDatabaseUrl(pg.url("utc"));
  const quoted = await bounded(holdAdvisoryLock(local, conn, "k:it's"), "lock");
  let plain: (() => Promise<void>) | undefined;
  try {
    assert.equal(typeof quoted, "function");
    plain = await bounded(holdAdvisoryLock(local, conn, "k:its"), "lock");
    assert.equal(typeof plain, "function", "the key without its quote is another lock");
  } finally {
    await plain?.();
    await quoted?.();
  }
  await assert.rejects(
    bounded(holdAdvisoryLock(local, parseDatabaseUrl(pg.url("no_such_db")), "k"), "lock"),
    /^CannotRunError: taking the lock: database "no_such_db" .* does not exist/,
  );
});
