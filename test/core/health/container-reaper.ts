// Containers of a health test file are removed when its process dies, however it dies (issue 22: a
// Stryker run killed mid-way left 40 crash-looping containers restarting). `after` removes them on a
// normal end; a SIGKILL runs no code of ours, so a reaper outside the process waits for it to die.
import { randomBytes } from "node:crypto";
import { whenThisProcessDies } from "../../helpers/reaper";

/**
 * Starts the reaper of this process (`whenThisProcessDies`) and returns the label (`key=value`) to put
 * on every container it starts: once the process is gone, every container carrying the label is removed.
 */
export function reapContainersOnExit(what: string): string {
  const label = `safe-deploy-test.run=${what}-${process.pid}-${randomBytes(4).toString("hex")}`;
  whenThisProcessDies(
    'ids=$(docker ps -aq --filter "label=$LABEL"); [ -z "$ids" ] || docker rm -f $ids >/dev/null',
    { LABEL: label },
  );
  return label;
}
