import type { Command } from "commander";

/** Options of `safe-deploy seed`. */
export interface SeedOpts {
  stack: string;
  projectDir?: string;
  stateDir?: string;
  /** A backup file to restore. */
  backup?: string;
  /** A directory of backups (e.g. production's): its newest non-safety backup is restored. */
  fromDir?: string;
  yes?: boolean;
  /** Seeding a stack whose name says production needs this on top of --yes. */
  allowProduction?: boolean;
}

/** Registers `seed --stack staging (--backup FILE | --from-dir DIR) [--yes]`. */
export function register(program: Command): void {
  program
    .command("seed")
    .description(
      "Load a stack's database (staging) from another's backup (production) before rehearsing a deploy: " +
        "verified, safety backup first, restored into a new database and swapped in",
    )
    .requiredOption("--stack <name>", "the stack whose database is replaced (usually staging)")
    .option("--backup <file>", "the backup to load")
    .option("--from-dir <dir>", "load the newest pre-deploy/manual backup of this directory")
    .option("--project-dir <dir>", "the Pulumi project directory", ".")
    .option(
      "--state-dir <dir>",
      "where releases, locks and checkpoints are kept (default <project>/.safe-deploy)",
    )
    .option("--yes", "do not ask for confirmation")
    .option("--allow-production", "allow seeding a stack whose name contains 'prod'")
    .action(async (o: SeedOpts) => {
      const { runSeed } = await import("../release-commands");
      await runSeed(o);
    });
}
