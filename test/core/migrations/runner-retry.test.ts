// Issue 22 (session 12): lock_timeout retried twice, then the third attempt passes: each retry is logged
// with its own wait (2 s, then 4 s), and the run's result is the last attempt's. Its own file because the
// waits are the product's (6 s): the cases of runner-run.test.ts do not pay them.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, it } from "node:test";
import { migrate } from "../../../src/core/migrations/runner";
import { startPostgres, type TestPostgres } from "../../helpers/postgres";

let pg: TestPostgres;
let tmp: string;
before(async () => {
  pg = await startPostgres();
  tmp = await mkdtemp(join(tmpdir(), "runner-retry-"));
});
after(async () => {
  await pg?.close();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

it(
  "two lock_timeouts retried after 2 s and 4 s; the third attempt's success is the run's",
  { timeout: 60_000 },
  async () => {
    const url = await pg.createDatabase("retried");
    const count = join(tmp, "attempts");
    const up =
      `n=$(($(cat ${count} 2>/dev/null || echo 0) + 1)); echo $n > ${count}; ` +
      `if [ $n -lt 3 ]; then echo "ERROR:  canceling statement due to lock timeout"; exit 1; fi; echo "applied on attempt $n"`;
    const lines: string[] = [];
    const r = await migrate({
      tool: "command",
      action: "up",
      dir: ".",
      workDir: tmp,
      databaseUrl: url,
      custom: { up },
      lockRetries: 2,
      log: (l) => lines.push(l),
    });
    assert.deepEqual(r, { before: undefined, after: undefined, output: "applied on attempt 3\n" });
    assert.deepEqual(lines, [
      "migrate up with command: from (none)",
      "migrate up: lock_timeout hit, retry 1/2 in 2 s",
      "migrate up: lock_timeout hit, retry 2/2 in 4 s",
      "migrate up: now at (none)",
    ]);
  },
);
