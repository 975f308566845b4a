// The deploy lock's edges that lock.test.ts does not reach (issue 22 part D, mutation survivors of
// src/core/release/lock.ts): pid probing, a user without a passwd entry, unreadable lock files, leftover
// temp files, the retry limit, and a stale lock replaced or removed between our read and our move.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import {
  chmodSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CheckFailedError } from "../../../src/core/errors";
import {
  acquireLock,
  lockPath,
  lockStatus,
  pidAlive,
  releaseLock,
  type LockInfo,
} from "../../../src/core/release/lock";

const base = mkdtempSync(join(tmpdir(), "sd-lock-edges-"));
after(() => rmSync(base, { recursive: true, force: true }));
let n = 0;
const freshDir = () => join(base, `s${++n}`);

const HOUR = 3600_000;
const T = new Date("2026-11-23T03:00:00.000Z");

const info = (over: Partial<LockInfo> = {}): LockInfo => ({
  id: "abc",
  stack: "p",
  owner: "alice",
  host: "elsewhere",
  pid: 4242,
  command: "safe-deploy up --stack p",
  startedAt: "2026-11-23T01:00:00.000Z",
  expiresAt: "2026-11-23T02:00:00.000Z",
  ...over,
});

function writeLock(stateDir: string, stack: string, i: LockInfo | string) {
  mkdirSync(join(stateDir, "locks"), { recursive: true });
  writeFileSync(lockPath(stateDir, stack), typeof i === "string" ? i : JSON.stringify(i));
}

const lockDir = (stateDir: string) => readdirSync(join(stateDir, "locks")).sort();

test("pidAlive: no pid, a negative or non-integer one is not a live process; this process is", () => {
  // process.kill(0) and kill(-1) would probe the process group / every process and say "alive".
  for (const pid of [0, -1, 1.5, Number.NaN, "1" as unknown as number])
    assert.equal(pidAlive(pid), false, String(pid));
  assert.equal(pidAlive(process.pid), true);
});

test("a lock whose pid field is no pid, on this host, is stale rather than held forever", async () => {
  const stateDir = freshDir();
  writeLock(stateDir, "p", info({ host: "web1", pid: 0, expiresAt: "2026-11-23T04:00:00.000Z" }));
  const st = await lockStatus({ stateDir, stack: "p", host: "web1", now: () => T });
  assert.equal(st.state, "stale");
  assert.match(st.state === "stale" ? st.reason : "", /process 0 on web1 is no longer running/);
});

test(
  "another user's process (EPERM) counts as alive; a user with no passwd entry is named by $USER, else unknown",
  { skip: process.getuid?.() !== 0 ? "needs root to change its effective uid" : false },
  async () => {
    // In this process, so Stryker sees the code run: only the effective uid changes (the real one stays
    // root, so it can come back); an effective uid other than 0 drops root's right to signal anyone.
    const stateDir = freshDir();
    mkdirSync(stateDir, { recursive: true });
    chmodSync(base, 0o711); // mkdtemp's 0700 would stop the other user on the way in
    chmodSync(stateDir, 0o777);
    const other = spawn("sleep", ["600"], { uid: 54322, gid: 54322, stdio: "ignore" });
    const user = process.env.USER;
    const as54321 = async (env: string | undefined, stack: string) => {
      if (env === undefined) delete process.env.USER;
      else process.env.USER = env;
      process.seteuid!(54321);
      try {
        const h = await acquireLock({ stateDir, stack });
        await h.release();
        return { owner: h.info.owner, other: pidAlive(other.pid!), self: pidAlive(process.pid) };
      } finally {
        process.seteuid!(0);
        if (user === undefined) delete process.env.USER;
        else process.env.USER = user;
      }
    };
    try {
      assert.deepEqual(await as54321(undefined, "a"), { owner: "unknown", other: true, self: true });
      assert.deepEqual(await as54321("carol", "b"), { owner: "carol", other: true, self: true });
    } finally {
      other.kill();
    }
  },
);

