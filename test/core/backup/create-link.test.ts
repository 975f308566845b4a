// What a failed hard link of a finished backup means (issue 22, mutation testing of
// src/core/backup/create.ts: create-edges fails the link with EPERM and EIO only, so ENOTSUP and
// EOPNOTSUPP, which FAT, exFAT and many network shares answer too, were untested). Pure, no server.
import { test } from "node:test";
import assert from "node:assert/strict";
import { linkFailure } from "../../../src/core/backup/create";
import { ConfigError } from "../../../src/core/errors";

const DIR = "/mnt/usb/backups";
const failed = (code?: string) =>
  Object.assign(new Error(`${code ?? "unknown"}: link failed`), code ? { code } : {});

for (const code of ["EPERM", "ENOTSUP", "EOPNOTSUPP"]) {
  test(`a link refused with ${code}: the directory, the code and the fix named (exit 2)`, () => {
    const e = linkFailure(failed(code), DIR);
    assert.ok(e instanceof ConfigError, String(e));
    assert.equal(
      e.message,
      `${DIR} is on a filesystem that refuses hard links (${code}): safe-deploy links each finished backup into place, so that it never replaces another file; choose a backup directory on a local Linux filesystem (ext4, xfs, btrfs, tmpfs)`,
    );
  });
}

test("any other link failure is returned as it is", () => {
  for (const e of [failed("EIO"), failed("EXDEV"), failed("ENOSPC"), failed(), "not an error"]) {
    assert.equal(linkFailure(e, DIR), e);
  }
});
