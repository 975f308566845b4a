import type { Command } from "commander";
import { projectDirOption, stateDirOption } from "../shared";

/** Options of `safe-deploy lock status|release`. */
export interface LockCommandOptions {
  action: "status" | "release";
  stack: string;
  /** The Pulumi project directory; default `.`. */
  projectDir?: string;
  /** The tool's state directory (locks, releases), relative to `projectDir`; default `.safe-deploy`. */
  stateDir?: string;
  json?: boolean;
  force?: boolean;
  /** The stack's database (or DATABASE_URL): also show / clear its database lock holder (issue 15). */
  databaseUrl?: string;
  out?: { write(chunk: string): unknown };
}

/** Shows or releases a stack's deploy lock; returns what it printed as data (for tests and `--json`). */
export async function runLock(opts: LockCommandOptions): Promise<Record<string, unknown>> {
  const { lockStatus, releaseLock, describeHolder } = await import("../../core/release/lock");
  const { ConfigError } = await import("../../core/errors");
  if (!opts.stack)
    throw new ConfigError("`--stack` is required: the stack whose deploy lock to show or release");
  const out = opts.out ?? process.stdout;
  const { stateDirOf } = await import("../state-dir");
  const stateDir = stateDirOf(opts);
  const base = { stateDir, stack: opts.stack };
  if (opts.action === "status") {
    const st = await lockStatus(base);
    const { databaseLockLine } = await import("../shared");
    const db = await databaseLockLine(opts.databaseUrl ?? process.env.DATABASE_URL);
    const result = { stack: opts.stack, ...st, ...(db ? { database: db.state } : {}) };
    if (opts.json) out.write(JSON.stringify(result) + "\n");
    else if (st.state === "free") out.write(`stack "${opts.stack}" is not locked\n`);
    else if (st.state === "held")
      out.write(`stack "${opts.stack}" is locked by ${describeHolder(st.info)}\n`);
    else {
      out.write(
        `stack "${opts.stack}" has a stale lock (${st.reason}) from ${describeHolder(st.info)}; the next ` +
          `deploy takes it over, or remove it with \`safe-deploy lock release --stack ${opts.stack}\`\n`,
      );
    }
    if (db && !opts.json) out.write(db.line + "\n");
    return result;
  }
  const url = opts.databaseUrl ?? process.env.DATABASE_URL;
  if (url && opts.force) {
    // Clears a stale holder row; a live holder's session is never ended from here (releaseDbLock refuses).
    const { releaseDbLock } = await import("../../core/release/db-lock");
    await releaseDbLock(url);
  }
  const released = await releaseLock({ ...base, force: opts.force });
  const result = { stack: opts.stack, released: released ?? null };
  if (opts.json) out.write(JSON.stringify(result) + "\n");
  else if (!released) out.write(`stack "${opts.stack}" was not locked\n`);
  else out.write(`released the deploy lock of stack "${opts.stack}" held by ${describeHolder(released)}\n`);
  return result;
}

/** Registers `lock status|release --stack S [--force] [--json] [--project-dir P] [--state-dir D]`. */
export function register(program: Command): void {
  const lock = program.command("lock").description("Show or release a stack's deploy lock");
  const common = (c: Command) =>
    c
      .requiredOption("--stack <name>", "the stack")
      .addOption(projectDirOption())
      .addOption(stateDirOption())
      .option("--json", "print one JSON object")
      .option("--database-url <url>", "also the database lock of this database (default $DATABASE_URL)");
  common(lock.command("status").description("Who holds the deploy lock, since and until when")).action(
    async (o: {
      stack: string;
      projectDir: string;
      stateDir?: string;
      json?: boolean;
      databaseUrl?: string;
    }) => {
      await runLock({ action: "status", ...o });
    },
  );
  common(
    lock
      .command("release")
      .description("Remove the deploy lock (yours, a stale one, or anyone's with --force)")
      .option("--force", "release a live lock held by another user or host (make sure that deploy is dead)"),
  ).action(
    async (o: { stack: string; projectDir: string; stateDir?: string; json?: boolean; force?: boolean }) => {
      await runLock({ action: "release", ...o });
    },
  );
}
