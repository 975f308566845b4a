// The deploy lock when the file layer fails otherwise than the lock's own races (issue 22, lock.ts
// survivors): a `link` failing with something else than EEXIST, a `rename` with something else than
// ENOENT. lock.ts calls `fs.promises` through its module object, so the test swaps one call at a time.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { acquireLock, releaseLock } from "../../../src/core/release/lock";

const base = mkdtempSync(join(tmpdir(), "sd-lock-faults-"));
after(() => rmSync(base, { recursive: true, force: true }));
let n = 0;
const freshDir = () => join(base, `s${++n}`);

/** Runs `body` with every `fs.promises[name]` call failing with `code`. */
async function failing<K extends "link" | "rename", T>(
  name: K,
  code: string,
  body: () => Promise<T>,
): Promise<T> {
  const real = fs.promises[name];
  fs.promises[name] = (async () => {
    throw Object.assign(new Error(`${code}: injected, ${name}`), { code });
  }) as (typeof fs.promises)[K];
  try {
    return await body();
  } finally {
    fs.promises[name] = real;
  }
}

test("the lock file cannot be linked into place (EPERM): taking the lock fails with that error, no retry loop, no temp file left", async () => {
  const stateDir = freshDir();
  const err = await failing("link", "EPERM", () =>
    acquireLock({ stateDir, stack: "p" }).then(
      () => undefined,
      (e: Error & { code?: string }) => e,
    ),
  );
  assert.ok(err, "acquireLock failed");
  assert.equal(err.code, "EPERM");
  assert.equal(err.message, "EPERM: injected, link");
  assert.deepEqual(readdirSync(join(stateDir, "locks")), [], "no lock and no temp file");
});

test("a stale lock that cannot be moved aside (EBUSY): release fails with that error and the lock stays", async () => {
  const stateDir = freshDir();
  // Another host's deploy lock that expired at 02:00 on 2026-11-23.
  const held = await acquireLock({
    stateDir,
    stack: "p",
    owner: "alice",
    host: "elsewhere",
    now: () => new Date("2026-11-23T01:00:00.000Z"),
    ttlMs: 3600_000,
  });
  const file = held.file;
  const text = fs.readFileSync(file, "utf8");
  await assert.rejects(
    failing("rename", "EBUSY", () => releaseLock({ stateDir, stack: "p", force: true })),
    (e: Error & { code?: string }) => e.code === "EBUSY" && e.message === "EBUSY: injected, rename",
  );
  assert.equal(fs.readFileSync(file, "utf8"), text, "the lock is still in place");
  // Taking over the same stale lock fails alike, instead of five rounds and "another process keeps replacing".
  await assert.rejects(
    failing("rename", "EBUSY", () => acquireLock({ stateDir, stack: "p" })),
    (e: Error & { code?: string }) => e.code === "EBUSY",
  );
  assert.deepEqual(readdirSync(join(stateDir, "locks")), ["p.json"]);
});
