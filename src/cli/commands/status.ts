import type { Command } from "commander";

/** Options of `safe-deploy status`. */
export interface StatusOpts {
  stack: string;
  projectDir?: string;
  stateDir?: string;
  json?: boolean;
}

/** Registers `status --stack S`. */
export function register(program: Command): void {
  program
    .command("status")
    .description("Stack outputs, container health, the last release and the deploy lock")
    .requiredOption("--stack <name>", "the stack")
    .option("--project-dir <dir>", "the Pulumi project directory", ".")
    .option(
      "--state-dir <dir>",
      "where releases, locks and checkpoints are kept (default <project>/.safe-deploy)",
    )
    .option("--json", "one JSON object, for machines")
    .action(async (o: StatusOpts) => {
      const { runStatus } = await import("../release-commands");
      const code = await runStatus(o);
      if (code) process.exitCode = code;
    });
}
