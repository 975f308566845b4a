// What the release verbs (`up`, `rollback`, `status`, `seed`) share: the test seams, the context options
// of their flags, the release summary and the unfinished-release rule. Light at module scope: the
// commands import it when they load (src/cli/index.ts), the engine stays behind `await import()`.
import { Option, type Command } from "commander";
import type { ContextOptions } from "./context";
import type { StackOptions } from "./stack";
import { CannotRunError, ConfigError } from "../core/errors";
import type { ReleaseRecord } from "../core/release/ledger";
import type { StackAccess } from "../core/release/stack-port";

/** What tests swap: the stack (no Pulumi engine here), where text goes, and the terminal of the menu. */
export interface CommandDeps {
  openStack?: (o: StackOptions) => Promise<StackAccess>;
  out?: (line: string) => void;
  console?: { write(chunk: string): unknown };
  /** The menu's terminal (default stdin/stdout); `isTTY` decides whether there is one. */
  terminal?: { input: NodeJS.ReadableStream; output: NodeJS.WritableStream; isTTY: boolean };
}

/** Prints one line on stdout (the commands' default `out`). */
export const stdout = (line: string) => process.stdout.write(line + "\n");

/** The `openContext` options of a command's flags and test deps. */
export function contextOptions(
  o: { stack: string; projectDir?: string; stateDir?: string },
  deps: CommandDeps,
): ContextOptions {
  return {
    stack: o.stack,
    projectDir: o.projectDir,
    stateDir: o.stateDir,
    openStack: deps.openStack,
    console: deps.console,
  };
}

/**
 * The migration tool flags of `rehearse` and `drift`: `--tool` (with `command`: the user's own apply and
 * current commands) and the variable the tool reads its URL from.
 */
export function toolCommandOptions(cmd: Command): Command {
  return cmd
    .option("--tool <tool>", "node-pg-migrate|prisma|alembic|command", "node-pg-migrate")
    .option(
      "--command <cmd>",
      "with --tool command: applies migrations; {file} runs it once per migration file",
    )
    .option(
      "--current-command <cmd>",
      "with --tool command: prints the latest applied migration (file name or version), or nothing",
    )
    .option("--database-url-env <name>", "the variable the tool reads its URL from, set like DATABASE_URL");
}

/** `1m 05s` style, for a human scanning a table. */
export function formatDuration(ms: number | undefined): string {
  if (ms === undefined) return "-";
  const s = Math.round(ms / 1000);
  return s < 60 ? `${s}s` : `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, "0")}s`;
}

/** `--project-dir`: the stack's Pulumi project, for every command that reads its releases. */
export const projectDirOption = () =>
  new Option("--project-dir <dir>", "the Pulumi project directory").default(".");

/** `--state-dir`: where safe-deploy keeps its own records of the stack. */
export const stateDirOption = () =>
  new Option(
    "--state-dir <dir>",
    "where releases, locks and checkpoints are kept (default <project>/.safe-deploy)",
  );

/** One line about a release, printed after `up` and `rollback`. */
export function summary(r: ReleaseRecord): string {
  const parts = [
    `release ${r.id}`,
    `result ${r.result}${r.failedStage ? ` (${r.failedStage})` : ""}`,
    `commit ${r.commit.slice(0, 12)}`,
    r.schemaVersion ? `schema ${r.schemaVersion}` : undefined,
    r.backupFile ? `backup ${r.backupFile}` : undefined,
    `in ${formatDuration(r.durationMs)}`,
  ];
  return parts.filter(Boolean).join(", ");
}

/**
 * The newest deploy when it left the stack running no good release: it failed and was not rolled back,
 * or it is still `pending` (interrupted, or running now). Releases stopped at preflight changed nothing
 * and do not count. `what` says which, for `status` and `--quick`.
 */
export function unfinishedRelease(
  releases: readonly ReleaseRecord[],
): { release: ReleaseRecord; what: string } | undefined {
  const newest = releases.find((r) => r.failedStage !== "preflight");
  if (!newest || (newest.result !== "bad" && newest.result !== "pending")) return undefined;
  const what =
    newest.result === "pending"
      ? `release ${newest.id} never finished (interrupted?)`
      : `release ${newest.id} failed${newest.failedStage ? ` at ${newest.failedStage}` : ""} and was not rolled back`;
  return { release: newest, what };
}

/** The menu's and the confirmations' terminal: the test's, or stdin/stdout. */
export function terminal(deps: CommandDeps) {
  return (
    deps.terminal ?? {
      input: process.stdin,
      output: process.stdout,
      isTTY: !!process.stdin.isTTY && !!process.stdout.isTTY,
    }
  );
}

/** Turns Ctrl-C at a prompt (@inquirer/prompts' ExitPromptError) into "cancelled; nothing changed". */
export function cancelled(what: string) {
  return (e: unknown): never => {
    if (e instanceof Error && e.name === "ExitPromptError")
      throw new CannotRunError(`${what} cancelled (Ctrl-C at the prompt); nothing changed`);
    throw e;
  };
}

/** The absolute path of a backup a flag names; a ConfigError naming the flag when there is no such file. */
export async function requireBackup(file: string, flag = "--backup"): Promise<string> {
  const { existsSync } = await import("node:fs");
  const { resolve } = await import("node:path");
  const abs = resolve(file);
  if (!existsSync(abs))
    throw new ConfigError(`${flag} ${file}: no such file (list them with 'safe-deploy rollback --list')`);
  return abs;
}

/**
 * The database deploy lock for a verb that changes a database it knows only by URL (`migrate up|down`):
 * refused (exit 1, naming the holder) while a deploy from any clone holds it; a no-op for other actions
 * and inside the deploy that holds it (issue 15).
 */
export async function holdDatabaseLock(
  databaseUrl: string,
  command: string,
  action: string,
): Promise<() => Promise<void>> {
  if (action !== "up" && action !== "down") return async () => {};
  const { acquireDbLock } = await import("../core/release/db-lock");
  const lock = await acquireDbLock({ databaseUrl, stack: "", command });
  return () => lock.release();
}

/** The database lock's state and one line about it for `lock status`; undefined without a database URL. */
export async function databaseLockLine(databaseUrl: string | undefined) {
  if (!databaseUrl) return undefined;
  const { dbLockStatus, describeDbHolder } = await import("../core/release/db-lock");
  const state = await dbLockStatus(databaseUrl);
  const line =
    state.state === "free"
      ? "database lock: free"
      : state.state === "stale"
        ? `database lock: stale holder row (its session is gone), replaced by the next deploy: ${describeDbHolder(state.holder)}`
        : `database lock: held by ${state.holder ? describeDbHolder(state.holder) : `server process ${state.backendPid} (no holder row yet)`}`;
  return { state, line };
}
