// Issue 22 (session 13): migrate()'s lock_timeout retries as the user sees them, in process on one
// server: the waits between retries (asked of setTimeout, which this file answers at once, so the case
// costs no 2 s + 4 s + 6 s), and a run that exited 0 with a lock timeout in its output; and
// node-pg-migrate's `check` naming two applied migrations gone from the directory and two INVALID
// indexes. Each case kills a mutant of runner.ts's `migrate` (lines 641-753) the older files let live.
import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { migrate, type MigrateOptions } from "../../../src/core/migrations/runner";
import { failure } from "../../helpers/failure";
import { startPostgres, type TestPostgres } from "../../helpers/postgres";

const LOCK_TIMEOUT = 'echo "ERROR:  canceling statement due to lock timeout"';

let pg: TestPostgres;
let tmp: string;
let url: string;
before(async () => {
  pg = await startPostgres();
  tmp = await mkdtemp(join(tmpdir(), "sd-runner-result-"));
  url = await pg.createDatabase("result");
});
after(async () => {
  await pg?.close();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

/** A custom command's `up` against the test database. */
const command = (up: string, o: Partial<MigrateOptions>) =>
  migrate({ tool: "command", action: "up", dir: ".", workDir: tmp, databaseUrl: url, custom: { up }, ...o });

/**
 * setTimeout answering every wait of a second or more at once and recording it, from the run's start
 * line on (the client's connect timeout comes before): the retries' waits are the product's (2 s, 4 s,
 * ...), and what is asserted is how long they were asked to be, not how long they took.
 */
async function recordingWaits<T>(f: (onLine: (l: string) => void) => Promise<T>) {
  const real = globalThis.setTimeout;
  const waits: number[] = [];
  const quick = ((fn: () => void, ms = 0) => {
    if (ms < 1000) return real(fn, ms);
    waits.push(ms);
    return real(fn, 0);
  }) as typeof setTimeout;
  const onLine = (l: string) => {
    if (l.startsWith("migrate up with")) globalThis.setTimeout = quick;
  };
  try {
    return { result: await f(onLine), waits };
  } finally {
    globalThis.setTimeout = real;
  }
}

describe("lock_timeout retries", () => {
  it("wait 2 s, then 4 s, then 6 s before the 1st, 2nd and 3rd retry", { timeout: 60_000 }, async () => {
    const count = join(tmp, "attempts");
    const up =
      `n=$(($(cat ${count} 2>/dev/null || echo 0) + 1)); echo $n > ${count}; ` +
      `if [ $n -lt 4 ]; then ${LOCK_TIMEOUT}; exit 1; fi; echo "applied on attempt $n"`;
    const lines: string[] = [];
    const log = (onLine: (l: string) => void) => (l: string) => {
      onLine(l);
      lines.push(l);
    };
    const { result, waits } = await recordingWaits((onLine) =>
      command(up, { lockRetries: 3, log: log(onLine) }),
    );
    assert.equal(result.output, "applied on attempt 4\n");
    assert.deepEqual(waits, [2000, 4000, 6000]);
    assert.deepEqual(lines.slice(1, -1), [
      "migrate up: lock_timeout hit, retry 1/3 in 2 s",
      "migrate up: lock_timeout hit, retry 2/3 in 4 s",
      "migrate up: lock_timeout hit, retry 3/3 in 6 s",
    ]);
  });

  it(
    "a run that exited 0 is not retried, whatever its output says of lock timeouts",
    { timeout: 60_000 },
    async () => {
      const lines: string[] = [];
      const r = await command(`${LOCK_TIMEOUT}; true`, { lockRetries: 1, log: (l) => lines.push(l) });
      assert.deepEqual(r, {
        before: undefined,
        after: undefined,
        output: "ERROR:  canceling statement due to lock timeout\n",
      });
      assert.deepEqual(lines, ["migrate up with command: from (none)", "migrate up: now at (none)"]);
    },
  );
});

describe("node-pg-migrate check", () => {
  it(
    "names each applied migration missing from the directory and each INVALID index",
    { timeout: 60_000 },
    async () => {
      const db = await pg.createDatabase("npm_gone");
      await mkdir(join(tmp, "mig"));
      await writeFile(join(tmp, "mig", "3_c.sql"), "-- Up Migration\n");
      await pg.query(
        "CREATE TABLE pgmigrations (id serial PRIMARY KEY, name varchar(255) NOT NULL, run_on timestamp NOT NULL); INSERT INTO pgmigrations (name, run_on) VALUES ('1_a', now()), ('2_b', now()), ('3_c', now())",
        [],
        "npm_gone",
      );
      // Two unique indexes built CONCURRENTLY over duplicates: each fails and stays behind INVALID.
      await pg.query("CREATE TABLE dup (v int); INSERT INTO dup VALUES (1), (1)", [], "npm_gone");
      for (const i of ["a_uq", "b_uq"])
        await pg.query(`CREATE UNIQUE INDEX CONCURRENTLY ${i} ON dup (v)`, [], "npm_gone").catch(() => {});
      const check = migrate({
        tool: "node-pg-migrate",
        action: "check",
        dir: "mig",
        workDir: tmp,
        databaseUrl: db,
      });
      assert.deepEqual(await failure(check), [
        "CheckFailedError",
        "0 pending\napplied but missing from mig: 1_a, 2_b\ninvalid indexes: public.a_uq, public.b_uq\n" +
          "fix: restore the missing migration files to mig; DROP INDEX CONCURRENTLY public.a_uq; DROP INDEX CONCURRENTLY public.b_uq; then re-run the migration that builds each dropped index",
      ]);
    },
  );
});
