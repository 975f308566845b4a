import { test, after, before } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { runMigrate } from "../../src/cli/commands/migrate";
import { CheckFailedError } from "../../src/core/errors";
import { startPostgres, type TestPostgres } from "../helpers/postgres";

const root = resolve(__dirname, "..", "..");
const work = mkdtempSync(join(tmpdir(), "sd-lockdb-"));
let pg: TestPostgres;
before(async () => {
  pg = await startPostgres();
});
after(async () => {
  await pg?.close();
  rmSync(work, { recursive: true, force: true });
});

/** A deploy from another clone (its own state dir, its own process) holding the database lock until its stdin ends. */
async function deployInAnotherClone(stateDir: string, url: string) {
  const p = spawn(
    process.execPath,
    ["--import", "tsx", join(root, "test/helpers/db-lock-child.ts"), stateDir, "production", url],
    { cwd: root, stdio: ["pipe", "pipe", "pipe"] },
  ) as ChildProcessWithoutNullStreams;
  const lines: Array<Record<string, unknown>> = [];
  const waiters: Array<() => void> = [];
  createInterface({ input: p.stdout }).on("line", (l) => {
    lines.push(JSON.parse(l));
    for (const w of waiters.splice(0)) w();
  });
  const exited = new Promise<void>((r) => p.on("exit", () => r()));
  const wait = async (n: number) => {
    while (lines.length < n) await new Promise<void>((r) => waiters.push(r));
  };
  await wait(1);
  p.stdin.write("go\n");
  await wait(2);
  assert.ok("won" in lines[1], JSON.stringify(lines[1]));
  return { p, exited };
}

test("`migrate up` while a deploy from another clone holds the database lock is refused (exit 1) naming the holder", async () => {
  const url = await pg.createDatabase("shop");
  const stateDir = join(work, "clone", ".safe-deploy");
  const { p, exited } = await deployInAnotherClone(stateDir, url);
  const o = {
    action: "up",
    tool: "node-pg-migrate",
    dir: "test/fixtures/migrations/npm",
    workDir: root,
    databaseUrl: url,
    out: () => {},
  };
  try {
    await assert.rejects(runMigrate(o), (e: unknown) => {
      assert.ok(e instanceof CheckFailedError, String(e));
      assert.equal(e.exitCode, 1);
      assert.match(e.message, /^database "shop" is locked by another deploy: /);
      assert.ok(e.message.includes(`(pid ${p.pid}, \`safe-deploy up --stack production\`, stack production`));
      assert.ok(e.message.includes(`checkout ${stateDir} at 0123456789ab`), e.message);
      return true;
    });
    const applied = await pg.query(`SELECT to_regclass('public.pgmigrations') AS t`, [], "shop");
    assert.equal(applied[0].t, null, "no migration ran");
  } finally {
    p.stdin.end();
    await exited;
  }
  // Once the deploy is done, the same command runs.
  await runMigrate(o);
});

test("`lock status --database-url` shows the database holder; `lock release --force` clears a stale holder row", async () => {
  const { runLock } = await import("../../src/cli/commands/lock");
  const { acquireDbLock, dbLockStatus } = await import("../../src/core/release/db-lock");
  const url = await pg.createDatabase("status");
  const stateDir = join(work, "status", ".safe-deploy");
  const lock = await acquireDbLock({
    databaseUrl: url,
    stack: "production",
    command: "safe-deploy up",
    commit: "abc",
  });
  const out: string[] = [];
  const w = { write: (s: string) => out.push(s) };
  const r = await runLock({ action: "status", stack: "production", stateDir, databaseUrl: url, out: w });
  assert.equal((r.database as { state: string }).state, "held");
  assert.equal(out[0], 'stack "production" is not locked\n');
  assert.match(
    out[1],
    new RegExp(
      `^database lock: held by \\S+ on \\S+ \\(pid ${process.pid}, \`safe-deploy up\`, stack production, checkout .+ at abc\\) since .+ UTC\\n$`,
    ),
  );
  // A live holder is not cleared, even with --force.
  await assert.rejects(
    runLock({ action: "release", stack: "production", stateDir, databaseUrl: url, force: true, out: w }),
    /held by a live session/,
  );
  // The holder's session ends without deleting its row (a killed deploy): the row is stale, --force clears it.
  await pg.query(`SELECT pg_terminate_backend($1)`, [lock.holder.backendPid]);
  while ((await dbLockStatus(url)).state === "held") await new Promise((res) => setTimeout(res, 50));
  await runLock({ action: "release", stack: "production", stateDir, databaseUrl: url, force: true, out: w });
  const rows = await pg.query(`SELECT count(*)::int AS n FROM safe_deploy.deploy_lock`, [], "status");
  assert.equal(rows[0].n, 0);
  await lock.release();
});

test("`backup restore` while a deploy from another clone holds the database lock is refused, the database untouched (issue 15)", async () => {
  const { runBackupCreate, runBackupRestore } = await import("../../src/cli/commands/backup");
  const url = await pg.createDatabase("shop2");
  await pg.query("CREATE TABLE t (id int); INSERT INTO t VALUES (1)", [], "shop2");
  const dir = join(work, "restore-backups");
  const file = await runBackupCreate({ databaseUrl: url, dir, compression: "none" } as never, () => {});
  await pg.query("INSERT INTO t VALUES (2)", [], "shop2");
  const stateDir = join(work, "clone2", ".safe-deploy");
  const { p, exited } = await deployInAnotherClone(stateDir, url);
  const o = { file, databaseUrl: url, yes: true, dir };
  try {
    await assert.rejects(
      runBackupRestore(o, () => {}),
      (e: unknown) => {
        assert.ok(e instanceof CheckFailedError, String(e));
        assert.match(e.message, /^database "shop2" is locked by another deploy: /);
        return true;
      },
    );
    const rows = await pg.query<{ n: string }>("SELECT count(*) AS n FROM t", [], "shop2");
    assert.equal(rows[0].n, "2", "the live database was not replaced");
  } finally {
    p.stdin.end();
    await exited;
  }
  // Once the deploy is done, the restore runs.
  await runBackupRestore(o, () => {});
  const rows = await pg.query<{ n: string }>("SELECT count(*) AS n FROM t", [], "shop2");
  assert.equal(rows[0].n, "1");
});
