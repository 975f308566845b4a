// The deploy lock where every deployer meets (issue 15): a session-level advisory lock on the stack's
// PostgreSQL server, with a holder row in `safe_deploy.deploy_lock` of the target database saying who,
// from where and since when. The file lock (lock.ts) only excludes deploys from the same checkout.
import * as os from "node:os";
import { parseDatabaseUrl, withDatabase, type Conn, type RunTarget } from "../backup/runner";
import { psqlSession, runSql } from "../backup/session";
import { literal } from "../database/quote";
import { CheckFailedError } from "../errors";
import { acquireLock, type LockHandle, type LockOptions } from "./lock";

/** Who holds (or held) the database lock of a database, as its row says. */
export interface DbHolder {
  stack: string;
  owner: string;
  host: string;
  pid: number;
  command: string;
  checkout: string;
  commit: string;
  since: string;
  /** The server process of the session holding the advisory lock. */
  backendPid: number;
}

/** Where the lock lives and who asks for it. */
export interface DbLockOptions {
  databaseUrl: string;
  target?: RunTarget;
  stack: string;
  command?: string;
  checkout?: string;
  commit?: string;
  owner?: string;
  host?: string;
  pid?: number;
  /** Told when a stale holder row is replaced. */
  warn?: (message: string) => void;
}

/** A held database lock. */
export interface DbLockHandle {
  readonly holder: DbHolder;
  /** Deletes the holder row and closes the session (which frees the advisory lock). */
  release(): Promise<void>;
}

/** What `dbLockStatus` finds: `stale` is a row whose session no longer holds the lock. */
export type DbLockState =
  | { state: "free" }
  | { state: "held"; holder?: DbHolder; backendPid: number }
  | {
      state: "stale";
      holder: DbHolder;
      /** Another session holding the lock without a row yet (0: none). */ backendPid: number;
    };

/**
 * Set in the environment of the deploy's children (the migration command runs `safe-deploy migrate up`):
 * the backend pid of the session holding the lock, so a child of the holder is not refused by it.
 */
export const DB_LOCK_ENV = "SAFE_DEPLOY_DB_LOCK";

/**
 * The advisory lock key's text, hashed by the server (`hashtext`). One key per database, not per stack:
 * `migrate` and `backup restore` know only a URL, and two stacks on one database collide anyway. Distinct
 * from the restore's (`safe-deploy:restore:`) and backup's keys, so a deploy's own restore is not refused.
 */
export function lockKey(database: string): string {
  return `safe-deploy:deploy:${database}`;
}

/**
 * The session holding the lock is on the server's maintenance database, not the target: a restore ends
 * every session of the target database and renames it, which would free the lock mid-deploy.
 */
const lockConn = (conn: Conn) => withDatabase(conn, conn.database === "postgres" ? "template1" : "postgres");

const DDL = `CREATE SCHEMA IF NOT EXISTS safe_deploy;
CREATE TABLE IF NOT EXISTS safe_deploy.deploy_lock (
  lock_key text PRIMARY KEY, stack text NOT NULL, owner text NOT NULL, host text NOT NULL, pid integer NOT NULL,
  command text NOT NULL, checkout text NOT NULL, commit text NOT NULL, since timestamptz NOT NULL DEFAULT now(),
  backend_pid integer NOT NULL);`;

/**
 * The deploy lock's entry in pg_locks: granted, of `key`, in the lock session's database. pg_locks spans
 * every database of the server while an advisory lock belongs to one: the same key held by a session of
 * another database (the application's own locks) is not the deploy lock.
 */
const lockRowSql = (key: string, lockDb: string) =>
  `l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 AND ` +
  `l.database = (SELECT oid FROM pg_database WHERE datname = ${literal(lockDb)}) AND ` +
  `((l.classid::bigint << 32) | l.objid::bigint) = hashtext(${literal(key)})::bigint`;

/** Is the advisory lock of `key` held by `pidExpr`'s session? */
const holdsSql = (key: string, lockDb: string, pidExpr: string) =>
  `EXISTS (SELECT 1 FROM pg_locks l WHERE ${lockRowSql(key, lockDb)} AND l.pid = ${pidExpr})`;

/** The holder row of `key` and whether its session still holds the lock, as one JSON line. */
const rowSql = (key: string, lockDb: string) =>
  `SELECT 'ROW:' || coalesce((SELECT row_to_json(x)::text FROM (SELECT stack, owner, host, pid, command, checkout,
  commit, to_char(since AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') || ' UTC' AS since, backend_pid AS "backendPid",
  ${holdsSql(key, lockDb, "d.backend_pid")} AS live
  FROM safe_deploy.deploy_lock d WHERE lock_key = ${literal(key)}) x), 'null');`;

