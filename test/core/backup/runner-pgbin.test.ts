// Which client tools run (issue 22, session 13: survivors of runner.ts that needed a second PostgreSQL
// install): the newest version under a Debian-style root, picked from staged trees in a temp dir, and
// which `stdbuf` wraps pg_dump, from stand-in ones on PATH. In this process, no server.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { localPgBin, parseDatabaseUrl, spawnPg, watch } from "../../../src/core/backup/runner";
import { withEnv } from "../../helpers/env";

const dir = mkdtempSync(join(tmpdir(), "sd-pgbin-"));
after(() => rmSync(dir, { recursive: true, force: true }));

/** Writes an executable shell script. */
function script(path: string, body: string): void {
  mkdirSync(join(path, ".."), { recursive: true });
  writeFileSync(path, `#!/bin/sh\n${body}\n`);
  chmodSync(path, 0o755);
}

/** A root of per-version directories; each listed version gets `bin/pg_dump` unless told `bin/` only. */
function pgRoot(name: string, versions: Record<string, "pg_dump" | "empty bin">): string {
  const root = join(dir, name);
  mkdirSync(root);
  for (const [v, has] of Object.entries(versions)) {
    if (has === "pg_dump") script(join(root, v, "bin", "pg_dump"), "exit 0");
    else mkdirSync(join(root, v, "bin"), { recursive: true });
  }
  return root;
}

test("localPgBin: the newest major version that has pg_dump, by number; none, or no root, is undefined", async () => {
  await withEnv({ PG_BIN: undefined }, async () => {
    // readdir lists 10, 11, 12, 9: the newest is 11 by number (12 has no pg_dump), not the first or last name.
    const several = pgRoot("several", {
      "9": "pg_dump",
      "10": "pg_dump",
      "11": "pg_dump",
      "12": "empty bin",
    });
    assert.equal(localPgBin(several), join(several, "11", "bin"));
    // Only directories named by a major version count: an old-style 9.6, and names with other characters.
    const odd = pgRoot("odd", { "9.6": "pg_dump", x14: "pg_dump", "14x": "pg_dump", "8": "empty bin" });
    assert.equal(localPgBin(odd), undefined);
    assert.equal(localPgBin(pgRoot("empty", {})), undefined);
    assert.equal(localPgBin(join(dir, "no-such-root")), undefined);
    // PG_BIN still wins over any root.
    await withEnv({ PG_BIN: "/opt/pg/bin" }, async () => assert.equal(localPgBin(several), "/opt/pg/bin"));
  });
});

/** A PG_BIN whose pg_dump prints its arguments and the stdbuf setting it runs under. */
const bin = join(dir, "bin");
script(join(bin, "pg_dump"), 'echo "ARGS:$* STDBUF:$_STDBUF_O"');

/** A stand-in stdbuf in `d` that says it ran (as `name`), then runs the tool as coreutils' would. */
function standinStdbuf(d: string, name: string): void {
  script(join(d, "stdbuf"), `echo "STANDIN:${name} $1"\nshift\nexec "$@"`);
}

/** pg_dump spawned with PATH set as given (undefined: unset), run to its end: its output. */
async function dumpWithPath(path: string | undefined): Promise<string> {
  return withEnv({ PG_BIN: bin, PATH: path }, async () => {
    const child = spawnPg({ runIn: "local" }, "pg_dump", ["-Fc"], parseDatabaseUrl("postgres://h/app"));
    let out = "";
    child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
    child.stdin!.end();
    assert.equal(await watch(child).done, 0);
    return out;
  });
}

test("stdbuf: the first one on PATH in an absolute directory wraps pg_dump; a relative directory is passed over", async () => {
  const abs = join(dir, "abs");
  standinStdbuf(abs, "abs");
  assert.equal(await dumpWithPath(`${abs}:/usr/bin:/bin`), "STANDIN:abs -o1M\nARGS:-Fc STDBUF:\n");
  // A relative PATH entry is resolved against the current directory, which is not where the tools are.
  const cwd = process.cwd();
  standinStdbuf(join(dir, "rel"), "rel");
  process.chdir(dir);
  try {
    assert.equal(await dumpWithPath(`rel:${abs}`), "STANDIN:abs -o1M\nARGS:-Fc STDBUF:\n");
  } finally {
    process.chdir(cwd);
  }
});

test("stdbuf: without PATH, coreutils' own in /usr/bin or /bin; none on PATH, pg_dump runs unwrapped", async () => {
  assert.equal(await dumpWithPath(undefined), "ARGS:-Fc STDBUF:1048576\n");
  const none = join(dir, "none");
  mkdirSync(none);
  assert.equal(await dumpWithPath(none), "ARGS:-Fc STDBUF:\n");
});
