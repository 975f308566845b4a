// Tests that send signals to their own process must reach only the product's handlers: a test runner's own
// (Stryker's tap hook exits the process on SIGINT/SIGTERM/SIGHUP, issue 22) are set aside while the file runs.
import { after } from "node:test";

/** Removes the SIGINT/SIGTERM/SIGHUP listeners present now; puts them back after the file's tests. */
export function setAsideRunnerSignalHandlers(): void {
  const saved = (["SIGINT", "SIGTERM", "SIGHUP"] as const).map((s) => [s, process.listeners(s)] as const);
  for (const [s, ls] of saved) for (const l of ls) process.off(s, l);
  after(() => {
    for (const [s, ls] of saved) for (const l of ls) process.on(s, l);
  });
}