/** Whether the table exists, and the server process holding the advisory lock of `key` (empty when free). */
const holderSql = (key: string, lockDb: string) =>
  `SELECT 'TABLE:' || (to_regclass('safe_deploy.deploy_lock') IS NOT NULL);
SELECT 'HOLDER:' || coalesce((SELECT min(l.pid) FROM pg_locks l WHERE ${lockRowSql(key, lockDb)})::text, '');`;

const field = (text: string, prefix: string) =>
  text
    .split("\n")
    .find((l) => l.startsWith(prefix))
    ?.slice(prefix.length) ?? "";

/** The sentence naming a database lock's holder: who, where, what, from which checkout and commit, since when. */
export function describeDbHolder(h: DbHolder): string {
  return (
    `${h.owner} on ${h.host} (pid ${h.pid}, \`${h.command}\`${h.stack ? `, stack ${h.stack}` : ""}, checkout ${h.checkout} at ` +
    `${h.commit.slice(0, 12) || "unknown commit"}) since ${h.since}`
  );
}

async function readState(target: RunTarget, conn: Conn): Promise<DbLockState> {
  const key = lockKey(conn.database);
  const lockDb = lockConn(conn).database;
  const first = await runSql(target, conn, holderSql(key, lockDb), "reading the deploy lock");
  const backendPid = Number(field(first, "HOLDER:")) || 0;
  const out =
    field(first, "TABLE:") === "true"
      ? await runSql(target, conn, rowSql(key, lockDb), "reading the deploy lock")
      : "";
  const row = JSON.parse(field(out, "ROW:") || "null") as (DbHolder & { live: boolean }) | null;
  if (row) {
    const { live, ...holder } = row;
    if (live) return { state: "held", holder, backendPid: holder.backendPid };
    return { state: "stale", holder, backendPid };
  }
  return backendPid ? { state: "held", backendPid } : { state: "free" };
}

/** Status of the database lock of `databaseUrl`: free, held (and by whom), or a stale holder row. */
export async function dbLockStatus(
  databaseUrl: string,
  target: RunTarget = { runIn: "local" },
): Promise<DbLockState> {
  return readState(target, parseDatabaseUrl(databaseUrl));
}

function refusal(database: string, st: DbLockState): CheckFailedError {
  const who =
    st.state === "held" && st.holder
      ? describeDbHolder(st.holder)
      : `a session of server process ${st.state === "free" ? "?" : st.backendPid} that wrote no holder row yet`;
  return new CheckFailedError(
    `database "${database}" is locked by another deploy: ${who}. Wait for it to finish ` +
      `(\`safe-deploy lock status --stack ${st.state === "held" && st.holder?.stack ? st.holder.stack : "STACK"}\`); ` +
      "a holder whose session is gone is replaced by itself.",
  );
}

/**
 * Takes the database lock: `pg_try_advisory_lock` on a session kept open until `release` (a killed
 * process frees it with its session), then writes the holder row, replacing a stale one with a warning.
 * Refuses with a CheckFailedError naming the holder. A child of the holder (`DB_LOCK_ENV`) gets a no-op handle.
 */
export async function acquireDbLock(opts: DbLockOptions): Promise<DbLockHandle> {
  const target = opts.target ?? { runIn: "local" };
  const conn = parseDatabaseUrl(opts.databaseUrl);
  const key = lockKey(conn.database);
  const session = psqlSession(target, lockConn(conn), "taking the deploy lock");
  const text = await session.send(
    [`SELECT 'LOCK:' || pg_try_advisory_lock(hashtext(${literal(key)})) || ':' || pg_backend_pid();`],
    "__LOCK__",
  );
  const [won, pidText] = field(text, "LOCK:").split(":");
  if (won !== "true") {
    await session.end().catch(() => {});
    const st = await readState(target, conn);
    const inherited = Number(process.env[DB_LOCK_ENV]);
    const holderPid = st.state === "free" ? 0 : st.backendPid;
    if (inherited && holderPid === inherited && st.state === "held" && st.holder) {
      return { holder: st.holder, release: async () => {} };
    }
    throw refusal(conn.database, st);
  }
  const holder: DbHolder = {
    stack: opts.stack,
    owner: opts.owner ?? currentUser(),
    host: opts.host ?? os.hostname(),
    pid: opts.pid ?? process.pid,
    command: opts.command ?? "safe-deploy",
    checkout: opts.checkout ?? process.cwd(),
    commit: opts.commit ?? "",
    since: "",
    backendPid: Number(pidText),
  };
  try {
    const before = await readState(target, conn);
    if (before.state === "stale") {
      opts.warn?.(
        `replacing the stale deploy lock holder of database "${conn.database}" (its session is gone): ` +
          describeDbHolder(before.holder),
      );
    }
    const v = [
      key,
      holder.stack,
      holder.owner,
      holder.host,
      String(holder.pid),
      holder.command,
      holder.checkout,
      holder.commit,
    ];
    const out = await runSql(
      target,
      conn,
      `${DDL}
INSERT INTO safe_deploy.deploy_lock (lock_key, stack, owner, host, pid, command, checkout, commit, backend_pid)
VALUES (${v.map(literal).join(", ")}, ${holder.backendPid})
ON CONFLICT (lock_key) DO UPDATE SET stack = EXCLUDED.stack, owner = EXCLUDED.owner, host = EXCLUDED.host,
  pid = EXCLUDED.pid, command = EXCLUDED.command, checkout = EXCLUDED.checkout, commit = EXCLUDED.commit,
  since = now(), backend_pid = EXCLUDED.backend_pid;
SELECT 'SINCE:' || to_char(since AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') || ' UTC' FROM safe_deploy.deploy_lock
  WHERE lock_key = ${literal(key)};`,
      "writing the deploy lock holder",
    );
    holder.since = field(out, "SINCE:");
  } catch (e) {
    await session.end().catch(() => {});
    throw e;
  }
  process.env[DB_LOCK_ENV] = String(holder.backendPid);
  return {
    holder,
    async release() {
      if (process.env[DB_LOCK_ENV] === String(holder.backendPid)) delete process.env[DB_LOCK_ENV];
      await runSql(
        target,
        conn,
        `DELETE FROM safe_deploy.deploy_lock WHERE lock_key = ${literal(key)} AND backend_pid = ${holder.backendPid};`,
        "removing the deploy lock holder",
      ).catch(() => {});
      await session.end().catch(() => {});
    },
  };
}

