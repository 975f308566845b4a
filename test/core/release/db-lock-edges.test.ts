// The database deploy lock's edges that db-lock.test.ts does not reach (issue 22 part D, mutation
// survivors of src/core/release/db-lock.ts): the holder's defaults and quoting, a lock held by a session
// that wrote no row, a child of the holder, stale rows, the maintenance database, a holder row that
// cannot be written, and acquireDeployLocks' three outcomes. Real PostgreSQL on 127.0.0.1.
import { test, after, before } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { hostname, tmpdir, userInfo } from "node:os";
import { join } from "node:path";
import { Client } from "pg";
import { CheckFailedError } from "../../../src/core/errors";
import {
  DB_LOCK_ENV,
  acquireDbLock,
  acquireDeployLocks,
  dbLockStatus,
  describeDbHolder,
  lockKey,
  releaseDbLock,
  type DbHolder,
} from "../../../src/core/release/db-lock";
import { lockStatus } from "../../../src/core/release/lock";
import { freePort, startPostgres, type TestPostgres } from "../../helpers/postgres";
import { killLeftPsqlSessions, until } from "../../helpers/bounded";

const work = mkdtempSync(join(tmpdir(), "sd-dblock-edges-"));
let pg: TestPostgres;
before(async () => {
  pg = await startPostgres();
});
after(async () => {
  await pg?.close();
  killLeftPsqlSessions();
  rmSync(work, { recursive: true, force: true });
});
let n = 0;
const fresh = async () => {
  const db = `db${++n}`;
  return { db, url: await pg.createDatabase(db) };
};

/** Server processes holding the deploy lock of `db`, with the database their session is on. */
async function holders(db: string): Promise<Array<{ pid: number; datname: string }>> {
  return pg.query(
    `SELECT l.pid, a.datname FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
      WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
        AND ((l.classid::bigint << 32) | l.objid::bigint) = hashtext($1)::bigint`,
    [lockKey(db)],
  );
}

async function rows(db: string): Promise<number> {
  const r = await pg.query<{ n: number }>("SELECT count(*)::int AS n FROM safe_deploy.deploy_lock", [], db);
  return r[0].n;
}

/** Every test that waits on the server gets its own bound (issue 22), and each wait its own (bounded.ts). */
const BOUND = { timeout: 60_000 };

const gone = (db: string) =>
  until(`the deploy lock of ${db} to be freed`, async () => !(await holders(db)).length);

test("describeDbHolder: the stack only when known, the commit cut to 12, or 'unknown commit'", () => {
  const h: DbHolder = {
    stack: "",
    owner: "al",
    host: "h",
    pid: 1,
    command: "safe-deploy up",
    checkout: "/co",
    commit: "",
    since: "2026-11-23 03:00:00 UTC",
    backendPid: 9,
  };
  assert.equal(
    describeDbHolder(h),
    "al on h (pid 1, `safe-deploy up`, checkout /co at unknown commit) since 2026-11-23 03:00:00 UTC",
  );
  assert.equal(
    describeDbHolder({ ...h, stack: "prod", commit: "0123456789abcdef" }),
    "al on h (pid 1, `safe-deploy up`, stack prod, checkout /co at 0123456789ab) since 2026-11-23 03:00:00 UTC",
  );
  assert.equal(lockKey("shop"), "safe-deploy:deploy:shop");
});

