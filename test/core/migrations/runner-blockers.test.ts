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
  /**
   * A session named `app` runs `hold`, the tool runs `wait` and is observed waiting on it; then `release`
   * lets the tool finish. Returns the holder's pid and what lockBlockers said meanwhile.
   */
  const blocked = async (o: { app: string; hold: string[]; wait: string; release: string; as?: string }) => {
    try {
      const app = await session(o.app);
      for (const q of o.hold) await app.query(q);
      const pid = await pidOf(app);
      const tool = await waitingTool(o.wait, o.as);
      const seen = await observe(o.as);
      await app.query(o.release);
      assert.ok(!((await within(`the tool's ${o.wait}`, tool.done)) instanceof Error));
      return { pid, seen };
    } finally {
      await endAll();
    }
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
    const { pid, seen } = await blocked({
      app: "report job",
      hold: [
        "BEGIN",
        "LOCK TABLE t IN ACCESS SHARE MODE",
        "SELECT count(*) FROM u, pg_class, information_schema.tables",
      ],
      wait: "ALTER TABLE t ADD COLUMN c int",
      release: "COMMIT",
    });
    assert.deepEqual(seen, [
      {
        pid,
        text: `pid ${pid} (application_name "report job", idle in transaction, transaction open N s, holding locks on t, u) while the migration waited for AccessExclusiveLock on t`,
      },
    ]);
  });

  it("a session-level advisory lock outside a transaction: no age, no tables, the lock's kind", async () => {
    const { pid, seen } = await blocked({
      app: "worker",
      hold: ["SELECT pg_advisory_lock(7)"],
      wait: "SELECT pg_advisory_lock(7)",
      release: "SELECT pg_advisory_unlock(7)",
    });
    assert.deepEqual(seen, [
      {
        pid,
        text: `pid ${pid} (application_name "worker", idle) while the migration waited for ExclusiveLock (advisory)`,
      },
    ]);
  });

  it("CREATE INDEX CONCURRENTLY waiting for an older transaction says so", async () => {
    const { pid, seen } = await blocked({
      app: "long report",
      hold: ["BEGIN ISOLATION LEVEL REPEATABLE READ", "SELECT count(*) FROM v"],
      wait: "CREATE INDEX CONCURRENTLY u_id ON u (id)",
      release: "COMMIT",
    });
    assert.deepEqual(seen, [
      {
        pid,
        text: `pid ${pid} (application_name "long report", idle in transaction, transaction open N s, holding locks on v) while the migration waited for ShareLock on an older transaction (CONCURRENTLY waits for every transaction open when it started)`,
      },
    ]);
  });

  it("a migration role that may not see another role's session: the pid and name, its state unknown", async () => {
    const { pid, seen } = await blocked({
      app: "report job",
      hold: ["BEGIN", "LOCK TABLE t IN ACCESS SHARE MODE"],
      wait: "BEGIN; LOCK TABLE t IN ACCESS EXCLUSIVE MODE; COMMIT",
      release: "COMMIT",
      as: `postgres://lim:lim-pw@127.0.0.1:${pg.port}/blockers`,
    });
    assert.deepEqual(seen, [
      {
        pid,
        text: `pid ${pid} (application_name "report job", unknown state, holding locks on t) while the migration waited for AccessExclusiveLock on t`,
      },
    ]);
  });
});
