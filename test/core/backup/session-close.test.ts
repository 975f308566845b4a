// Issue 22, session 13: what openSnapshot's session does at its ends (survivors of session.ts lines
// 182-310): the backup lock given back while psql is still connected (the server ends a session a moment
// after its client, and the next backup must not find the lock taken), and an imported snapshot id
// quoted as it was given. One server; psql runs through a stand-in that holds its input open after the
// session's last statement until the test lets it go.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client } from "pg";
import { until, within } from "../../helpers/bounded";
import { withEnv } from "../../helpers/env";
import { standinPgBin } from "../../helpers/pg-bin";
import { PG_BIN, startPostgres, type TestPostgres } from "../../helpers/postgres";
import { parseDatabaseUrl, type RunTarget } from "../../../src/core/backup/runner";
import { openSnapshot, psqlSession } from "../../../src/core/backup/session";
import { CannotRunError } from "../../../src/core/errors";

const local: RunTarget = { runIn: "local" };
let pg: TestPostgres;
let dir: string;
let bin: string;

before(async () => {
  pg = await startPostgres();
  await pg.createDatabase("shop");
  await pg.query("CREATE TABLE t (id int); INSERT INTO t VALUES (1), (2);", [], "shop");
  dir = mkdtempSync(join(tmpdir(), "sd-session-close-"));
  // With SD_TEST_ENDED set: psql's input stays open after the caller ended it, until SD_TEST_GO exists
  // (bounded, 20 s); SD_TEST_ENDED is created once the caller's input has all been passed on.
  bin = standinPgBin(join(dir, "bin"), {
    psql:
      `[ -n "$SD_TEST_ENDED" ] || exec "${PG_BIN}/psql" "$@"\n` +
      `{ cat; touch "$SD_TEST_ENDED"; i=0; while [ ! -e "$SD_TEST_GO" ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i+1)); done; } | "${PG_BIN}/psql" "$@"`,
  });
});
after(async () => {
  await pg?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** Whether another session can take the per-database backup lock of "shop" now (given back at once). */
const lockFree = async () =>
  (
    await pg.query<{ ok: boolean }>(
      "SELECT pg_try_advisory_lock(hashtext('safe-deploy:backup:' || current_database())) AS ok",
      [],
      "shop",
    )
  )[0].ok;

/** Backends of the backup's sessions still connected to "shop". */
const backupSessions = async () =>
  (
    await pg.query(
      "SELECT 1 FROM pg_stat_activity WHERE datname = 'shop' AND application_name = 'safe-deploy-backup'",
    )
  ).length;

test("close gives the backup lock back before psql leaves: free while the session is still connected", async () => {
  const ended = join(dir, "ended");
  const go = join(dir, "go");
  await withEnv({ PG_BIN: bin, SD_TEST_ENDED: ended, SD_TEST_GO: go }, async () => {
    const snap = await within("openSnapshot", openSnapshot(local, parseDatabaseUrl(pg.url("shop"))));
    assert.equal(await lockFree(), false, "the lock is held while the snapshot is open");
    const closing = snap.close();
    try {
      await until("psql to have been given the session's last statements", () => existsSync(ended));
      await until("the backup lock to be free while the session is still connected", lockFree);
      assert.equal(await backupSessions(), 1, "the session was still connected when the lock was free");
    } finally {
      writeFileSync(go, "");
      await within("close", closing);
    }
  });
});

test("an imported snapshot id is passed as given, quote and all: the server names it in its refusal", async () => {
  await assert.rejects(
    within("openSnapshot", openSnapshot(local, parseDatabaseUrl(pg.url("shop")), "00000003-0000'001B-1")),
    (e: Error) =>
      e instanceof CannotRunError &&
      e.message.includes(`invalid snapshot identifier: "00000003-0000'001B-1"`),
  );
});

test("an imported snapshot (a release slot's): counted in it, and its id is the snapshot the backup names", async () => {
  const c = new Client({ connectionString: pg.url("shop") });
  await c.connect();
  try {
    await c.query("BEGIN ISOLATION LEVEL REPEATABLE READ");
    const id = (await c.query<{ id: string }>("SELECT pg_export_snapshot() AS id")).rows[0].id;
    await pg.query("INSERT INTO t VALUES (3)", [], "shop");
    const snap = await within("openSnapshot", openSnapshot(local, parseDatabaseUrl(pg.url("shop")), id));
    try {
      assert.equal(snap.snapshot, id);
      assert.deepEqual(await within("rowCounts", snap.rowCounts()), { "public.t": 2 });
    } finally {
      await within("close", snap.close());
    }
  } finally {
    await c.end();
  }
});

test("a session's answer may hold any text, the word undefined too", async () => {
  const s = psqlSession(local, parseDatabaseUrl(pg.url("shop")), "asking");
  assert.equal(await within("send", s.send(["SELECT 'undefined';"], "__M__")), "undefined\n__M__1\n");
  await within("end", s.end());
});