/**
 * `lock release --force` for the database: deletes a stale holder row. A live holder is refused unless
 * `terminate` (the CLI asks first): then its session is ended with pg_terminate_backend.
 */
export async function releaseDbLock(
  databaseUrl: string,
  o: { target?: RunTarget; terminate?: boolean } = {},
): Promise<DbLockState> {
  const target = o.target ?? { runIn: "local" };
  const conn = parseDatabaseUrl(databaseUrl);
  const key = lockKey(conn.database);
  const st = await readState(target, conn);
  if (st.state === "free") return st;
  if (st.state === "held") {
    if (!o.terminate) {
      throw new CheckFailedError(
        `the database lock of "${conn.database}" is held by a live session: ` +
          `${st.holder ? describeDbHolder(st.holder) : `server process ${st.backendPid}`}. Ending that deploy's ` +
          "session needs `--force` and typing the database name at the prompt.",
      );
    }
    const pid = st.backendPid;
    await runSql(
      target,
      conn,
      `SELECT pg_terminate_backend(${Number(pid)});`,
      "ending the lock holder's session",
    );
  }
  await runSql(
    target,
    conn,
    `DELETE FROM safe_deploy.deploy_lock WHERE lock_key = ${literal(key)};`,
    "removing the deploy lock holder",
  ).catch(() => {});
  return st;
}

function currentUser(): string {
  try {
    return os.userInfo().username;
  } catch {
    return process.env.USER ?? "unknown";
  }
}

/** Both deploy locks of one run: the checkout's file lock, then the database's (absent before the database exists). */
export interface DeployLocks {
  file: LockHandle;
  db?: DbLockHandle;
  /** Releases the database lock, then the file lock. */
  release(): Promise<void>;
}

/**
 * Takes the file lock (local state), then the database lock (every clone). `database` undefined means the
 * database does not exist yet (the first deploy of a container-mode stack creates it): the file lock
 * alone guards that run, and `info` says so. A refused or failed database lock releases the file lock.
 */
export async function acquireDeployLocks(
  file: LockOptions,
  database: { url: string; target?: RunTarget } | undefined,
  o: { checkout?: string; commit?: string; info?: (m: string) => void } = {},
): Promise<DeployLocks> {
  const fileLock = await acquireLock(file);
  if (!database) {
    (o.info ?? file.warn)?.(
      `the database of stack "${file.stack}" does not exist yet (this deploy creates it): only this ` +
        "checkout's file lock is held, so a deploy from another clone is not excluded until it exists",
    );
    return { file: fileLock, release: () => fileLock.release() };
  }
  let db: DbLockHandle;
  try {
    db = await acquireDbLock({
      databaseUrl: database.url,
      target: database.target,
      stack: file.stack,
      command: file.command,
      checkout: o.checkout,
      commit: o.commit,
      warn: file.warn,
    });
  } catch (e) {
    // Refused: another deploy holds it. Unreachable (a stopped or missing database container): the file
    // lock alone, warned, so `recover` and the deploy that brings the database back can still run.
    if (e instanceof CheckFailedError) {
      await fileLock.release();
      throw e;
    }
    file.warn?.(
      `could not take the database lock of stack "${file.stack}" (${(e as Error).message}): only this ` +
        "checkout's file lock is held, so a deploy from another clone is not excluded",
    );
    return { file: fileLock, release: () => fileLock.release() };
  }
  return {
    file: fileLock,
    db,
    async release() {
      await db.release();
      await fileLock.release();
    },
  };
}
