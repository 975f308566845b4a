// A character whose UTF-8 bytes arrive in two reads of a tool's output (a pipe hands over what has been
// written so far: 64 kB of psql output can end mid-character) must be read whole. Each read decoded on
// its own gave two U+FFFD instead: a table "café" in the per-table sums, a role in the roles lookup,
// a word of a tool's error. The stand-in tools write "caf" and the first byte of "é", then wait on a
// fifo; the test lets them write the second byte once node has handed over that first read (seen by a
// listener of its own on the child's stream, the product's having had the same chunk).
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { within } from "../../helpers/bounded";
import { withEnv } from "../../helpers/env";
import { standinPgBin } from "../../helpers/pg-bin";
import { parseDatabaseUrl, watch } from "../../../src/core/backup/runner";
import { runSql } from "../../../src/core/backup/session";
import { runShell } from "../../../src/core/migrations/runner";

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), "sd-utf8-chunks-"));
});
after(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

// The product calls spawn through the module object (compiled to CommonJS), so a wrapper here sees it.
const cp = require("node:child_process") as typeof import("node:child_process");

/** Resolves once the next child spawned has handed node its first read of `stream`. */
function firstRead(stream: "stdout" | "stderr"): Promise<void> {
  const orig = cp.spawn;
  return new Promise((resolve) => {
    cp.spawn = ((...args: unknown[]) => {
      cp.spawn = orig;
      const child = (orig as (...a: unknown[]) => ChildProcess)(...args);
      child[stream]!.once("data", () => resolve());
      return child;
    }) as typeof orig;
  });
}

/**
 * A shell script writing "café" to `fd` (1 or 2) with a pause inside "é", and `release(read)`, which
 * lets it write the rest once `read` (the first read of its output) has happened.
 */
function split(name: string, fd: 1 | 2) {
  const go = join(dir, `${name}.go`);
  execFileSync("mkfifo", [go]);
  const to = fd === 2 ? " >&2" : "";
  const script = `printf 'caf\\303'${to}; read x < '${go}'; printf '\\251\\n'${to}`;
  const release = async (read: Promise<void>) => {
    await within(`the first read of the stand-in's output (${name})`, read);
    writeFileSync(go, "go\n");
  };
  return { script, release };
}

test("runSql: a character split between two reads of psql's output comes back whole", async () => {
  const s = split("runsql", 1);
  const bin = standinPgBin(join(dir, "bin"), { psql: `cat > /dev/null\n${s.script}` });
  const conn = parseDatabaseUrl("postgres://u@127.0.0.1/d");
  const out = await withEnv({ PG_BIN: bin }, async () => {
    const read = firstRead("stdout");
    const p = runSql({ runIn: "local" }, conn, "SELECT 1;", "reading");
    await s.release(read);
    return within("runSql", p);
  });
  assert.equal(out, "café\n");
});

test("watch: a tool's stderr split inside a character is read whole", async () => {
  const s = split("watch", 2);
  const child = spawn("/bin/sh", ["-c", s.script], { stdio: ["ignore", "ignore", "pipe"] });
  const w = watch(child);
  await s.release(new Promise((resolve) => child.stderr!.once("data", () => resolve())));
  assert.equal(await within("the stand-in's exit", w.done), 0);
  assert.equal(w.stderr(), "café\n");
});

test("runShell: a migration tool's output split inside a character is read whole", async () => {
  const s = split("shell", 1);
  const read = firstRead("stdout");
  const p = runShell(s.script, { cwd: dir, env: {}, secrets: [] });
  await s.release(read);
  const r = await within("the tool", p);
  assert.equal(r.code, 0);
  assert.equal(r.output, "café\n");
});
