const PLAIN = /^[A-Za-z0-9_./-]+$/;

/** Where a wrapped command writes: `<SAFE_DEPLOY_DATA_DIR or fallback>/<file>`, both relative words. */
export interface OutputLog {
  /** The directory logs go to when SAFE_DEPLOY_DATA_DIR is unset, relative to the command's cwd. */
  fallbackDir: string;
  /** The log file under that directory, e.g. `logs/migrations/staging.log`. */
  file: string;
  /** What the command is, for the one line that reaches the engine, e.g. `migration`. */
  what: string;
}

/**
 * Wraps a shell command so its stdout and stderr go only to a 0600 log file: @pulumi/command puts the
 * whole output of a failed command in its error text whatever `logging` says (issue 14, item 8), so the
 * engine only ever sees one line naming the log. The path is resolved at run time from
 * SAFE_DEPLOY_DATA_DIR (set by a rollback run from a temporary worktree), so the command string itself
 * is the same from every checkout (item 11). Pure.
 */
export function logOutputTo(command: string, log: OutputLog): string {
  for (const [k, v] of Object.entries(log))
    if (!PLAIN.test(v))
      throw new Error(`\`${k}\` must be a plain relative path or word, got ${JSON.stringify(v)}`);
  return [
    `log="\${SAFE_DEPLOY_DATA_DIR:-${log.fallbackDir}}/${log.file}"`,
    `umask 077`,
    `mkdir -p "$(dirname "$log")" && touch "$log" && chmod 600 "$log" || { echo "${log.what}: cannot write its log $log" >&2; exit 1; }`,
    `echo "== ${log.what} $(date -u +%Y-%m-%dT%H:%M:%SZ)" >>"$log"`,
    `( ${command} ) >>"$log" 2>&1`,
    `rc=$?`,
    `if [ "$rc" -ne 0 ]; then echo "${log.what} failed (exit code $rc); its output is in $log" >&2; exit "$rc"; fi`,
    `echo "${log.what}: ok; output in $log"`,
  ].join("\n");
}
