// Loaded before every test file (`--import`, by scripts/test.sh and stryker.config.mjs): the file's
// temporary files and its servers' data directories go under a directory of its own (TMPDIR, which
// `os.tmpdir()` and the tools the tests start read), removed once the process is gone, however it
// ends: a test file killed at Stryker's timeout runs no `after` hook (issue 22: killed runs left
// hundreds of directories, gigabytes, in /tmp). Under `node --test` the runner's own directory holds
// each file's.
import { chmodSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { whenThisProcessDies } from "./reaper";

const dir = mkdtempSync(join(tmpdir(), "sd-run-"));
// As open as /tmp: servers and tools that run as other users make their own directories in it.
chmodSync(dir, 0o1777);
process.env.TMPDIR = dir;
// Twice: a server told to stop by the same death may still be writing its last files.
whenThisProcessDies('rm -rf -- "$RUN_TMPDIR" 2>/dev/null || { sleep 2; rm -rf -- "$RUN_TMPDIR"; }', {
  RUN_TMPDIR: dir,
});