test("a lock file that is not a lock is shown as a placeholder holder and taken over with that named", async () => {
  const placeholder = {
    id: "",
    stack: "",
    owner: "?",
    host: "?",
    pid: 0,
    command: "?",
    startedAt: "?",
    expiresAt: "?",
  };
  for (const [i, text] of ["{not json", "null", "42", "[]", '"x"'].entries()) {
    const stateDir = freshDir();
    const stack = `g${i}`;
    writeLock(stateDir, stack, text);
    const st = await lockStatus({ stateDir, stack });
    assert.equal(st.state, "stale", text);
    assert.deepEqual(st.state === "stale" && st.info, placeholder, text);
    const warnings: string[] = [];
    const lock = await acquireLock({ stateDir, stack, warn: (m) => warnings.push(m) });
    assert.deepEqual(
      warnings,
      [
        `taking over the stale deploy lock of stack "${stack}" (its expiry is unreadable): ` +
          "? on ? (pid 0, `?`) since ?, until ?",
      ],
      text,
    );
    await lock.release();
    assert.deepEqual(lockDir(stateDir), [], "nothing left behind");
  }
});

test("a lock file that cannot be read is an error, never taken for a free lock", async () => {
  const stateDir = freshDir();
  mkdirSync(lockPath(stateDir, "d"), { recursive: true }); // a directory where the file should be
  await assert.rejects(lockStatus({ stateDir, stack: "d" }), { code: "EISDIR" });
  await assert.rejects(acquireLock({ stateDir, stack: "d" }), { code: "EISDIR" });
});

test("acquire writes the lock as readable JSON with defaults; renew pushes the expiry ttl from now; no temp file is left", async () => {
  const stateDir = freshDir();
  let clock = T;
  const lock = await acquireLock({ stateDir, stack: "p", now: () => clock });
  assert.equal(lock.info.command, "safe-deploy");
  assert.equal(lock.info.expiresAt, "2026-11-23T05:00:00.000Z", "two hours by default");
  assert.equal(readFileSync(lock.file, "utf8"), JSON.stringify(lock.info, null, 2) + "\n");
  assert.deepEqual(lockDir(stateDir), ["p.json"]);

  clock = new Date(T.getTime() + HOUR);
  await lock.renew(10 * 60_000);
  assert.equal(lock.info.expiresAt, "2026-11-23T04:10:00.000Z");
  assert.equal(readFileSync(lock.file, "utf8"), JSON.stringify(lock.info, null, 2) + "\n");
  await lock.renew();
  assert.equal(lock.info.expiresAt, "2026-11-23T06:00:00.000Z");
  assert.deepEqual(lockDir(stateDir), ["p.json"]);
  await lock.release();
  assert.deepEqual(lockDir(stateDir), []);
});

test("a stack is required; the refusal and the lost-lock errors name the command to check", async () => {
  const stateDir = freshDir();
  await assert.rejects(acquireLock({ stateDir, stack: "" }), (e: unknown) => {
    assert.ok(e instanceof CheckFailedError);
    assert.equal(e.message, "`--stack` is required to take the deploy lock");
    return true;
  });
  const first = await acquireLock({ stateDir, stack: "s" });
  await assert.rejects(
    acquireLock({ stateDir, stack: "s" }),
    /Wait for it to finish \(`safe-deploy lock status --stack s`\), or if it is dead, run `safe-deploy lock release --stack s --force`\.$/,
  );
  await releaseLock({ stateDir, stack: "s", force: true });
  await assert.rejects(
    first.renew(),
    /^CheckFailedError: the deploy lock of stack "s" is no longer held by this process \(released by force or taken over\); stop and check `safe-deploy lock status --stack s`\.$/,
  );
});

