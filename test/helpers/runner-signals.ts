// Tests that send signals to their own process must reach only the product's handlers, yet a test runner's
// own must still work when the runner stops the file: Stryker's tap hook exits the process on SIGINT,
// SIGTERM and SIGHUP (issue 22), and stops a file at its first failing test with SIGTERM, which that exit
// turns into its result file. Removed for the whole file, such a stop killed the process without its
// result (Stryker counted the kill as a runtime error); kept as they are, the file's own signals exited it.

/**
 * Defers the SIGINT/SIGTERM/SIGHUP listeners present now (a runner's): each then answers a signal only
 * when no other listener, the product's, is there to take it.
 */
export function deferRunnerSignalHandlers(): void {
  for (const s of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    for (const l of process.listeners(s)) {
      process.off(s, l);
      process.on(s, (...args: unknown[]) => {
        if (process.listenerCount(s) === 1) (l as (...a: unknown[]) => void)(...args);
      });
    }
  }
}
