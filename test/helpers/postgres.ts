import { execFile, spawn, type ChildProcess } from "node:child_process";
import { accessSync, constants } from "node:fs";
import { chmod, chown, mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { Client } from "pg";

const run = promisify(execFile);

/** Where Debian's PostgreSQL 15 server binaries live (override with `PG_BIN`). */
export const PG_BIN = process.env.PG_BIN ?? "/usr/lib/postgresql/15/bin";

/**
 * PostgreSQL refuses to run as root; CI and dev machines here run tests as root, so the server runs as
 * the `postgres` user (Debian's package creates it) with its data directory handed over to it.
 */
async function serverUser(): Promise<{ uid: number; gid: number } | undefined> {
  if (process.getuid?.() !== 0) return undefined;
  const { stdout } = await run("id", ["-u", "postgres"]).catch(() => run("id", ["-u", "nobody"]));
  const uid = Number(stdout.trim());
  const { stdout: g } = await run("id", ["-g", String(uid)]);
  return { uid, gid: Number(g.trim()) };
}

/** A throwaway PostgreSQL server on 127.0.0.1 with a random port and a temp data directory. */
export interface TestPostgres {
  host: string;
  port: number;
  user: string;
  password: string;
  dataDir: string;
  /** `postgres://user:password@127.0.0.1:port/<db>`. */
  url(db?: string): string;
  /** Runs SQL in `db` (default `postgres`) and returns the rows. */
  query<T = Record<string, unknown>>(sql: string, params?: unknown[], db?: string): Promise<T[]>;
  /** Creates an empty database and returns its URL. */
  createDatabase(name: string): Promise<string>;
  /** Stops the server (fast shutdown) without deleting its data; `start()` brings it back. */
  stop(): Promise<void>;
  start(): Promise<void>;
  /** Stops the server and deletes its data directory. */
  close(): Promise<void>;
}

/** Asks the kernel for a free TCP port on 127.0.0.1. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** Servers this process started and has not stopped: stopped when it exits, however it exits. */
const live = new Set<ChildProcess>();
let exitHooked = false;

/**
 * A test file that dies (uncaught error, SIGTERM or SIGINT from the runner's timeout, `process.exit`) must
 * not leave its server running with no parent (issue 22: a hung file left one behind). "exit" covers
 * the ends node sees; for SIGKILL, which nobody sees, `setpriv --pdeathsig` makes the kernel tell the
 * server (see `start`).
 */
function hookExit(): void {
  if (exitHooked) return;
  exitHooked = true;
  process.on("exit", () => {
    for (const c of live) c.kill("SIGINT");
  });
  for (const sig of ["SIGTERM", "SIGINT", "SIGHUP"] as const) {
    const onSignal = () => {
      // Someone else handles it (the product under test catching Ctrl-C in this process): the process
      // lives on, and so do its servers; "exit" stops them when it does end.
      if (process.listenerCount(sig) > 1) return;
      for (const c of live) c.kill("SIGINT");
      // Then die of the same signal, as without this handler.
      process.removeListener(sig, onSignal);
      process.kill(process.pid, sig);
    };
    process.on(sig, onSignal);
  }
}

/** `setpriv --pdeathsig SIGINT --` when util-linux's setpriv is there: the server's fast shutdown when this process dies. */
const PDEATH = ["/usr/bin/setpriv", "/bin/setpriv"].find((p) => {
  try {
    accessSync(p, constants.X_OK);
    return true;
  } catch {
    return false;
  }
});

async function waitReady(port: number, user: string, password: string, child: ChildProcess): Promise<void> {
  const deadline = Date.now() + 30_000;
  let last: unknown;
  while (Date.now() < deadline) {
    if (child.exitCode !== null)
      throw new Error(`postgres exited with code ${child.exitCode} while starting`);
    const c = new Client({ host: "127.0.0.1", port, user, password, database: "postgres" });
    try {
      await c.connect();
      await c.end();
      return;
    } catch (e) {
      last = e;
      await c.end().catch(() => {});
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw new Error(`postgres on port ${port} did not become ready in 30 s: ${String(last)}`);
}

/**
 * Starts a PostgreSQL 15 server for one test file. Password authentication (scram) is on, so tests
 * exercise the same credentials path as production. Call `close()` in `after()`.
 */
export async function startPostgres(
  opts: {
    user?: string;
    password?: string;
    /** `logical` lets the server keep logical replication slots (issue 20); default: PostgreSQL's `replica`. */
    walLevel?: "replica" | "logical";
  } = {},
): Promise<TestPostgres> {
  const user = opts.user ?? "tester";
  const password = opts.password ?? `pw-${Math.random().toString(36).slice(2, 12)}`;
  const dataDir = await mkdtemp(join(tmpdir(), "sd-pg-"));
  const owner = await serverUser();
  const pwFile = join(dataDir, "..", `${dataDir.split("/").pop()}.pw`);
  await writeFile(pwFile, password + "\n");
  await chmod(pwFile, 0o600);
  if (owner) {
    await chown(dataDir, owner.uid, owner.gid);
    await chown(pwFile, owner.uid, owner.gid);
  }
  const initdbArgs = ["-D", dataDir, "-U", user, "--pwfile", pwFile, "-A", "scram-sha-256", "-E", "UTF8"];
  const initdbEnv = { ...process.env, LC_ALL: "C.UTF-8" };
  await run(join(PG_BIN, "initdb"), [...initdbArgs, "--no-sync"], { env: initdbEnv, ...owner }).finally(() =>
    rm(pwFile, { force: true }),
  );
  const port = await freePort();
  let child: ChildProcess | undefined;
  const settings = opts.walLevel ? ["-c", `wal_level=${opts.walLevel}`] : [];

  const start = async () => {
    const args = [
      "-D",
      dataDir,
      "-p",
      String(port),
      "-h",
      "127.0.0.1",
      "-k",
      dataDir,
      "-c",
      "fsync=off",
      ...settings,
    ];
    const postgres = join(PG_BIN, "postgres");
    // setpriv execs postgres (same pid), after the uid change, so the parent-death signal stays armed.
    child = PDEATH
      ? spawn(PDEATH, ["--pdeathsig", "SIGINT", "--", postgres, ...args], {
          stdio: ["ignore", "ignore", "pipe"],
          env: initdbEnv,
          ...owner,
        })
      : spawn(postgres, args, { stdio: ["ignore", "ignore", "pipe"], env: initdbEnv, ...owner });
    const c = child;
    live.add(c);
    hookExit();
    c.once("exit", () => live.delete(c));
    child.stderr?.resume();
    await waitReady(port, user, password, child);
  };
  const stop = async () => {
    const c = child;
    if (!c || c.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      c.once("exit", () => resolve());
      c.kill("SIGINT");
    });
  };
  await start();

  const url = (db = "postgres") =>
    `postgres://${encodeURIComponent(user)}:${encodeURIComponent(password)}@127.0.0.1:${port}/${db}`;
  const query = async <T>(sql: string, params: unknown[] = [], db = "postgres"): Promise<T[]> => {
    const c = new Client({ connectionString: url(db) });
    await c.connect();
    try {
      return (await c.query(sql, params)).rows as T[];
    } finally {
      await c.end();
    }
  };
  return {
    host: "127.0.0.1",
    port,
    user,
    password,
    dataDir,
    url,
    query,
    createDatabase: async (name) => {
      await query(`CREATE DATABASE "${name.replace(/"/g, '""')}"`);
      return url(name);
    },
    stop,
    start,
    close: async () => {
      await stop();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** The scratch databases a restore test (`verify --restore-test`) left on `pg`. */
export async function scratchDatabases(pg: TestPostgres): Promise<string[]> {
  const rows = await pg.query<{ datname: string }>(
    "SELECT datname FROM pg_database WHERE datname LIKE 'safe_deploy_verify_%'",
  );
  return rows.map((r) => r.datname);
}
