import { test, after, before } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { createBackup, restoreBackup } from "../../../src/core/backup";
import { acquireDbLock, dbLockStatus, lockKey, releaseDbLock } from "../../../src/core/release/db-lock";
import { startPostgres, type TestPostgres } from "../../helpers/postgres";
import { killLeftPsqlSessions, until, within } from "../../helpers/bounded";

const root = resolve(__dirname, "..", "..", "..");

/** Every wait has its own bound (bounded.ts): a test that never gets its lock freed fails, not hangs. */
const BOUND = { timeout: 90_000 };
const work = mkdtempSync(join(tmpdir(), "sd-dblock-"));
let pg: TestPostgres;
let url: string;
before(async () => {
  pg = await startPostgres();
  url = await pg.createDatabase("shop");
});
/** The clones started: a test that fails half-way leaves none behind holding the lock or this process. */
const clones: ChildProcessWithoutNullStreams[] = [];
after(async () => {
  for (const p of clones) if (p.exitCode === null && p.signalCode === null) p.kill("SIGKILL");
  await pg?.close();
  killLeftPsqlSessions();
  rmSync(work, { recursive: true, force: true });
});

/** A "clone": a separate process with its own state directory (test/helpers/db-lock-child.ts). */
function clone(name: string) {
  const stateDir = join(work, name, ".safe-deploy");
  const p = spawn(
    process.execPath,
    ["--import", "tsx", join(root, "test/helpers/db-lock-child.ts"), stateDir, "production", url],
    { cwd: root, stdio: ["pipe", "pipe", "pipe"] },
  ) as ChildProcessWithoutNullStreams;
  clones.push(p);
  const lines: Array<Record<string, unknown>> = [];
  const waiters: Array<() => void> = [];
  createInterface({ input: p.stdout }).on("line", (l) => {
    lines.push(JSON.parse(l));
    for (const w of waiters.splice(0)) w();
  });
  let stderr = "";
  p.stderr.on("data", (c) => (stderr += c));
  const exit = new Promise<void>((r) => p.on("exit", () => r()));
  // A clone that exits without its line (a crash) ends the wait for it at once, with its stderr.
  void exit.then(() => {
    for (const w of waiters.splice(0)) w();
  });
  const line = async (n: number) => {
    await within(
      `clone ${name}'s line ${n}`,
      (async () => {
        while (lines.length < n) {
          if (p.exitCode !== null || p.signalCode !== null)
            throw new Error(`clone ${name} exited without its line ${n}: ${stderr}`);
          await new Promise<void>((r) => waiters.push(r));
        }
      })(),
    );
  };
  return {
    p,
    stateDir,
    exited: () => within(`clone ${name} to exit`, exit),
    stderr: () => stderr,
    /** Says "go" and returns the outcome line. */
    async attempt() {
      await line(1);
      p.stdin.write("go\n");
      await line(2);
      return lines[1];
    },
  };
}

/** Server processes holding the deploy lock of `shop` (pg_locks spans the whole server). */
async function lockHolders(): Promise<number[]> {
  const rows = await pg.query<{ pid: number }>(
    `SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 1
       AND ((classid::bigint << 32) | objid::bigint) = hashtext($1)::bigint`,
    [lockKey("shop")],
  );
  return rows.map((r) => r.pid);
}

test(
  "a second clone is refused naming the first holder; a killed holder's session frees the lock and the next replaces its stale row",
  BOUND,
  async () => {
    const a = clone("a");
    const won = await a.attempt();
    assert.ok("won" in won, JSON.stringify(won) + a.stderr());
    assert.deepEqual(await lockHolders(), [won.backendPid]);

    const b = clone("b");
    const lost = await b.attempt();
    assert.ok("lost" in lost, JSON.stringify(lost));
    const msg = String(lost.message);
    assert.match(msg, /^database "shop" is locked by another deploy: /);
    assert.ok(msg.includes(`on ${hostname()} (pid ${a.p.pid}, \`safe-deploy up --stack production\``), msg);
    assert.ok(msg.includes(`checkout ${a.stateDir} at 0123456789ab`), msg);
    assert.match(msg, /since \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC/);
    await b.exited();

    const st = await dbLockStatus(url);
    assert.equal(st.state, "held");
    assert.equal(st.state === "held" && st.holder?.pid, a.p.pid);

    a.p.kill("SIGKILL");
    await a.exited();
    // The psql child sees its stdin close and ends the session; wait for the server to drop the lock.
    await until("the killed holder's lock to be freed", async () => !(await lockHolders()).length);
    const stale = await dbLockStatus(url);
    assert.equal(stale.state, "stale");

    const c = clone("c");
    const next = await c.attempt();
    assert.ok("won" in next, JSON.stringify(next) + c.stderr());
    const warnings = next.warnings as string[];
    assert.equal(warnings.length, 1, warnings.join("\n"));
    assert.match(
      warnings[0],
      /^replacing the stale deploy lock holder of database "shop" \(its session is gone\): /,
    );
    assert.ok(warnings[0].includes(`(pid ${a.p.pid},`), warnings[0]);
    c.p.stdin.end();
    await c.exited();
    assert.deepEqual(await lockHolders(), []);
    assert.equal((await dbLockStatus(url)).state, "free");
  },
);

test(
  "the deploy's own restore is not refused by its lock, and the lock survives the restore's swap",
  BOUND,
  async () => {
    const lock = await acquireDbLock({ databaseUrl: url, stack: "production", command: "safe-deploy up" });
    try {
      await pg.query("CREATE TABLE t (id int); INSERT INTO t VALUES (1), (2)", [], "shop");
      const b = await createBackup({ databaseUrl: url, dir: join(work, "backups"), label: "pre-deploy" });
      const r = await restoreBackup(b.file, { databaseUrl: url });
      assert.ok(r.previousDatabase, "the restore swapped the database");
      assert.deepEqual(await lockHolders(), [lock.holder.backendPid]);
    } finally {
      await lock.release();
    }
    assert.deepEqual(await lockHolders(), []);
  },
);

test("lock release: a live holder is refused without terminate; a stale row is cleared", BOUND, async () => {
  const lock = await acquireDbLock({ databaseUrl: url, stack: "production", command: "safe-deploy up" });
  try {
    await assert.rejects(releaseDbLock(url), /held by a live session: .*needs `--force`/);
    assert.deepEqual(await lockHolders(), [lock.holder.backendPid]);
    await releaseDbLock(url, { terminate: true });
    await until("the terminated holder's lock to be freed", async () => !(await lockHolders()).length);
    assert.equal((await dbLockStatus(url)).state, "free");
  } finally {
    await within("the lock's release", lock.release());
  }
});
