import { chmodSync, mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { PG_BIN } from "./postgres";

const TOOLS = ["pg_dump", "pg_restore", "psql"] as const;

/**
 * A PG_BIN at `bin` where each tool of `scripts` is that shell script (run by /bin/sh) and the other
 * client tools are the real ones: a stand-in only where the real tool cannot show the case.
 */
export function standinPgBin(bin: string, scripts: Partial<Record<(typeof TOOLS)[number], string>>): string {
  mkdirSync(bin, { recursive: true });
  for (const t of TOOLS) {
    const s = scripts[t];
    if (s === undefined) symlinkSync(join(PG_BIN, t), join(bin, t));
    else {
      writeFileSync(join(bin, t), `#!/bin/sh\n${s}\n`);
      chmodSync(join(bin, t), 0o755);
    }
  }
  return bin;
}

/**
 * True once no process has `pid`: a stand-in tool this process spawned has exited and node has reaped
 * it, so its ChildProcess already has its exit code (a zombie still answers signal 0).
 */
export function exited(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return false;
  } catch {
    return true;
  }
}

/**
 * A PG_BIN at `bin` whose psql fails as a server refusing would ("ERROR:  stand-in refused", exit 1)
 * on a script that contains `refuse`, and runs the real psql on every other (scripts come on stdin).
 */
export function psqlRefusing(bin: string, refuse: string): string {
  return standinPgBin(bin, {
    psql:
      `case "$*" in *" -c "*) exec "${PG_BIN}/psql" "$@";; esac\nsql=$(cat)\n` +
      `case "$sql" in *"${refuse}"*) echo "ERROR:  stand-in refused" >&2; exit 1;; esac\n` +
      `printf "%s\\n" "$sql" | exec "${PG_BIN}/psql" "$@"`,
  });
}