test("a stale lock is taken over without a warn callback", async () => {
  const stateDir = freshDir();
  writeLock(stateDir, "p", info());
  const lock = await acquireLock({ stateDir, stack: "p", now: () => T });
  assert.equal(lock.info.owner.length > 0, true);
  await lock.release();
});

test(
  "a lock path that never settles (a dangling link) gives up after a few tries, naming the file",
  { timeout: 60_000 },
  async () => {
    const stateDir = freshDir();
    mkdirSync(join(stateDir, "locks"), { recursive: true });
    const file = lockPath(stateDir, "d");
    symlinkSync(join(stateDir, "nowhere"), file);
    await assert.rejects(acquireLock({ stateDir, stack: "d" }), (e: unknown) => {
      assert.ok(e instanceof CheckFailedError);
      assert.equal(
        e.message,
        `could not take the deploy lock of stack "d" after several tries: another process keeps replacing ` +
          `${file}. Check \`safe-deploy lock status --stack d\`.`,
      );
      return true;
    });
    assert.deepEqual(lockDir(stateDir), ["d.json"], "no temp file left");
  },
);

/** A clock that runs `effect` once, on its `at`-th reading (acquireLock reads it at start, then per judgement). */
function clockWith(at: number, effect: () => void): () => Date {
  let reads = 0;
  return () => {
    if (++reads === at) effect();
    return T;
  };
}

test("a stale lock replaced by another taker between our read and our move is put back, not stolen", async () => {
  const fresh: Array<[string, Partial<LockInfo>]> = [
    ["new id and start", { id: "new", startedAt: "2026-11-23T02:59:00.000Z" }],
    ["same start, new id", { id: "new" }],
    ["same id, new start", { startedAt: "2026-11-23T02:59:00.000Z" }],
  ];
  for (const [what, over] of fresh) {
    const stateDir = freshDir();
    writeLock(stateDir, "p", info());
    const theirs = info({ owner: "bob", expiresAt: "2026-11-23T09:00:00.000Z", ...over });
    const warnings: string[] = [];
    await assert.rejects(
      acquireLock({
        stateDir,
        stack: "p",
        now: clockWith(2, () => writeLock(stateDir, "p", theirs)),
        warn: (m) => warnings.push(m),
      }),
      (e: unknown) =>
        e instanceof CheckFailedError && /locked by another deploy: bob on elsewhere/.test(e.message),
      what,
    );
    assert.deepEqual(warnings, [], what);
    assert.deepEqual(JSON.parse(readFileSync(lockPath(stateDir, "p"), "utf8")), theirs, what);
    assert.deepEqual(lockDir(stateDir), ["p.json"], `${what}: nothing left aside`);
  }
});

test("a stale lock removed by someone else between our read and our move: taken, with no takeover warning", async () => {
  const stateDir = freshDir();
  writeLock(stateDir, "p", info());
  const warnings: string[] = [];
  const lock = await acquireLock({
    stateDir,
    stack: "p",
    now: clockWith(2, () => unlinkSync(lockPath(stateDir, "p"))),
    warn: (m) => warnings.push(m),
  });
  assert.deepEqual(warnings, []);
  assert.equal(JSON.parse(readFileSync(lock.file, "utf8")).id, lock.info.id);
  await lock.release();
  assert.deepEqual(lockDir(stateDir), []);
});

test("lock release: the same user on another host needs --force; anyone may release a stale lock", async () => {
  const stateDir = freshDir();
  writeLock(stateDir, "p", info({ expiresAt: "2026-11-23T09:00:00.000Z" }));
  await assert.rejects(
    releaseLock({ stateDir, stack: "p", owner: "alice", host: "web9", now: () => T }),
    /belongs to alice on elsewhere .*not to alice on web9/,
  );
  const stale = info({ owner: "bob" });
  writeLock(stateDir, "p", stale);
  assert.deepEqual(
    await releaseLock({ stateDir, stack: "p", owner: "carol", host: "web9", now: () => T }),
    stale,
  );
  assert.deepEqual(lockDir(stateDir), []);
});
