import { test, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { hostname, tmpdir, userInfo } from "node:os";
import { join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { CheckFailedError } from "../../../src/core/errors";
import {
  acquireLock,
  describeHolder,
  lockPath,
  lockStatus,
  releaseLock,
  staleReason,
  type LockInfo,
} from "../../../src/core/release/lock";

const root = resolve(__dirname, "..", "..", "..");
const base = mkdtempSync(join(tmpdir(), "sd-lock-"));
after(() => rmSync(base, { recursive: true, force: true }));
let n = 0;
const freshDir = () => join(base, `s${++n}`);

const info = (over: Partial<LockInfo> = {}): LockInfo => ({
  id: "abc",
  stack: "production",
  owner: "alice",
  host: "web1",
  pid: 4242,
  command: "safe-deploy up --stack production",
  startedAt: "2026-11-23T02:00:00.000Z",
  expiresAt: "2026-11-23T04:00:00.000Z",
  ...over,
});

test("staleReason: expired, dead pid on this host, unreadable expiry; live otherwise", () => {
  const now = new Date("2026-11-23T03:00:00Z");
  const alive = (pid: number) => pid === 4242;
  const cases: Array<[LockInfo, string, RegExp | undefined]> = [
    [info(), "web1", undefined],
    [info({ pid: 999 }), "web1", /process 999 on web1 is no longer running/],
    [info({ pid: 999 }), "web2", undefined], // another host: its pid can't be probed, the expiry decides
    [info({ expiresAt: "2026-11-23T03:00:00.000Z" }), "web2", /expired at 2026-11-23 03:00:00 UTC/],
    [info({ expiresAt: "soon" }), "web1", /unreadable/],
  ];
  for (const [i, host, want] of cases) {
    const got = staleReason(i, now, host, alive);
    if (want) assert.match(got ?? "", want);
    else assert.equal(got, undefined);
  }
});

test("describeHolder names who, where, what, since and until, in UTC", () => {
  assert.equal(
    describeHolder(info()),
    "alice on web1 (pid 4242, `safe-deploy up --stack production`) since 2026-11-23 02:00:00 UTC, until 2026-11-23 04:00:00 UTC",
  );
});

test("lockPath keeps org/project/stack names in one directory", () => {
  assert.equal(lockPath("/s", "acme/shop/production"), "/s/locks/acme%2Fshop%2Fproduction.json");
});

test("acquire, refuse a second taker naming the holder, renew, release", async () => {
  const stateDir = freshDir();
  const lock = await acquireLock({ stateDir, stack: "staging", command: "safe-deploy up --stack staging" });
  const onDisk = JSON.parse(readFileSync(lockPath(stateDir, "staging"), "utf8"));
  assert.deepEqual(onDisk, lock.info);
  assert.equal(onDisk.pid, process.pid);
  assert.equal(onDisk.host, hostname());
  assert.equal(onDisk.owner, userInfo().username);
  assert.equal(Date.parse(onDisk.expiresAt) - Date.parse(onDisk.startedAt), 2 * 60 * 60 * 1000);

  await assert.rejects(acquireLock({ stateDir, stack: "staging" }), (e: unknown) => {
    assert.ok(e instanceof CheckFailedError);
    assert.equal(e.exitCode, 1);
    assert.match(
      e.message,
      /stack "staging" is locked by another deploy: \S+ on \S+ \(pid \d+, `safe-deploy up/,
    );
    assert.match(e.message, /since \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC, until /);
    assert.match(e.message, /safe-deploy lock release --stack staging --force/);
    return true;
  });
  // Another stack is independent.
  const other = await acquireLock({ stateDir, stack: "production" });
  await other.release();

  const st = await lockStatus({ stateDir, stack: "staging" });
  assert.equal(st.state, "held");
  await lock.renew(60_000);
  const renewed = JSON.parse(readFileSync(lockPath(stateDir, "staging"), "utf8"));
  assert.ok(Date.parse(renewed.expiresAt) < Date.parse(onDisk.expiresAt));
  await lock.release();
  assert.equal((await lockStatus({ stateDir, stack: "staging" })).state, "free");
  assert.equal(existsSync(lockPath(stateDir, "staging")), false);
  await lock.release(); // twice is harmless
});

test("an expired lock is taken over with a warning; the old holder's release then leaves the new lock alone", async () => {
  const stateDir = freshDir();
  let clock = new Date("2026-11-23T01:00:00Z");
  const old = await acquireLock({ stateDir, stack: "p", ttlMs: 1000, now: () => clock, host: "elsewhere" });
  clock = new Date("2026-11-23T01:00:02Z");
  const st = await lockStatus({ stateDir, stack: "p", now: () => clock });
  assert.equal(st.state, "stale");
  const warnings: string[] = [];
  const taker = await acquireLock({ stateDir, stack: "p", now: () => clock, warn: (m) => warnings.push(m) });
  assert.equal(warnings.length, 1);
  assert.match(
    warnings[0],
    /taking over the stale deploy lock of stack "p" \(it expired at 2026-11-23 01:00:01 UTC\)/,
  );
  await old.release();
  assert.equal((await lockStatus({ stateDir, stack: "p", now: () => clock })).state, "held");
  await assert.rejects(old.renew(), /no longer held by this process/);
  await taker.release();
  assert.equal((await lockStatus({ stateDir, stack: "p" })).state, "free");
});

test("release by another user or host is refused unless forced; the owner may release", async () => {
  const stateDir = freshDir();
  writeLock(
    stateDir,
    "prod",
    info({
      stack: "prod",
      host: "web9",
      pid: process.pid,
      expiresAt: new Date(Date.now() + 3600_000).toISOString(),
    }),
  );
  await assert.rejects(releaseLock({ stateDir, stack: "prod", owner: "bob", host: "web9" }), (e: unknown) => {
    assert.ok(e instanceof CheckFailedError);
    assert.match(e.message, new RegExp(`belongs to alice on web9 \\(pid ${process.pid}`));
    assert.match(e.message, /not to bob on web9/);
    assert.match(e.message, /--force/);
    return true;
  });
  assert.equal((await lockStatus({ stateDir, stack: "prod" })).state, "held");
  const released = await releaseLock({ stateDir, stack: "prod", owner: "bob", host: "web9", force: true });
  assert.equal(released?.owner, "alice");
  assert.equal((await lockStatus({ stateDir, stack: "prod" })).state, "free");
  assert.equal(await releaseLock({ stateDir, stack: "prod" }), undefined);

  writeLock(
    stateDir,
    "prod",
    info({
      stack: "prod",
      host: "web9",
      pid: process.pid,
      expiresAt: new Date(Date.now() + 3600_000).toISOString(),
    }),
  );
  assert.equal(
    (await releaseLock({ stateDir, stack: "prod", owner: "alice", host: "web9" }))?.owner,
    "alice",
  );
});

test("a lock file holding JSON that is no lock (null) counts as stale too, instead of blocking every taker", async () => {
  const stateDir = freshDir();
  mkdirSync(join(stateDir, "locks"), { recursive: true });
  writeFileSync(lockPath(stateDir, "y"), "null\n");
  assert.equal((await lockStatus({ stateDir, stack: "y" })).state, "stale");
  const warnings: string[] = [];
  const lock = await acquireLock({ stateDir, stack: "y", warn: (m) => warnings.push(m) });
  assert.match(warnings[0], /unreadable/);
  await lock.release();
});

test("a corrupt lock file counts as stale and is taken over", async () => {
  const stateDir = freshDir();
  mkdirSync(join(stateDir, "locks"), { recursive: true });
  writeFileSync(lockPath(stateDir, "x"), "{not json");
  const warnings: string[] = [];
  const lock = await acquireLock({ stateDir, stack: "x", warn: (m) => warnings.push(m) });
  assert.match(warnings[0], /unreadable/);
  await lock.release();
});

function writeLock(stateDir: string, stack: string, i: LockInfo) {
  mkdirSync(join(stateDir, "locks"), { recursive: true });
  writeFileSync(lockPath(stateDir, stack), JSON.stringify(i));
}

/** A real child process competing for the lock (test/helpers/lock-child.ts). */
function child(stateDir: string, stack: string, mode: "hold" | "die") {
  const p = spawn(
    process.execPath,
    ["--import", "tsx", join(root, "test/helpers/lock-child.ts"), stateDir, stack, mode],
    {
      cwd: root,
      stdio: ["pipe", "pipe", "pipe"],
    },
  ) as ChildProcessWithoutNullStreams;
  const lines: Array<Record<string, unknown>> = [];
  const waiters: Array<() => void> = [];
  createInterface({ input: p.stdout }).on("line", (l) => {
    lines.push(JSON.parse(l));
    for (const w of waiters.splice(0)) w();
  });
  let stderr = "";
  p.stderr.on("data", (c) => (stderr += c));
  const exited = new Promise<number | null>((r) => p.on("exit", (code) => r(code)));
  return {
    p,
    lines,
    exited,
    stderr: () => stderr,
    async waitLines(count: number) {
      while (lines.length < count) await new Promise<void>((r) => waiters.push(r));
      return lines;
    },
  };
}

test("four processes race for one lock: exactly one wins, every loser's message names the winner", async () => {
  const stateDir = freshDir();
  const kids = Array.from({ length: 4 }, () => child(stateDir, "race", "hold"));
  try {
    await Promise.all(kids.map((k) => k.waitLines(1)));
    for (const k of kids) k.p.stdin.write("go\n");
    const outcomes = await Promise.all(kids.map(async (k) => (await k.waitLines(2))[1]));
    const winners = outcomes.filter((o) => "won" in o);
    const losers = outcomes.filter((o) => "lost" in o);
    assert.equal(winners.length, 1, JSON.stringify(outcomes));
    assert.equal(losers.length, 3);
    const winnerPid = winners[0].won as number;
    for (const l of losers) {
      assert.match(
        String(l.message),
        new RegExp(
          `locked by another deploy: \\S+ on ${hostname()} \\(pid ${winnerPid}, \`safe-deploy up --stack race\`\\)`,
        ),
      );
    }
    const st = await lockStatus({ stateDir, stack: "race" });
    assert.equal(st.state, "held");
    assert.equal(st.state === "held" && st.info.pid, winnerPid);
  } finally {
    for (const k of kids) k.p.stdin.end();
    const codes = await Promise.all(kids.map((k) => k.exited));
    assert.deepEqual(codes, [0, 0, 0, 0], kids.map((k) => k.stderr()).join("\n"));
  }
  assert.equal((await lockStatus({ stateDir, stack: "race" })).state, "free");
});

test("a lock left by a process that died is taken over, with a warning naming it", async () => {
  const stateDir = freshDir();
  const k = child(stateDir, "crash", "die");
  await k.waitLines(1);
  k.p.stdin.write("go\n");
  const [, won] = await k.waitLines(2);
  assert.equal(await k.exited, 0);
  const deadPid = won.won as number;
  const st = await lockStatus({ stateDir, stack: "crash" });
  assert.equal(st.state, "stale");
  assert.match(
    st.state === "stale" ? st.reason : "",
    new RegExp(`process ${deadPid} on .+ is no longer running`),
  );
  const warnings: string[] = [];
  const lock = await acquireLock({ stateDir, stack: "crash", warn: (m) => warnings.push(m) });
  assert.equal(lock.info.pid, process.pid);
  assert.equal(warnings.length, 1);
  assert.match(
    warnings[0],
    new RegExp(`process ${deadPid} on \\S+ is no longer running\\): \\S+ on \\S+ \\(pid ${deadPid},`),
  );
  await lock.release();
});
