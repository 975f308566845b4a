import { test, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { runLock } from "../../src/cli/commands/lock";
import { acquireLock, lockPath } from "../../src/core/release/lock";

const root = resolve(__dirname, "..", "..");
const work = mkdtempSync(join(tmpdir(), "sd-lockcli-"));
after(() => rmSync(work, { recursive: true, force: true }));

function cli(...args: string[]) {
  const r = spawnSync(join(root, "bin", "safe-deploy"), args, {
    cwd: work,
    encoding: "utf8",
    timeout: 60_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** A live lock of another user on this host (our own pid keeps it from looking stale). */
function foreignLock(stack: string) {
  mkdirSync(join(work, ".safe-deploy", "locks"), { recursive: true });
  const now = Date.now();
  writeFileSync(
    lockPath(join(work, ".safe-deploy"), stack),
    JSON.stringify({
      id: "f00d",
      stack,
      owner: "alice",
      host: hostname(),
      pid: process.pid,
      command: `safe-deploy up --stack ${stack}`,
      startedAt: new Date(now).toISOString(),
      expiresAt: new Date(now + 3600_000).toISOString(),
    }),
  );
}

test("runLock status and release report free, held and released, as text and JSON", async () => {
  const stateDir = join(work, "direct");
  const out: string[] = [];
  const w = { write: (s: string) => out.push(s) };
  await runLock({ action: "status", stack: "s", stateDir, out: w });
  const lock = await acquireLock({ stateDir, stack: "s", command: "safe-deploy up --stack s" });
  const held = await runLock({ action: "status", stack: "s", stateDir, out: w, json: true });
  assert.equal(held.state, "held");
  await runLock({ action: "status", stack: "s", stateDir, out: w });
  await runLock({ action: "release", stack: "s", stateDir, out: w });
  await runLock({ action: "release", stack: "s", stateDir, out: w });
  assert.equal(out[0], 'stack "s" is not locked\n');
  assert.equal(JSON.parse(out[1]).info.id, lock.info.id);
  assert.match(
    out[2],
    new RegExp(
      `^stack "s" is locked by \\S+ on ${hostname()} \\(pid ${process.pid}, \`safe-deploy up --stack s\`\\) since .+ UTC, until .+ UTC\\n$`,
    ),
  );
  assert.match(out[3], /^released the deploy lock of stack "s" held by /);
  assert.equal(out[4], 'stack "s" was not locked\n');
});

test("bin/safe-deploy lock: exit codes and messages of the command-line contract", () => {
  foreignLock("production");
  const status = cli("lock", "status", "--stack", "production");
  assert.equal(status.code, 0, status.stderr);
  assert.match(
    status.stdout,
    /stack "production" is locked by alice on \S+ \(pid \d+, `safe-deploy up --stack production`\)/,
  );

  const refused = cli("lock", "release", "--stack", "production");
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /belongs to alice on .*--stack production --force/);
  assert.ok(existsSync(lockPath(join(work, ".safe-deploy"), "production")));

  const forced = cli("lock", "release", "--stack", "production", "--force", "--json");
  assert.equal(forced.code, 0, forced.stderr);
  assert.equal(JSON.parse(forced.stdout).released.owner, "alice");
  assert.ok(!existsSync(lockPath(join(work, ".safe-deploy"), "production")));

  const free = cli("lock", "status", "--stack", "production", "--json");
  assert.equal(free.code, 0);
  assert.equal(JSON.parse(free.stdout).state, "free");

  const usage = cli("lock", "status");
  assert.equal(usage.code, 2);
  assert.match(usage.stderr, /required option '--stack <name>'/);
});

test("lock status and release find the state dir under --project-dir, as up/status/rollback do", async () => {
  const project = join(work, "project");
  const lock = await acquireLock({
    stateDir: join(project, ".safe-deploy"),
    stack: "staging",
    command: "safe-deploy up --stack staging",
  });
  const status = cli("lock", "status", "--stack", "staging", "--project-dir", project, "--json");
  assert.equal(status.code, 0, status.stderr);
  assert.equal(JSON.parse(status.stdout).state, "held");
  assert.equal(JSON.parse(status.stdout).info.id, lock.info.id);

  const out: string[] = [];
  const w = { write: (s: string) => out.push(s) };
  await acquireLock({ stateDir: join(project, "state"), stack: "s", command: "safe-deploy up --stack s" });
  const held = await runLock({
    action: "status",
    stack: "s",
    projectDir: project,
    stateDir: "state",
    out: w,
  });
  assert.equal(held.state, "held");
  const released = cli("lock", "release", "--stack", "staging", "--project-dir", project);
  assert.equal(released.code, 0, released.stderr);
  assert.match(released.stdout, /^released the deploy lock of stack "staging"/);
  assert.ok(!existsSync(lockPath(join(project, ".safe-deploy"), "staging")));
});
