import type { Command } from "commander";

/** Options of `safe-deploy checkpoint list|show|restore`. */
export interface CheckpointOpts {
  stack: string;
  projectDir?: string;
  stateDir?: string;
  json?: boolean;
  yes?: boolean;
}

/** Registers `checkpoint list|show RELEASE|restore RELEASE --stack S`. */
export function register(program: Command): void {
  const cmd = program
    .command("checkpoint")
    .description(
      "The stack state archived before each release (secrets encrypted): list, show, and restore it to recover broken Pulumi state",
    );
  const common = (c: Command) =>
    c
      .requiredOption("--stack <name>", "the stack")
      .option("--project-dir <dir>", "the Pulumi project directory", ".")
      .option(
        "--state-dir <dir>",
        "where releases, locks and checkpoints are kept (default <project>/.safe-deploy)",
      );
  common(cmd.command("list").description("Checkpoints of the stack, newest first, with their release"))
    .option("--json", "one JSON array, for machines")
    .action(async (o: CheckpointOpts) => {
      const { runCheckpointList } = await import("../checkpoint-commands");
      await runCheckpointList(o);
    });
  common(
    cmd
      .command("show")
      .argument("<release>", "the release id (see `checkpoint list`)")
      .description(
        "What a checkpoint holds: resources by type, pending operations, secrets (never their values)",
      ),
  )
    .option("--json", "the checkpoint itself (secrets stay ciphertext)")
    .action(async (release: string, o: CheckpointOpts) => {
      const { runCheckpointShow } = await import("../checkpoint-commands");
      await runCheckpointShow(release, o);
    });
  common(
    cmd
      .command("restore")
      .argument("<release>", "the release whose checkpoint to import")
      .description(
        "Recovery of broken state: import the checkpoint into the stack, then refresh. Changes no container and no data; not a rollback",
      ),
  )
    .option("--yes", "do not ask for confirmation (scripts)")
    .action(async (release: string, o: CheckpointOpts) => {
      const { runCheckpointRestore } = await import("../checkpoint-commands");
      await runCheckpointRestore(release, o);
    });
}
