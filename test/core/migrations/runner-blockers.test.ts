// Issue 22 (session 12): lockBlockers, the sessions a migration tool waits on as an operator is told
// them, on one server: an open transaction holding tables (catalogs and views left out), a session-level
// advisory lock outside any transaction, CREATE INDEX CONCURRENTLY waiting for older transactions, and a
// migration role that may not see the other role's session.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Client } from "pg";
import { connect, lockBlockers } from "../../../src/core/migrations/runner";
import { until, within } from "../../helpers/bounded";
import { startPostgres, type TestPostgres } from "../../helpers/postgres";

const TOOL = "safe-deploy migrate tool";

describe("lockBlockers", () => {
  let pg: TestPostgres;
  let url: string;
  const open: Client[] = [];
  /** A session on the test database, ended after the test. */
  const session = async (app: string, u = url) => {
    const c = new Client({ connectionString: u, application_name: app });
    await c.connect();
    open.push(c);
    return c;
  };
  const pidOf = async (c: Client) =>
    (await c.query<{ pid: number }>("SELECT pg_backend_pid() AS pid")).rows[0].pid;
  /** Runs `sql` as the migration tool and waits until it waits on a lock; `done` settles when it ends. */
  const waitingTool = async (sql: string, u = url) => {
    const tool = await session(TOOL, u);
    const pid = await pidOf(tool);
    const running = tool.query(sql).catch((e: Error) => e);
    await until("the tool to wait on a lock", async () => {
      const r = await pg.query<{ w: string | null }>(
        "SELECT wait_event_type AS w FROM pg_stat_activity WHERE pid = $1",
        [pid],
        "blockers",
      );
      return r[0]?.w === "Lock";
    });
    return { done: running };
  };
  const observe = async (u = url) => {
    const c = await connect(u, "safe-deploy migrate");
    try {
      return (await lockBlockers(c)).map((b) => ({ ...b, text: b.text.replace(/open \d+ s/, "open N s") }));
    } finally {
      await c.end();
    }
  };
  /** Ends every session of the case (the tool's wait with them). */
  const endAll = async () => {
    for (const c of open.splice(0)) await c.end().catch(() => {});
  };

  before(async () => {
    pg = await startPostgres();
    url = await pg.createDatabase("blockers");
    await pg.query(
      "CREATE TABLE t (id int); CREATE TABLE u (id int); CREATE TABLE v (id int); CREATE ROLE lim LOGIN PASSWORD 'lim-pw'; GRANT ALL ON t, u, v TO lim",
      [],
      "blockers",
    );
  });
  after(async () => {
    await endAll();
    await pg?.close();
  });

  it("an open transaction: its state, age, the tables it holds (not catalogs or views) and what the tool waited for", async () => {
    try {
      const app = await session("report job");
      await app.query("BEGIN");
      await app.query("LOCK TABLE t IN ACCESS SHARE MODE");
      await app.query("SELECT count(*) FROM u, pg_class, information_schema.tables");
      const pid = await pidOf(app);
      assert.deepEqual(await observe(), []);
      const tool = await waitingTool("ALTER TABLE t ADD COLUMN c int");
      assert.deepEqual(await observe(), [
        {
          pid,
          text: `pid ${pid} (application_name "report job", idle in transaction, transaction open N s, holding locks on t, u) while the migration waited for AccessExclusiveLock on t`,
        },
      ]);
      await app.query("COMMIT");
      assert.ok(!((await within("the tool's ALTER", tool.done)) instanceof Error));
    } finally {
      await endAll();
    }
  });

  it("a session-level advisory lock outside a transaction: no age, no tables, the lock's kind", async () => {
    try {
      const app = await session("worker");
      await app.query("SELECT pg_advisory_lock(7)");
      const pid = await pidOf(app);
      const tool = await waitingTool("SELECT pg_advisory_lock(7)");
      assert.deepEqual(await observe(), [
        {
          pid,
          text: `pid ${pid} (application_name "worker", idle) while the migration waited for ExclusiveLock (advisory)`,
        },
      ]);
      await app.query("SELECT pg_advisory_unlock(7)");
      assert.ok(!((await within("the tool's advisory lock", tool.done)) instanceof Error));
    } finally {
      await endAll();
    }
  });

  it("CREATE INDEX CONCURRENTLY waiting for an older transaction says so", async () => {
    try {
      const app = await session("long report");
      await app.query("BEGIN ISOLATION LEVEL REPEATABLE READ");
      await app.query("SELECT count(*) FROM v");
      const pid = await pidOf(app);
      const tool = await waitingTool("CREATE INDEX CONCURRENTLY u_id ON u (id)");
      assert.deepEqual(await observe(), [
        {
          pid,
          text: `pid ${pid} (application_name "long report", idle in transaction, transaction open N s, holding locks on v) while the migration waited for ShareLock on an older transaction (CONCURRENTLY waits for every transaction open when it started)`,
        },
      ]);
      await app.query("COMMIT");
      assert.ok(!((await within("the index build", tool.done)) instanceof Error));
    } finally {
      await endAll();
    }
  });

  it("a migration role that may not see another role's session: the pid and name, its state unknown", async () => {
    try {
      const app = await session("report job");
      await app.query("BEGIN");
      await app.query("LOCK TABLE t IN ACCESS SHARE MODE");
      const pid = await pidOf(app);
      const lim = `postgres://lim:lim-pw@127.0.0.1:${pg.port}/blockers`;
      const tool = await waitingTool("BEGIN; LOCK TABLE t IN ACCESS EXCLUSIVE MODE; COMMIT", lim);
      assert.deepEqual(await observe(lim), [
        {
          pid,
          text: `pid ${pid} (application_name "report job", unknown state, holding locks on t) while the migration waited for AccessExclusiveLock on t`,
        },
      ]);
      await app.query("COMMIT");
      assert.ok(!((await within("the tool's LOCK", tool.done)) instanceof Error));
    } finally {
      await endAll();
    }
  });
});
