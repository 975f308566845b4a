// Clean-up that must happen however a test process dies (issue 22: Stryker kills a hung test file with
// SIGKILL, which runs no code of ours; killed runs left crash-looping containers and hundreds of
// temporary directories behind).
import { spawn } from "node:child_process";
import type { Socket } from "node:net";

/**
 * Runs the shell `script` with `env` once this process has died, however it dies. The reaper, a shell in
 * its own session (`detached`: a Ctrl-C or a kill of this process group leaves it), reads a pipe from this
 * process; the kernel closes the pipe when the process dies, and the reaper then runs the script. (Not
 * `setsid -f`: node destroys a child's stdin when the child exits, which would close the pipe at once.)
 */
export function whenThisProcessDies(script: string, env: Record<string, string>): void {
  const reaper = spawn("sh", ["-c", `cat >/dev/null; ${script}`], {
    stdio: ["pipe", "ignore", "ignore"],
    env: { ...process.env, ...env },
    detached: true,
  });
  reaper.on("error", () => {}); // the tests' own `after` hooks still clean up on a normal end
  // The pipe stays open for the life of this process without keeping it alive.
  reaper.stdin.on("error", () => {});
  (reaper.stdin as unknown as Socket).unref();
  reaper.unref();
}