test(
  "the holder row: defaults, quotes kept, the session on the maintenance database; release removes row, lock and env",
  BOUND,
  async () => {
    const { db, url } = await fresh();
    const lock = await acquireDbLock({ databaseUrl: url, stack: "p" });
    try {
      assert.deepEqual(
        { ...lock.holder, since: "", backendPid: 0 },
        {
          stack: "p",
          owner: userInfo().username,
          host: hostname(),
          pid: process.pid,
          command: "safe-deploy",
          checkout: process.cwd(),
          commit: "",
          since: "",
          backendPid: 0,
        },
      );
      assert.match(lock.holder.since, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$/);
      assert.deepEqual(await holders(db), [{ pid: lock.holder.backendPid, datname: "postgres" }]);
      // The name is the contract with the deploy's children (`safe-deploy migrate up` reads it).
      assert.equal(process.env.SAFE_DEPLOY_DB_LOCK, String(lock.holder.backendPid));
      assert.deepEqual(await dbLockStatus(url), {
        state: "held",
        holder: lock.holder,
        backendPid: lock.holder.backendPid,
      });
    } finally {
      await lock.release();
    }
    assert.equal(process.env[DB_LOCK_ENV], undefined);
    await gone(db);
    assert.equal(await rows(db), 0);
    assert.deepEqual(await dbLockStatus(url), { state: "free" });

    const quoted = await acquireDbLock({
      databaseUrl: url,
      stack: "p'1",
      owner: "o'brien",
      host: "h'x",
      pid: 7,
      command: "it's",
      checkout: "/c'o",
      commit: "c'1",
    });
    const st = await dbLockStatus(url);
    assert.equal(st.state, "held");
    assert.deepEqual(st.state === "held" && st.holder, quoted.holder);
    assert.equal(quoted.holder.owner, "o'brien");
    // Another holder's pid in the environment (a nested deploy's) is left for it.
    process.env[DB_LOCK_ENV] = "424242";
    await quoted.release();
    assert.equal(process.env[DB_LOCK_ENV], "424242");
    delete process.env[DB_LOCK_ENV];
  },
);

test("a database named postgres keeps its lock session on template1", BOUND, async () => {
  const lock = await acquireDbLock({ databaseUrl: pg.url("postgres"), stack: "p" });
  try {
    assert.deepEqual(await holders("postgres"), [{ pid: lock.holder.backendPid, datname: "template1" }]);
  } finally {
    await lock.release();
  }
  await gone("postgres");
});

test(
  "a session holding the lock without a row: named by its server process; release needs terminate",
  BOUND,
  async () => {
    const { db, url } = await fresh();
    // Advisory locks belong to one database: the deploy's lock sessions are on the maintenance database.
    const c = new Client({ connectionString: pg.url("postgres") });
    await c.connect();
    try {
      const [{ pid }] = (
        await c.query("SELECT pg_advisory_lock(hashtext($1)), pg_backend_pid() AS pid", [lockKey(db)])
      ).rows as Array<{ pid: number }>;
      assert.deepEqual(await dbLockStatus(url), { state: "held", backendPid: pid });
      await assert.rejects(acquireDbLock({ databaseUrl: url, stack: "p" }), (e: unknown) => {
        assert.ok(e instanceof CheckFailedError);
        assert.equal(
          e.message,
          `database "${db}" is locked by another deploy: a session of server process ${pid} that wrote no ` +
            "holder row yet. Wait for it to finish (`safe-deploy lock status --stack STACK`); a holder whose " +
            "session is gone is replaced by itself.",
        );
        return true;
      });
      await assert.rejects(releaseDbLock(url), (e: unknown) => {
        assert.ok(e instanceof CheckFailedError);
        assert.equal(
          e.message,
          `the database lock of "${db}" is held by a live session: server process ${pid}. Ending that ` +
            "deploy's session needs `--force` and typing the database name at the prompt.",
        );
        return true;
      });
      c.on("error", () => {}); // its session is about to be ended
      assert.deepEqual(await releaseDbLock(url, { terminate: true }), { state: "held", backendPid: pid });
      await gone(db);
    } finally {
      await c.end().catch(() => {});
    }
  },
);

