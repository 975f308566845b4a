/** Exit codes of the command-line contract (README, "Command line"). */
export const ExitCode = { ok: 0, checkFailed: 1, usage: 2, cannotRun: 3 } as const;

/** Base class: every error the tool raises on purpose carries the exit code the CLI sets. */
export class SafeDeployError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message);
    // A dynamic provider serializes these classes into plain functions: `super` then no longer sets
    // the message, and new.target is undefined.
    this.message = message;
    this.name = new.target?.name ?? "SafeDeployError";
  }
}

/** Bad stack config or flags: exit 2; the message names every key and the fix. */
export class ConfigError extends SafeDeployError {
  constructor(
    message: string,
    readonly problems: string[] = [],
  ) {
    super(message, ExitCode.usage);
  }
}

/** A check failed (unhealthy, drift, lint errors, corrupt backup): exit 1. */
export class CheckFailedError extends SafeDeployError {
  constructor(message: string) {
    super(message, ExitCode.checkFailed);
  }
}

/** Something needed could not be reached or run (database, Docker, Pulumi CLI): exit 3. */
export class CannotRunError extends SafeDeployError {
  constructor(message: string) {
    super(message, ExitCode.cannotRun);
  }
}
