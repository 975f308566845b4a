// The database deploy lock's refusal when its holder lets go between the failed
// `pg_try_advisory_lock` and the state read (issue 22, db-lock.ts survivors: the "?" of a free state).
// A stand-in psql under PG_BIN holds that read on a fifo until the test has released the lock, so the
// race is staged, not hoped for. Real PostgreSQL on 127.0.0.1.
import { test, after, before } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client } from "pg";
import { DB_LOCK_ENV, acquireDbLock, lockKey } from "../../../src/core/release/db-lock";
import { PG_BIN, startPostgres, type TestPostgres } from "../../helpers/postgres";
import { killLeftPsqlSessions, until, within } from "../../helpers/bounded";

const work = mkdtempSync(join(tmpdir(), "sd-dblock-race-"));
let pg: TestPostgres;
before(async () => {
  pg = await startPostgres();
});
after(async () => {
  await pg?.close();
  killLeftPsqlSessions();
  rmSync(work, { recursive: true, force: true });
});

// The second psql safe-deploy starts (after the lock session) is the state read: it says so in `asked`
// and waits for the fifo before it runs.
const bin = join(work, "bin");
const fifo = join(work, "go");
const asked = join(work, "asked");
execFileSync("mkdir", ["-p", bin]);
execFileSync("mkfifo", [fifo]);
writeFileSync(
  join(bin, "psql"),
  `#!/bin/sh
n=$(cat '${work}/count' 2>/dev/null || echo 0); n=$((n + 1)); echo $n > '${work}/count'
if [ "$n" = 2 ]; then : > '${asked}'; read go < '${fifo}'; fi
exec '${PG_BIN}/psql' "$@"
`,
);
chmodSync(join(bin, "psql"), 0o755);

test(
  "the holder lets go between the failed try and the state read: refused, the server process unknown ('?')",
  { timeout: 60_000 },
  async () => {
    const db = "shop";
    const url = await pg.createDatabase(db);
    delete process.env[DB_LOCK_ENV];
    const c = new Client({ connectionString: pg.url("postgres") });
    await c.connect();
    c.on("error", () => {});
    const saved = process.env.PG_BIN;
    try {
      await c.query("SELECT pg_advisory_lock(hashtext($1))", [lockKey(db)]);
      process.env.PG_BIN = bin;
      const taking = acquireDbLock({ databaseUrl: url, stack: "p" });
      taking.catch(() => {});
      await until("the state read to start", () => existsSync(asked));
      await c.query("SELECT pg_advisory_unlock(hashtext($1))", [lockKey(db)]);
      await writeFile(fifo, "go\n");
      await assert.rejects(within("the refusal", taking), {
        message:
          `database "${db}" is locked by another deploy: a session of server process ? that wrote no holder ` +
          "row yet. Wait for it to finish (`safe-deploy lock status --stack STACK`); a holder whose session " +
          "is gone is replaced by itself.",
      });
    } finally {
      if (saved === undefined) delete process.env.PG_BIN;
      else process.env.PG_BIN = saved;
      await c.end().catch(() => {});
    }
  },
);
