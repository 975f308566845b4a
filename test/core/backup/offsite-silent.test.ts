// Issue 22: a store that accepts the connection and never answers, with the target's idle timeout of 1 s:
// the upload and the listing give up and say where, in the test process (offsite.test.ts has the same
// upload case but starts PostgreSQL first, so it is not in the Stryker key). Each wait is bounded: an idle
// timeout left out, or 60 s instead of the target's 1 s, fails the case instead of hanging it.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { within } from "../../helpers/bounded";
import { s3Target, startSilentStore } from "../../helpers/s3";
import { uploadBackup } from "../../../src/core/backup/offsite";
import { listOffsite } from "../../../src/core/backup/fetch";

let silent: Awaited<ReturnType<typeof startSilentStore>>;
let dir: string;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "sd-offsite-silent-"));
  silent = await startSilentStore();
});
after(() => {
  silent?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const target = () => s3Target(silent.endpoint, "p/", { idleTimeoutSeconds: 1 });
const fails = (code: number, pattern: RegExp) => (e: Error & { exitCode?: number }) => {
  assert.equal(e.exitCode, code, e.message);
  assert.match(e.message, pattern);
  return true;
};

test("an upload to a store that never answers gives up after the idle timeout (exit 3), naming the object", async () => {
  const f = join(dir, "backup_20260101_000000.pgdump");
  writeFileSync(f, "x".repeat(1000));
  const before = silent.connections();
  await assert.rejects(
    within("the upload to a silent store to give up", uploadBackup(f, {} as never, target())),
    fails(
      3,
      /^uploading backup_20260101_000000\.pgdump to s3:\/\/b\/p\/backup_20260101_000000\.pgdump failed: /,
    ),
  );
  assert.ok(silent.connections() > before, "the upload did reach the silent store");
});

test("listing a store that never answers gives up after the idle timeout (exit 3), naming the prefix", async () => {
  const before = silent.connections();
  await assert.rejects(
    within("the listing of a silent store to give up", listOffsite(target())),
    fails(3, /^listing s3:\/\/b\/p\/ failed: /),
  );
  assert.ok(silent.connections() > before, "the listing did reach the silent store");
});
