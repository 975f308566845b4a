// Stand-in PostgreSQL tools for the restore tests (issue 22): a PG_BIN directory whose psql passes the
// SQL it is given through `sed "$SD_TEST_SED"` line by line (a test rewrites one statement, or puts a
// psql meta-command such as `\!` before one, which psql then runs in order), beside the real tools.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createBackup } from "../../src/core/backup";
import { standinPgBin } from "./pg-bin";
import { PG_BIN, startPostgres } from "./postgres";

/** A throwaway server whose database `shop` has table `t` (ids 1-10), a temp dir, and a backup of `shop` in it. */
export async function shopWithBackup(prefix: string, label: string) {
  const pg = await startPostgres();
  const dir = mkdtempSync(join(tmpdir(), prefix));
  await pg.query("CREATE DATABASE shop");
  await pg.query("CREATE TABLE t (id int); INSERT INTO t SELECT generate_series(1, 10)", [], "shop");
  const backup = await createBackup({ databaseUrl: pg.url("shop"), dir: join(dir, "b"), label });
  return { pg, dir, backup };
}

/**
 * pg_dump that, with SD_TEST_DUMP_GATE set, writes the dump's first 100 bytes, then the rest once that
 * file exists (or after 20 s: a test process that died never leaves it waiting).
 */
export const GATED_PG_DUMP =
  `if [ -z "$SD_TEST_DUMP_GATE" ] || [ "$1" = "--version" ]; then exec "${PG_BIN}/pg_dump" "$@"; fi\n` +
  `"${PG_BIN}/pg_dump" "$@" > "$SD_TEST_DUMP_GATE.dump" || exit 1\nhead -c 100 "$SD_TEST_DUMP_GATE.dump"\n` +
  `i=0; while [ ! -e "$SD_TEST_DUMP_GATE" ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i+1)); done\ntail -c +101 "$SD_TEST_DUMP_GATE.dump"\n`;

/**
 * Makes `dir` a PG_BIN (`standinPgBin`): the sed-ing psql, `scripts` (tool name to shell script body,
 * run with `sh`), and the real pg_dump and pg_restore when not given. Returns `dir`.
 */
export function sedPsqlBin(dir: string, scripts: Parameters<typeof standinPgBin>[1] = {}): string {
  // Streamed line by line: a psql session (the restore's lock) keeps its input open.
  return standinPgBin(dir, { psql: `sed -u "\${SD_TEST_SED:-}" | "${PG_BIN}/psql" "$@"`, ...scripts });
}
