import { Command, Option } from "commander";

/** Options of `safe-deploy rollback` (flags as commander parses them). */
export interface RollbackOpts {
  stack: string;
  projectDir?: string;
  stateDir?: string;
  /** The last good release before the current one, with the backup its successor took. */
  quick?: boolean;
  to?: string;
  commit?: string;
  backup?: string;
  /** `--full SHA FILE`: program of a commit and a database backup together. */
  full?: string[];
  status?: boolean;
  list?: boolean;
  yes?: boolean;
}

/** Registers `rollback --stack S [--quick|--to RELEASE|--commit SHA|--backup FILE|--full SHA FILE|--status|--list]`. */
export function register(program: Command): void {
  const modes = ["quick", "to", "commit", "backup", "full", "status", "list"];
  const conflicting = (name: string) => modes.filter((m) => m !== name);
  program
    .command("rollback")
    .description(
      "Re-apply an earlier release (its program commit and stack config) against the current state, " +
        "restoring a database backup when the schema differs; no flags on a terminal: interactive menu",
    )
    .requiredOption("--stack <name>", "the stack")
    .option("--project-dir <dir>", "the Pulumi project directory", ".")
    .option(
      "--state-dir <dir>",
      "where releases, locks and checkpoints are kept (default <project>/.safe-deploy)",
    )
    .addOption(
      new Option(
        "--quick",
        "back to the last good release before the current one (and its backup)",
      ).conflicts(conflicting("quick")),
    )
    .addOption(
      new Option("--to <release>", "back to this release id (see `history`)").conflicts(conflicting("to")),
    )
    .addOption(
      new Option(
        "--commit <sha>",
        "re-apply the program of this commit (with its release's config)",
      ).conflicts(conflicting("commit")),
    )
    .addOption(
      new Option(
        "--backup <file>",
        "restore only the database from this backup (safety backup first)",
      ).conflicts(conflicting("backup")),
    )
    .addOption(
      new Option(
        "--full <sha-and-file...>",
        "program of commit SHA and database from backup FILE: --full SHA FILE",
      ).conflicts(conflicting("full")),
    )
    .addOption(
      new Option("--status", "what is running, the last good release, backups and the lock").conflicts(
        conflicting("status"),
      ),
    )
    .addOption(
      new Option("--list", "releases and backups a rollback can go to").conflicts(conflicting("list")),
    )
    .option("--yes", "do not ask for confirmation")
    .action(async (o: RollbackOpts) => {
      const { runRollback } = await import("../release-commands");
      await runRollback(o);
    });
}
