import type { Command } from "commander";

/** Options of `safe-deploy recover`. */
export interface RecoverOpts {
  stack: string;
  projectDir?: string;
  stateDir?: string;
  yes?: boolean;
}

/** Registers `recover --stack S [--yes]`. */
export function register(program: Command): void {
  program
    .command("recover")
    .description(
      "After a killed deploy: clear the stale Pulumi lock (only when no deploy holds the deploy lock) and remove " +
        "containers with the stack's labels that the state does not know",
    )
    .requiredOption("--stack <name>", "the stack")
    .option("--project-dir <dir>", "the Pulumi project directory", ".")
    .option(
      "--state-dir <dir>",
      "where releases, locks and checkpoints are kept (default <project>/.safe-deploy)",
    )
    .option("--yes", "remove the orphan containers without asking (scripts)")
    .action(async (o: RecoverOpts) => {
      const { runRecover } = await import("../recover");
      await runRecover(o);
    });
}
