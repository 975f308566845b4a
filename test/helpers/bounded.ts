// Bounded waits (issue 22): a mutant (or a bug) that keeps a lock held or a container running fails the
// test in seconds, naming what never happened, instead of hanging until the runner's timeout.
import { execFileSync } from "node:child_process";

/** How long one wait on the server or a child may take. */
export const WAIT_MS = 20_000;

/** Resolves once `cond` holds (asked every `everyMs`); throws naming `what` after `ms`. */
export async function until(
  what: string,
  cond: () => boolean | Promise<boolean>,
  ms = WAIT_MS,
  everyMs = 50,
): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`gave up after ${ms / 1000} s waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** `p`, or an error naming `what` once WAIT_MS has passed. */
export async function within<T>(what: string, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const bound = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`gave up after ${WAIT_MS / 1000} s waiting for ${what}`)),
      WAIT_MS,
    );
  });
  try {
    return await Promise.race([p, bound]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Kills the psql sessions this process still has open. A lock session left by a failed test (or a mutant
 * that never ends it) waits on its stdin for good and would keep the test file's process alive after its
 * last test: `after` calls this once the server is stopped, so the file ends and reports its failure.
 */
export function killLeftPsqlSessions(): number {
  let out = "";
  try {
    out = execFileSync("ps", ["-o", "pid=,comm=", "--ppid", String(process.pid)], { encoding: "utf8" });
  } catch {
    return 0; // no children: ps exits 1
  }
  let n = 0;
  for (const line of out.split("\n")) {
    const [pid, comm] = line.trim().split(/\s+/);
    if (comm === "psql") {
      try {
        process.kill(Number(pid), "SIGKILL");
        n++;
      } catch {
        // already gone
      }
    }
  }
  return n;
}
