// Containers of a health test file are removed when its process dies, however it dies (issue 22: a
// Stryker run killed mid-way left 40 crash-looping containers restarting). `after` removes them on a
// normal end; a SIGKILL runs no code of ours, so a reaper outside the process waits for it to die.
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import type { Socket } from "node:net";

/**
 * Starts the reaper of this process and returns the label (`key=value`) to put on every container it
 * starts. The reaper, a shell in its own session (`detached`: a Ctrl-C or a kill of this process group
 * leaves it), reads a pipe from this process; the kernel closes the pipe when the process dies, however it
 * dies, and the reaper then removes every container carrying the label. (Not `setsid -f`: node destroys a
 * child's stdin when the child exits, which would close the pipe at once.)
 */
export function reapContainersOnExit(what: string): string {
  const label = `safe-deploy-test.run=${what}-${process.pid}-${randomBytes(4).toString("hex")}`;
  const reaper = spawn(
    "sh",
    [
      "-c",
      'cat >/dev/null; ids=$(docker ps -aq --filter "label=$LABEL"); [ -z "$ids" ] || docker rm -f $ids >/dev/null',
    ],
    { stdio: ["pipe", "ignore", "ignore"], env: { ...process.env, LABEL: label }, detached: true },
  );
  reaper.on("error", () => {}); // `after` still removes them on a normal end
  // The pipe stays open for the life of this process without keeping it alive.
  reaper.stdin.on("error", () => {});
  (reaper.stdin as unknown as Socket).unref();
  reaper.unref();
  return label;
}
