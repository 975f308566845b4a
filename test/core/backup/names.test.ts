// Backup file names and manifest paths (issue 22): a wrong name is a backup that `list`, `prune` and
// rollback no longer see, or a label that escapes the backup directory.
import assert from "node:assert/strict";
import { test } from "node:test";
import { EXTENSIONS, backupFileName, checkLabel, parseBackupFileName } from "../../../src/core/backup/names";
import { knownManifestVersion, manifestPath } from "../../../src/core/backup/manifest";

test("checkLabel: 1-40 lowercase letters, digits or dashes, not starting with a dash", () => {
  for (const ok of ["a", "0", "pre-deploy", "a".repeat(40), "9-x-"]) assert.equal(checkLabel(ok), ok);
  for (const bad of ["", "-x", "A", "pre_deploy", "a".repeat(41), "x/y", "../x", "x y", "é", "x\n"]) {
    assert.throws(
      () => checkLabel(bad),
      (e: Error) => e.message === `\`--label\` "${bad}" must be 1-40 lowercase letters, digits or dashes`,
      JSON.stringify(bad),
    );
  }
});

test("backupFileName: zero-padded UTC stamp, every field in its place", () => {
  assert.equal(backupFileName(new Date("2026-11-09T08:07:06Z"), "none"), "backup_20261109_080706.pgdump");
  assert.equal(
    backupFileName(new Date("2026-12-31T23:59:58Z"), "zstd", "x"),
    "backup_20261231_235958_x.pgdump.zst",
  );
  // A timestamp written in another time zone is still named in UTC.
  assert.equal(
    backupFileName(new Date("2026-01-01T00:30:00+02:00"), "gzip"),
    "backup_20251231_223000.pgdump.gz",
  );
  assert.equal(
    backupFileName(new Date("2026-01-01T00:00:00Z"), "gzip", ""),
    "backup_20260101_000000.pgdump.gz",
  );
  assert.deepEqual(EXTENSIONS, { zstd: ".pgdump.zst", gzip: ".pgdump.gz", none: ".pgdump" });
});

test("parseBackupFileName inverts backupFileName for every compression, with and without a label", () => {
  const when = new Date("2026-11-09T08:07:06Z");
  for (const compression of ["zstd", "gzip", "none"] as const) {
    for (const label of [undefined, "pre-deploy", "a1"]) {
      assert.deepEqual(parseBackupFileName(backupFileName(when, compression, label)), {
        createdAt: when,
        label,
        compression,
      });
    }
  }
});

test("parseBackupFileName: names that are not ours are undefined", () => {
  for (const name of [
    "backup_20261109_080706.pgdump.bz2",
    "backup_20261109_080706.pgdump.zst.json",
    "xbackup_20261109_080706.pgdump",
    "backup_2026110_080706.pgdump",
    "backup_20261109_08070.pgdump",
    "backup_20261109-080706.pgdump",
    "backup_2026a109_080706.pgdump",
    "backup_20261109_080706_Safety.pgdump",
    "backup_20261109_080706_-x.pgdump",
    "backup_20261109_080706_.pgdump",
    "backup_20261109_080706.dump",
    "notes.txt",
  ]) {
    assert.equal(parseBackupFileName(name), undefined, name);
  }
});

test("manifest: NAME.json beside the backup; versions 1 and 2 only", () => {
  assert.equal(
    manifestPath("/b/backup_20261109_080706.pgdump.zst"),
    "/b/backup_20261109_080706.pgdump.zst.json",
  );
  assert.equal(knownManifestVersion(1), true);
  assert.equal(knownManifestVersion(2), true);
  for (const v of [0, 3, "1", "2", undefined, null]) assert.equal(knownManifestVersion(v), false, String(v));
});