test(
  "a child of the holder (its backend pid in the environment) gets the holder and a release that frees nothing",
  BOUND,
  async () => {
    const { db, url } = await fresh();
    const lock = await acquireDbLock({ databaseUrl: url, stack: "p", command: "safe-deploy up" });
    try {
      const child = await acquireDbLock({ databaseUrl: url, stack: "p", command: "safe-deploy migrate up" });
      assert.deepEqual(child.holder, lock.holder);
      await child.release();
      assert.deepEqual(
        (await holders(db)).map((h) => h.pid),
        [lock.holder.backendPid],
      );
      assert.equal(await rows(db), 1);
      // Someone else's pid in the environment is no pass.
      process.env[DB_LOCK_ENV] = String(lock.holder.backendPid + 1);
      await assert.rejects(
        acquireDbLock({ databaseUrl: url, stack: "p" }),
        /is locked by another deploy: .*\(pid \d+, `safe-deploy up`, stack p,/,
      );
    } finally {
      process.env[DB_LOCK_ENV] = String(lock.holder.backendPid);
      await lock.release();
    }
  },
);

test(
  "releaseDbLock: a free lock is left alone; a stale row (its session ended) is deleted",
  BOUND,
  async () => {
    const { db, url } = await fresh();
    assert.deepEqual(await releaseDbLock(url), { state: "free" });
    const lock = await acquireDbLock({ databaseUrl: url, stack: "p" });
    await pg.query("SELECT pg_terminate_backend($1)", [lock.holder.backendPid]);
    await gone(db);
    const st = await releaseDbLock(url);
    assert.equal(st.state, "stale");
    assert.deepEqual(st.state === "stale" && st.holder, lock.holder);
    assert.equal(await rows(db), 0);
    await lock.release();
    delete process.env[DB_LOCK_ENV];
  },
);

test(
  "a holder row that cannot be written (a user who may not create the table): the error, and no lock left held",
  BOUND,
  async () => {
    const { db } = await fresh();
    await pg.query("CREATE ROLE weak LOGIN PASSWORD 'weak-pw'");
    const url = `postgres://weak:weak-pw@${pg.host}:${pg.port}/${db}`;
    await assert.rejects(acquireDbLock({ databaseUrl: url, stack: "p" }), (e: Error) =>
      /^writing the deploy lock holder\b.*permission denied/s.test(e.message),
    );
    await gone(db);
    assert.equal(process.env[DB_LOCK_ENV], undefined);
  },
);

test(
  "acquireDeployLocks: no database yet, or unreachable: the file lock alone, said; refused: the file lock freed",
  BOUND,
  async () => {
    const stateDir = join(work, "state");
    const said: string[] = [];
    const file = { stateDir, stack: "p", warn: (m: string) => said.push(`warn: ${m}`) };
    const fileState = async () => (await lockStatus({ stateDir, stack: "p" })).state;

    const none = await acquireDeployLocks(file, undefined, { info: (m) => said.push(`info: ${m}`) });
    assert.equal(none.db, undefined);
    assert.equal(await fileState(), "held");
    await none.release();
    assert.equal(await fileState(), "free");
    const noInfo = await acquireDeployLocks(file, undefined);
    await noInfo.release();
    const noDb =
      'the database of stack "p" does not exist yet (this deploy creates it): only this checkout\'s file ' +
      "lock is held, so a deploy from another clone is not excluded until it exists";
    assert.deepEqual(said, [`info: ${noDb}`, `warn: ${noDb}`]);

    said.length = 0;
    const closed = `postgres://${pg.user}:${pg.password}@127.0.0.1:${await freePort()}/x`;
    const unreachable = await acquireDeployLocks(file, { url: closed });
    assert.equal(unreachable.db, undefined);
    assert.equal(await fileState(), "held");
    assert.equal(said.length, 1);
    assert.match(said[0], /^warn: could not take the database lock of stack "p" \(taking the deploy lock\b/);
    await assert.rejects(dbLockStatus(closed), (e: Error) => /^reading the deploy lock\b/.test(e.message));
    assert.ok(
      said[0].endsWith(
        "): only this checkout's file lock is held, so a deploy from another clone is not excluded",
      ),
      said[0],
    );
    assert.ok(!said[0].includes(pg.password), "no password in the warning");
    await unreachable.release();
    assert.equal(await fileState(), "free");

    const { db, url } = await fresh();
    const both = await acquireDeployLocks(file, { url });
    assert.equal(await fileState(), "held");
    assert.deepEqual(
      (await holders(db)).map((h) => h.pid),
      [both.db!.holder.backendPid],
    );
    delete process.env[DB_LOCK_ENV]; // as another clone would be
    await assert.rejects(
      acquireDeployLocks({ stateDir: join(work, "other"), stack: "p" }, { url }),
      CheckFailedError,
    );
    assert.equal(
      (await lockStatus({ stateDir: join(work, "other"), stack: "p" })).state,
      "free",
      "the refused clone's file lock is released",
    );
    process.env[DB_LOCK_ENV] = String(both.db!.holder.backendPid);
    await both.release();
    await gone(db);
    assert.equal(await fileState(), "free");
  },
);

test(
  "an advisory lock with the same key in another database (the target's own sessions) is not the deploy lock",
  BOUND,
  async () => {
    // Advisory locks belong to one database: an application session on the target database that holds
    // the same 64-bit key (its own lock numbers, or a hash that collides) does not exclude a deploy, and
    // `lock release --force` must not end that application's session.
    const { db, url } = await fresh();
    const app = new Client({ connectionString: url });
    await app.connect();
    app.on("error", () => {});
    try {
      const [{ pid }] = (
        await app.query("SELECT pg_advisory_lock(hashtext($1)), pg_backend_pid() AS pid", [lockKey(db)])
      ).rows as Array<{ pid: number }>;
      assert.deepEqual(await dbLockStatus(url), { state: "free" });
      assert.deepEqual(await releaseDbLock(url, { terminate: true }), { state: "free" });
      const lock = await acquireDbLock({ databaseUrl: url, stack: "p" });
      try {
        assert.deepEqual(await dbLockStatus(url), {
          state: "held",
          holder: lock.holder,
          backendPid: lock.holder.backendPid,
        });
      } finally {
        await lock.release();
      }
      assert.deepEqual(await dbLockStatus(url), { state: "free" });
      const still = await pg.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM pg_stat_activity WHERE pid = $1",
        [pid],
      );
      assert.equal(still[0].n, 1, "the application's session was not ended");
    } finally {
      await app.end().catch(() => {});
    }
  },
);

test(
  "no PostgreSQL client tools on this machine: each entry point says to install them or set PG_BIN (the default target is local)",
  BOUND,
  async () => {
    const { url } = await fresh();
    const saved = process.env.PG_BIN;
    process.env.PG_BIN = join(work, "no-such-bin");
    try {
      const hint = (what: string) => (e: Error) => {
        assert.match(
          e.message,
          new RegExp(`^${what}: PostgreSQL client tools not found \\(.*\\); install them or set PG_BIN$`),
        );
        assert.ok(!e.message.includes(pg.password), "no password in the error");
        return true;
      };
      await assert.rejects(acquireDbLock({ databaseUrl: url, stack: "p" }), hint("taking the deploy lock"));
      await assert.rejects(dbLockStatus(url), hint("reading the deploy lock"));
      await assert.rejects(releaseDbLock(url), hint("reading the deploy lock"));
    } finally {
      if (saved === undefined) delete process.env.PG_BIN;
      else process.env.PG_BIN = saved;
    }
  },
);

test(
  "a stale holder row while another session holds the lock without a row: refused naming that session (not the stale row's holder, nor its stack), and a child pass needs the holder's own row",
  BOUND,
  async () => {
    const { db, url } = await fresh();
    const old = await acquireDbLock({ databaseUrl: url, stack: "old-stack", command: "safe-deploy up" });
    await pg.query("SELECT pg_terminate_backend($1)", [old.holder.backendPid]);
    await gone(db);
    delete process.env[DB_LOCK_ENV];
    const c = new Client({ connectionString: pg.url("postgres") });
    await c.connect();
    c.on("error", () => {});
    try {
      const [{ pid }] = (
        await c.query("SELECT pg_advisory_lock(hashtext($1)), pg_backend_pid() AS pid", [lockKey(db)])
      ).rows as Array<{ pid: number }>;
      const st = await dbLockStatus(url);
      assert.deepEqual(st, { state: "stale", holder: old.holder, backendPid: pid });
      const refused =
        `database "${db}" is locked by another deploy: a session of server process ${pid} that wrote no ` +
        "holder row yet. Wait for it to finish (`safe-deploy lock status --stack STACK`); a holder whose " +
        "session is gone is replaced by itself.";
      await assert.rejects(acquireDbLock({ databaseUrl: url, stack: "p" }), { message: refused });
      process.env[DB_LOCK_ENV] = String(pid);
      await assert.rejects(acquireDbLock({ databaseUrl: url, stack: "p" }), { message: refused });
    } finally {
      delete process.env[DB_LOCK_ENV];
      await c.end().catch(() => {});
      await old.release();
    }
  },
);

test("a refusal by a holder with a row names its stack in the status command to run", BOUND, async () => {
  const { db, url } = await fresh();
  const lock = await acquireDbLock({ databaseUrl: url, stack: "shop-prod", command: "safe-deploy up" });
  try {
    delete process.env[DB_LOCK_ENV];
    await assert.rejects(acquireDbLock({ databaseUrl: url, stack: "p" }), {
      message:
        `database "${db}" is locked by another deploy: ${describeDbHolder(lock.holder)}. Wait for it to ` +
        "finish (`safe-deploy lock status --stack shop-prod`); a holder whose session is gone is replaced by itself.",
    });
  } finally {
    process.env[DB_LOCK_ENV] = String(lock.holder.backendPid);
    await lock.release();
  }
});

test(
  "a session waiting for the lock is not its holder: status and release --force name the session that holds it",
  BOUND,
  async () => {
    const { db, url } = await fresh();
    // The waiter connects first, so its server process id is the lower one (min(pid) would pick it).
    const waiter = new Client({ connectionString: pg.url("postgres") });
    const holder = new Client({ connectionString: pg.url("postgres") });
    await waiter.connect();
    await holder.connect();
    waiter.on("error", () => {});
    holder.on("error", () => {});
    try {
      const [{ pid }] = (
        await holder.query("SELECT pg_advisory_lock(hashtext($1)), pg_backend_pid() AS pid", [lockKey(db)])
      ).rows as Array<{ pid: number }>;
      const [{ wpid }] = (await waiter.query("SELECT pg_backend_pid() AS wpid")).rows as Array<{
        wpid: number;
      }>;
      const waiting = waiter.query("SELECT pg_advisory_lock(hashtext($1))", [lockKey(db)]).catch(() => {});
      await until("the waiter to wait for the lock", async () => {
        const r = await pg.query(
          "SELECT 1 FROM pg_locks WHERE pid = $1 AND locktype = 'advisory' AND NOT granted",
          [wpid],
        );
        return r.length === 1;
      });
      assert.ok(wpid < pid, `the waiter's pid ${wpid} is below the holder's ${pid}`);
      assert.deepEqual(await dbLockStatus(url), { state: "held", backendPid: pid });
      assert.deepEqual(await releaseDbLock(url, { terminate: true }), { state: "held", backendPid: pid });
      await waiting;
      const alive = await pg.query("SELECT pid FROM pg_stat_activity WHERE pid = ANY($1) ORDER BY pid", [
        [wpid, pid],
      ]);
      assert.deepEqual(alive, [{ pid: wpid }], "the holder's session was ended, the waiter's kept");
    } finally {
      await waiter.end().catch(() => {});
      await holder.end().catch(() => {});
    }
  },
);

test(
  "a user who may not read the holder table or end the holder's session: each error names its step",
  BOUND,
  async () => {
    const { db, url } = await fresh();
    await pg.query("CREATE ROLE reader LOGIN PASSWORD 'reader-pw'").catch(() => {});
    const weak = `postgres://reader:reader-pw@${pg.host}:${pg.port}/${db}`;
    // A holder session without a table yet: the weak user reads the state, then may not end it.
    const c = new Client({ connectionString: pg.url("postgres") });
    await c.connect();
    c.on("error", () => {});
    try {
      await c.query("SELECT pg_advisory_lock(hashtext($1))", [lockKey(db)]);
      await assert.rejects(releaseDbLock(weak, { terminate: true }), (e: Error) =>
        /^ending the lock holder's session failed: ERROR: +must be a superuser to terminate superuser process/.test(
          e.message,
        ),
      );
    } finally {
      await c.end().catch(() => {});
    }
    await gone(db);
    // Once the table exists (created by its owner), a user without SELECT on it cannot read the lock.
    const lock = await acquireDbLock({ databaseUrl: url, stack: "p" });
    try {
      await assert.rejects(dbLockStatus(weak), (e: Error) =>
        e.message.startsWith(`reading the deploy lock: role "reader" may not read schema "safe_deploy"`),
      );
      // Allowed into the schema but not the table: the second read (the holder row) fails, named too.
      await pg.query('GRANT USAGE ON SCHEMA safe_deploy TO "reader"', [], db);
      await assert.rejects(dbLockStatus(weak), (e: Error) => {
        assert.match(e.message, /^reading the deploy lock\b.*deploy_lock/s);
        return true;
      });
    } finally {
      await lock.release();
    }
  },
);

