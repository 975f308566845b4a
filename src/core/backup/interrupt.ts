import { CannotRunError } from "../errors";
/** Signals that stop a command: Ctrl-C, `timeout`, `docker stop`, systemd, a closed terminal. */
const SIGNALS: NodeJS.Signals[] = ["SIGINT", "SIGTERM", "SIGHUP"];

/**
 * Runs `fn` with those signals caught, so a stop half-way runs `fn`'s cleanup (dropping a scratch
 * database, re-opening connections) instead of the process dying and leaving it behind. The client
 * tools in the same process group get the signal too and stop, which fails the step they ran; `fn`
 * asks `interrupted()` between steps so a signal sent to this process alone stops it there; `abort`
 * fires with the first signal, for a child that should be told (the Pulumi engine cancels on SIGINT).
 * A second signal stops the process at once (exit 130), for when the clean-up itself hangs.
 */
export async function catchingSignals<T>(
  fn: (interrupted: () => NodeJS.Signals | undefined, abort: AbortSignal) => Promise<T>,
  onSignal?: (signal: NodeJS.Signals) => void,
): Promise<T> {
  let got: NodeJS.Signals | undefined;
  const controller = new AbortController();
  const on = (s: NodeJS.Signals) => {
    if (got) {
      process.stderr.write(
        `safe-deploy: ${s} again: stopping at once, without finishing the clean-up (see what was reported above)\n`,
      );
      process.exit(130);
    }
    got = s;
    onSignal?.(s);
    controller.abort(s);
  };
  for (const s of SIGNALS) process.on(s, on);
  try {
    return await fn(() => got, controller.signal);
  } finally {
    for (const s of SIGNALS) process.off(s, on);
  }
}

/**
 * `fn` under `catchingSignals`, for a command whose own clean-up (a `finally` dropping its scratch
 * database) runs on the way out: when a signal came, whatever `fn` returned or threw (the client tool
 * killed by the same signal is no failure of the work) gives way to exit 3 with `said(signal)`.
 */
export async function stoppedBySignal<T>(
  fn: () => Promise<T>,
  said: (signal: NodeJS.Signals) => string,
): Promise<T> {
  return catchingSignals(async (interrupted) => {
    try {
      const result = await fn();
      if (!interrupted()) return result;
    } catch (e) {
      if (!interrupted()) throw e;
    }
    throw new CannotRunError(said(interrupted()!));
  });
}
