// Issue 22, session 13: how verify.ts feeds pg_restore and tells its failures, in this process without a
// server (survivors of session 10 that verify-checks.test.ts left): the archive file pg_restore reads
// itself (a parallel restore), a backup file that fails while it is read, a pg_restore that closes its
// input early and succeeds, a wrapper whose pg_restore is missing (exit 127), and pg_restore's first
// line of stderr. The tools are stand-in scripts under PG_BIN; the backup's reads go through a wrapped
// `fs.createReadStream`, which verify.ts calls through the module object.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { until, within } from "../../helpers/bounded";
import { withEnv } from "../../helpers/env";
import { exited, standinPgBin } from "../../helpers/pg-bin";
import { restoreArchiveFile, restoreStream, verifyBackup } from "../../../src/core/backup/verify";
import { parseDatabaseUrl, type RunTarget } from "../../../src/core/backup/runner";
import type { Manifest } from "../../../src/core/backup/manifest";
import { CannotRunError, CheckFailedError } from "../../../src/core/errors";

const fs = require("node:fs") as typeof import("node:fs");

const local: RunTarget = { runIn: "local" };
const conn = parseDatabaseUrl("postgres://verify@127.0.0.1/verify");
let dir: string;

before(() => {
  dir = mkdtempSync(join(tmpdir(), "sd-verify-stages-"));
});
after(() => {
  // A stand-in a failed case left waiting (on its input or a full output pipe) would keep this process alive.
  for (const l of execFileSync("ps", ["-o", "pid=,args=", "--ppid", String(process.pid)], {
    encoding: "utf8",
  }).split("\n")) {
    if (l.includes(dir)) process.kill(Number(l.trim().split(/\s+/)[0]));
  }
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** A backup file of `bytes` and the manifest that matches it. */
function backup(
  name: string,
  bytes: Buffer,
  compression: "none" | "zstd" = "none",
): { file: string; m: Manifest } {
  const file = join(dir, name);
  writeFileSync(file, bytes);
  const m = {
    version: 2,
    file: name,
    sha256: createHash("sha256").update(bytes).digest("hex"),
    sizeBytes: bytes.length,
    compression,
    rowCounts: {},
  } as unknown as Manifest;
  writeFileSync(`${file}.json`, JSON.stringify(m));
  return { file, m };
}

/** Runs `f` with PG_BIN holding `pg_restore` as the script given. */
function withPgRestore<T>(name: string, script: string, f: () => Promise<T>): Promise<T> {
  return withEnv({ PG_BIN: standinPgBin(join(dir, name), { pg_restore: script }) }, f);
}

/** Runs `f` with every `fs.createReadStream` answered by `make()` instead. */
async function withReads<T>(make: () => Readable, f: () => Promise<T>): Promise<T> {
  const saved = fs.createReadStream;
  (fs as { createReadStream: unknown }).createReadStream = make;
  try {
    return await f();
  } finally {
    (fs as { createReadStream: unknown }).createReadStream = saved;
  }
}

test("restoreArchiveFile: pg_restore gets the archive as its last argument, no input, its output drained; a failure names the backup", async () => {
  const args = join(dir, "args");
  // Reads its input to the end and writes 1 MB: a pg_restore waiting on an open input or a full
  // output pipe would never exit.
  const script = `echo "$*" > "${args}"\ncat > /dev/null\nhead -c 1000000 /dev/zero\nprintf "%s" "$STANDIN_ERR" >&2\nexit "\${STANDIN_CODE:-0}"`;
  await withPgRestore("archive-file", script, async () => {
    await within(
      "pg_restore on the archive file",
      restoreArchiveFile(
        "/t/archive.tmp",
        "/b/backup_1.pgdump.zst",
        local,
        conn,
        ["-j", "2", "-d", "x"],
        "restore",
      ),
    );
    assert.equal(readFileSync(args, "utf8"), "-j 2 -d x /t/archive.tmp\n");
    await withEnv(
      { STANDIN_CODE: "1", STANDIN_ERR: "pg_restore: error: could not read input file: end of file" },
      () =>
        assert.rejects(
          within(
            "the failing pg_restore",
            restoreArchiveFile(
              "/t/archive.tmp",
              "/b/backup_1.pgdump.zst",
              local,
              conn,
              ["-d", "x"],
              "restore",
            ),
          ),
          (e: Error) =>
            e instanceof CheckFailedError &&
            e.message ===
              "backup_1.pgdump.zst is not a readable pg_dump archive: pg_restore: error: could not read input file: end of file",
        ),
    );
    await withEnv({ STANDIN_CODE: "1", STANDIN_ERR: "pg_restore: error: something else" }, () =>
      assert.rejects(
        restoreArchiveFile("/t/archive.tmp", "/b/backup_1.pgdump.zst", local, conn, ["-d", "x"], "restore"),
        (e: Error) =>
          e instanceof CannotRunError && e.message === "restore failed: pg_restore: error: something else",
      ),
    );
  });
});

test("a backup file that fails while it is read: told as a read failure, though pg_restore succeeded on what came", async () => {
  const { file, m } = backup("backup_20260101_000001.pgdump", randomBytes(200_000));
  const failing = () =>
    new Readable({
      read() {
        this.push(randomBytes(65_536));
        this.destroy(Object.assign(new Error("EIO: i/o error, read"), { code: "EIO" }));
      },
    });
  await withPgRestore("reads-all", "cat > /dev/null", () =>
    withReads(failing, () =>
      assert.rejects(
        within("the restore stream", restoreStream(file, m, local, conn, ["-f", "/dev/null"], "reading")),
        (e: Error) =>
          e instanceof CheckFailedError &&
          e.message === "backup_20260101_000001.pgdump: reading failed: EIO: i/o error, read",
      ),
    ),
  );
});

test("pg_restore that closes its input before the end and succeeds: neither the broken pipe nor the closed input is damage", async () => {
  const { file, m } = backup("backup_20260101_000002.pgdump", randomBytes(200_000));
  const closed = join(dir, "closed");
  const go = join(dir, "go");
  const pidFile = join(dir, "pg_restore.pid");
  // Closes its input and says so, then waits (bounded) until the feed has met the closed pipe.
  const script =
    `echo $$ > "${pidFile}"\nexec 0<&-\ntouch "${closed}"\n` +
    `i=0; while [ ! -e "${go}" ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i+1)); done\nexit 0`;
  // The feed writes only once pg_restore's input is closed, and says when its write has failed.
  const afterClose = () => {
    let sent = false;
    return new Readable({
      async read() {
        if (sent) return;
        sent = true;
        await until("pg_restore to close its input", () => existsSync(closed));
        this.push(readFileSync(file));
        this.push(null);
      },
      destroy(e, cb) {
        writeFileSync(go, "");
        cb(e);
      },
    });
  };
  await withPgRestore("closes-early", script, async () => {
    await withReads(afterClose, () =>
      within("the restore stream", restoreStream(file, m, local, conn, ["-f", "/dev/null"], "reading")),
    );
    // Once more, the feed writing only after pg_restore has exited (node closed its input then). The
    // first run's pid file goes too: that pg_restore has exited, and the feed would not wait for this one.
    rmSync(closed);
    rmSync(go);
    rmSync(pidFile);
    const afterExit = () => {
      let sent = false;
      return new Readable({
        async read() {
          if (sent) return;
          sent = true;
          await until(
            "pg_restore to exit",
            () => existsSync(pidFile) && exited(Number(readFileSync(pidFile, "utf8"))),
          );
          this.push(readFileSync(file));
          this.push(null);
        },
      });
    };
    writeFileSync(go, "");
    await withReads(afterExit, () =>
      within("the restore stream", restoreStream(file, m, local, conn, ["-f", "/dev/null"], "reading")),
    );
  });
});

test("a wrapper whose pg_restore is missing (exit 127): the tools are named, not the damage the broken feed left", async () => {
  // A zstd backup damaged in the middle: read to the end, zstd fails; then the wrapper's exec fails.
  const z = execFileSync("zstd", ["-q", "-c"], { input: randomBytes(300_000) });
  z[z.length >> 1] ^= 0xff;
  const { file } = backup("backup_20260101_000003.pgdump.zst", z, "zstd");
  await withPgRestore("wrapper", `cat > /dev/null\nexec "${join(dir, "no-such", "pg_restore")}" "$@"`, () =>
    assert.rejects(
      within("verify", verifyBackup(file)),
      (e: Error) =>
        e instanceof CannotRunError &&
        /^reading the archive: PostgreSQL client tools not found \(.*no-such\/pg_restore: not found\); install them or set PG_BIN$/.test(
          e.message,
        ),
    ),
  );
});

test("pg_restore's first line of stderr is its first non-blank one", async () => {
  const { file } = backup("backup_20260101_000004.pgdump", randomBytes(1000));
  await withPgRestore(
    "blank-first",
    `cat > /dev/null\nprintf "\\n  pg_restore: error: corrupt TOC\\nmore\\n" >&2\nexit 1`,
    () =>
      assert.rejects(
        within("verify", verifyBackup(file)),
        (e: Error) =>
          e instanceof CheckFailedError &&
          e.message ===
            "backup_20260101_000004.pgdump is not a readable pg_dump archive: pg_restore: error: corrupt TOC",
      ),
  );
});