test(
  "acquireDeployLocks told nothing (no warn, no info): the file lock alone, silently, instead of a TypeError",
  BOUND,
  async () => {
    const stateDir = join(work, "silent");
    const none = await acquireDeployLocks({ stateDir, stack: "p" }, undefined);
    await none.release();
    const closed = `postgres://${pg.user}:${pg.password}@127.0.0.1:${await freePort()}/x`;
    const unreachable = await acquireDeployLocks({ stateDir, stack: "p" }, { url: closed });
    assert.equal(unreachable.db, undefined);
    await unreachable.release();
    assert.equal((await lockStatus({ stateDir, stack: "p" })).state, "free");
  },
);

test("a stale holder row is replaced with a warning naming the gone holder", BOUND, async () => {
  const { db, url } = await fresh();
  const old = await acquireDbLock({ databaseUrl: url, stack: "p", command: "safe-deploy up", pid: 4242 });
  await pg.query("SELECT pg_terminate_backend($1)", [old.holder.backendPid]);
  await gone(db);
  delete process.env[DB_LOCK_ENV];
  const said: string[] = [];
  const next = await acquireDbLock({ databaseUrl: url, stack: "p", warn: (m) => said.push(m) });
  try {
    assert.deepEqual(said, [
      `replacing the stale deploy lock holder of database "${db}" (its session is gone): ${describeDbHolder(old.holder)}`,
    ]);
  } finally {
    await next.release();
    await old.release();
  }
  // Nobody to tell (no `warn`): the stale row is replaced all the same.
  const third = await acquireDbLock({ databaseUrl: url, stack: "p" });
  await pg.query("SELECT pg_terminate_backend($1)", [third.holder.backendPid]);
  await gone(db);
  delete process.env[DB_LOCK_ENV];
  assert.equal((await dbLockStatus(url)).state, "stale");
  const quiet = await acquireDbLock({ databaseUrl: url, stack: "p" });
  await quiet.release();
  await third.release();
});

test(
  "a deployer whose uid has no passwd entry (a container's bare uid): the owner is $USER, else 'unknown'",
  { ...BOUND, skip: process.getuid?.() !== 0 && "needs root to take another uid" },
  async () => {
    const { url } = await fresh();
    const user = process.env.USER;
    const as54321 = async (env: string | undefined) => {
      if (env === undefined) delete process.env.USER;
      else process.env.USER = env;
      process.seteuid!(54321);
      try {
        const h = await acquireDbLock({ databaseUrl: url, stack: "p" });
        await h.release();
        return h.holder.owner;
      } finally {
        process.seteuid!(0);
        if (user === undefined) delete process.env.USER;
        else process.env.USER = user;
      }
    };
    assert.equal(await as54321(undefined), "unknown");
    assert.equal(await as54321("carol"), "carol");
  },
);
