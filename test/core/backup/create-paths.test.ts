// Issue 22, session 13: the two paths of create.ts that create-edges.test.ts left to chance. A write
// that fails after pg_dump has failed on its own (pg_dump's error is the one told), and an archive the
// stream reader follows through its table of contents and then cannot (a version 1 manifest, counted
// and summed by the server). One server; stand-in pg_dump scripts that run the real one.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { withEnv } from "../../helpers/env";
import { until } from "../../helpers/bounded";
import { exited, standinPgBin } from "../../helpers/pg-bin";
import { PG_BIN, startPostgres, type TestPostgres } from "../../helpers/postgres";
import { createBackup } from "../../../src/core/backup/create";
import { CannotRunError } from "../../../src/core/errors";

const fsp = require("node:fs/promises") as typeof import("node:fs/promises");

let pg: TestPostgres;
let dir: string;

before(async () => {
  pg = await startPostgres();
  await pg.createDatabase("shop");
  await pg.query(
    `CREATE TABLE items (id int PRIMARY KEY, name text);
     INSERT INTO items SELECT g, 'n' || g FROM generate_series(1, 50) g;
     CREATE TABLE notes (id int, body text);
     INSERT INTO notes VALUES (1, 'a'), (2, 'b');`,
    [],
    "shop",
  );
  dir = mkdtempSync(join(tmpdir(), "sd-create-paths-"));
});
after(async () => {
  await pg?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** The version call goes to the real pg_dump; `rest` handles the dump itself. */
const dumpScript = (rest: string) =>
  `case "$1" in --version) exec "${PG_BIN}/pg_dump" --version;; esac\n${rest}`;

/**
 * The whole dump is written, then pg_dump ends as `tail` says; the backup's first write to its file
 * waits until that pg_dump is gone, then fails with EIO: the error told must be pg_dump's, `told`.
 */
async function lateWriteFailure(name: string, tail: string, told: string) {
  const pidFile = join(dir, `${name}.pid`);
  const bin = standinPgBin(join(dir, name), {
    pg_dump: dumpScript(`echo $$ > "${pidFile}"\n"${PG_BIN}/pg_dump" "$@"\n${tail}`),
  });
  const fh = await fsp.open(__filename, "r");
  const proto = Object.getPrototypeOf(fh) as { write: (...a: unknown[]) => Promise<unknown> };
  await fh.close();
  const write = proto.write;
  proto.write = async () => {
    const pid = Number(readFileSync(pidFile, "utf8"));
    await until("the stand-in pg_dump to exit", () => exited(pid));
    throw Object.assign(new Error("EIO: i/o error, write"), { code: "EIO" });
  };
  const d = join(dir, `${name}-out`);
  try {
    await assert.rejects(
      withEnv({ PG_BIN: bin }, () => createBackup({ databaseUrl: pg.url("shop"), dir: d })),
      (e: Error) => e instanceof CannotRunError && e.message === told,
    );
  } finally {
    proto.write = write;
  }
  assert.deepEqual(readdirSync(d), []);
}

test("a write that fails after pg_dump failed on its own: pg_dump's error is told, not the write's", () =>
  lateWriteFailure(
    "failing",
    'echo "pg_dump: error: query failed: ERROR:  canceling statement due to conflict with recovery" >&2\nexit 1',
    "pg_dump failed: pg_dump: error: query failed: ERROR:  canceling statement due to conflict with recovery",
  ));

test("a write that fails after pg_dump was killed by a signal (the OOM killer): pg_dump's end is told, not the write's", () =>
  lateWriteFailure(
    "killed",
    'echo "pg_dump: stand-in killed" >&2\nkill -KILL $$',
    "pg_dump failed: pg_dump: stand-in killed",
  ));

test("an archive the reader follows past its table of contents, then cannot: counts and sums from the server, version 1, no encoding", async () => {
  // The real archive, then one more data block for items (one row, which the reader counts and sums
  // in place of the 50 it read) and a block of a type no pg_dump writes.
  const tmp = join(dir, "dump.tmp");
  const bin = standinPgBin(join(dir, "extra-block"), {
    pg_dump: dumpScript(
      [
        `"${PG_BIN}/pg_dump" "$@" > "${tmp}" || exit 1`,
        `id=$("${PG_BIN}/pg_restore" -l "${tmp}" | sed -n 's/^\\([0-9]*\\); .* TABLE DATA public items .*/\\1/p')`,
        `cat "${tmp}"`,
        `b() { printf "\\\\$(printf %03o "$1")"; }`,
        "b 1; b 0; b $((id & 255)); b $((id >> 8 & 255)); b 0; b 0",
        "b 0; b 6; b 0; b 0; b 0; printf '999\\tx\\n'",
        "b 0; b 0; b 0; b 0; b 0",
        "b 9; b 0; b 0; b 0; b 0; b 0",
      ].join("\n"),
    ),
  });
  const r = await withEnv({ PG_BIN: bin }, () =>
    createBackup({ databaseUrl: pg.url("shop"), dir: join(dir, "v1") }),
  );
  assert.equal(r.manifest.version, 1);
  assert.deepEqual(r.manifest.rowCounts, { "public.items": 50, "public.notes": 2 });
  assert.equal(r.manifest.encoding, undefined, "a version 1 manifest names no encoding");
  assert.deepEqual(Object.keys(r.manifest.tableChecksums ?? {}).sort(), ["public.items", "public.notes"]);
});
