// Stand-in PostgreSQL tools for the restore tests (issue 22): a PG_BIN directory whose psql passes the
// SQL it is given through `sed "$SD_TEST_SED"` line by line (a test rewrites one statement, or puts a
// psql meta-command such as `\!` before one, which psql then runs in order), beside the real tools.
import { chmodSync, mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { PG_BIN } from "./postgres";

/**
 * Makes `dir` a PG_BIN: the sed-ing psql, `scripts` (tool name to shell script body, run with `sh`),
 * and the real server binaries for pg_dump and pg_restore when not given. Returns `dir`.
 */
export function sedPsqlBin(dir: string, scripts: Record<string, string> = {}): string {
  mkdirSync(dir, { recursive: true });
  // Streamed line by line: a psql session (the restore's lock) keeps its input open.
  const all = { psql: `sed -u "\${SD_TEST_SED:-}" | "${PG_BIN}/psql" "$@"\n`, ...scripts };
  for (const [tool, body] of Object.entries(all)) {
    writeFileSync(join(dir, tool), `#!/bin/sh\n${body}`);
    chmodSync(join(dir, tool), 0o755);
  }
  for (const tool of ["pg_dump", "pg_restore"])
    if (!(tool in all)) symlinkSync(join(PG_BIN, tool), join(dir, tool));
  return dir;
}
