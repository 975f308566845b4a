// The swap's defences against clients, staged in psql's own order (issue 22, the survivors of the
// mutation runs of src/core/backup/restore.ts that session 10 listed as "a test could"): a superuser
// that tries to connect between the swap's terminate and its rename is refused (a connection limit of 0
// does not hold a superuser back, ALLOW_CONNECTIONS false does), a session a replay left on the restored
// copy is ended so the copy can take the name, and the kept name's search stops after an hour of taken
// seconds. One small server, in process; psql through the sed-ing stand-in of test/helpers/pg-standins:
// a `\!` line put before the swap's `BEGIN;` runs once every statement before it has run.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Client } from "pg";
import { withEnv } from "../../helpers/env";
import { killLeftPsqlSessions, until } from "../../helpers/bounded";
import { GATED_PG_DUMP, sedPsqlBin, shopWithBackup } from "../../helpers/pg-standins";
import { PG_BIN, type TestPostgres } from "../../helpers/postgres";
import { restoreBackup, type BackupResult } from "../../../src/core/backup";
import { previousName } from "../../../src/core/backup/restore";

let pg: TestPostgres;
let dir: string;
let bin: string;
let backup: BackupResult;
const NOW = new Date("2026-11-23T03:45:00Z");

before(async () => {
  ({ pg, dir, backup } = await shopWithBackup("sd-restore-swap-", "swap"));
  bin = sedPsqlBin(join(dir, "bin"), { pg_dump: GATED_PG_DUMP });
});
after(async () => {
  await pg?.close();
  killLeftPsqlSessions();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const rows = async (db: string) =>
  (await pg.query<{ n: string }>("SELECT count(*) AS n FROM t", [], db))[0].n;

/** Restores over `shop` at NOW through the stand-ins, `sed` applied to every SQL text psql is given. */
async function restoreWith(
  sed: string,
  beforeSwap?: (db: string) => Promise<void>,
  env: Record<string, string> = {},
) {
  await pg.query("DELETE FROM t WHERE id > 10; INSERT INTO t VALUES (11)", [], "shop");
  const r = await withEnv({ PG_BIN: bin, SD_TEST_SED: sed, ...env }, () =>
    restoreBackup(backup.file, {
      databaseUrl: pg.url("shop"),
      safetyDir: join(dir, "safety"),
      now: NOW,
      ...(beforeSwap ? { beforeSwap: (restored) => beforeSwap(restored.database) } : {}),
    }),
  );
  assert.equal(await rows("shop"), "10", "the backup's rows are live");
  assert.equal(await rows(r.previousDatabase!), "11", "the old database kept");
  await pg.query(`DROP DATABASE "${r.previousDatabase}"`);
  return r;
}

test("a superuser connecting between the swap's terminate and its rename is refused, and the swap goes through", async () => {
  const out = join(dir, "late");
  // Run by psql's `\!` just before the swap's BEGIN: a superuser session that would stay connected,
  // and whether the server let it in (seen in pg_stat_activity) or refused it (psql ended).
  writeFileSync(
    `${out}.sh`,
    `( PGAPPNAME=late-swap "${PG_BIN}/psql" -X "${pg.url("shop")}" -c "SELECT pg_sleep(60)" </dev/null >/dev/null 2>"${out}.err"; echo $? >"${out}.exit" ) >/dev/null 2>&1 &
i=0
while [ $i -lt 400 ]; do
  if [ -s "${out}.exit" ]; then echo refused >"${out}"; exit 0; fi
  if [ "$("${PG_BIN}/psql" -X -At "${pg.url("postgres")}" -c "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'late-swap'")" = 1 ]; then echo connected >"${out}"; exit 0; fi
  sleep 0.05; i=$((i+1))
done
echo neither >"${out}"
`,
  );
  try {
    await restoreWith(`s|^BEGIN;$|\\\\! sh ${out}.sh\\nBEGIN;|`);
    assert.equal(readFileSync(out, "utf8").trim(), "refused");
    assert.match(
      readFileSync(`${out}.err`, "utf8"),
      /database "shop" is not currently accepting connections/,
    );
  } finally {
    await pg.query(
      "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'late-swap'",
    );
  }
});

test("a session the replay left on the restored copy is ended at the swap, and the copy takes the name", async () => {
  let left: Client | undefined;
  let ended = false;
  try {
    await restoreWith("", async (db) => {
      left = new Client({ connectionString: pg.url(db), application_name: "replay-left" });
      left.on("error", () => {});
      left.on("end", () => (ended = true));
      await left.connect();
    });
    await until("the replay's session to be ended", () => ended);
  } finally {
    await left?.end().catch(() => {});
  }
});

test("an hour of kept names taken: the search stops at the hour's last second", async () => {
  // The kept databases' names as the server would list them with every second of the hour from NOW taken.
  const hour =
    "SELECT 'shop_before_restore_' || to_char(timestamp '2026-11-23 03:45:00' + g * interval '1 second', " +
    "'YYYYMMDDHH24MISS') FROM generate_series(0, 3599) g;";
  const r = await restoreWith(`s/^SELECT datname FROM pg_database WHERE datname LIKE .*/${hour}/`);
  assert.equal(r.previousDatabase, previousName("shop", new Date(NOW.getTime() + 3599 * 1000)));
  assert.equal(r.previousDatabase, "shop_before_restore_20261123044459");
});

test("the load starts while the safety backup still dumps: the copy exists before the dump's rest is let through", async () => {
  // The safety dump gives its first 100 bytes and waits for the gate (issue 18: the two overlap); the
  // gate opens once the copy exists, or after the bounded wait if the load waited for the whole dump.
  const gate = join(dir, "overlap-gate");
  const copy = until("the restored copy to be created while the safety dump waits", async () => {
    const found = await pg.query("SELECT 1 FROM pg_database WHERE datname LIKE 'shop\\_restoring\\_%'");
    return found.length > 0;
  }).finally(() => writeFileSync(gate, ""));
  copy.catch(() => {}); // awaited below, after the restore
  await restoreWith("", undefined, { SD_TEST_DUMP_GATE: gate });
  await copy;
});
