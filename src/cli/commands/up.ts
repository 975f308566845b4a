import type { Command } from "commander";
import type { ReleaseRecord } from "../../core/release/ledger";
import {
  contextOptions,
  projectDirOption,
  stateDirOption,
  stdout,
  summary,
  type CommandDeps,
} from "../shared";

/** Options of `safe-deploy up` (flags as commander parses them). */
export interface UpOpts {
  stack: string;
  /** The Pulumi project (holds Pulumi.yaml); default the current directory. */
  projectDir?: string;
  /** Where releases, locks and checkpoints are kept; default `<projectDir>/.safe-deploy`. */
  stateDir?: string;
  allowDirty?: boolean;
  /** Deploy although applied migrations changed since the last good release (the database has the edit). */
  allowMigrationEdits?: boolean;
  /** `--no-rollback` sets this false: leave a failed release as it is for a person to look at. */
  rollback?: boolean;
  /** `--no-soak` sets this false: skip the post-cutover watch. */
  soak?: boolean;
  /** Create the stack when it does not exist yet. */
  create?: boolean;
}

/** `up --stack S`: the guarded deploy. Exit 0 healthy; 1 failed (rolled back or not); 2 config; 3 cannot run. */
export async function runUp(o: UpOpts, deps: CommandDeps = {}): Promise<ReleaseRecord> {
  const { openContext } = await import("../context");
  const { deploy } = await import("../../core/release/orchestrator");
  const { CheckFailedError } = await import("../../core/errors");
  const out = deps.out ?? stdout;
  const ctx = await openContext({ ...contextOptions(o, deps), create: o.create, logName: "update.log" });
  const autoRollback = o.rollback === false ? false : ctx.config.rollback.auto;
  const { exitCode, release } = await deploy(
    { stack: ctx.stackName, autoRollback, soak: o.soak !== false },
    ctx.ports({ allowDirty: o.allowDirty, allowMigrationEdits: o.allowMigrationEdits }),
  );
  out(summary(release));
  // Refused by `rollback.requireNoLoss` (issue 20): a setting the user chose, so a usage error (exit 2).
  if (release.failedStage === "preflight" && /rollback\.requireNoLoss: /.test(release.error ?? "")) {
    const { ConfigError } = await import("../../core/errors");
    throw new ConfigError(`deploy of ${ctx.stackName} refused at preflight: ${release.error}`);
  }
  if (exitCode !== 0) {
    const back = release.rolledBackTo ? `; rolled back to ${release.rolledBackTo}` : "";
    throw new CheckFailedError(
      `deploy of ${ctx.stackName} failed at ${release.failedStage ?? "?"}: ${release.error ?? "see logs/update.log"}${back}. ` +
        `Details: logs/update.log, 'safe-deploy history --stack ${ctx.stackName}'`,
    );
  }
  return release;
}

/** Registers `up --stack S`. */
export function register(program: Command): void {
  program
    .command("up")
    .description(
      "Guarded deploy: preflight, lock, release record, pulumi up (image, backup, migration, containers, " +
        "health gate), soak, automatic rollback on failure, notifications",
    )
    .requiredOption("--stack <name>", "the stack to deploy (staging, production)")
    .addOption(projectDirOption())
    .addOption(stateDirOption())
    .option("--allow-dirty", "deploy even with uncommitted changes in the git tree")
    .option(
      "--allow-migration-edits",
      "deploy although migrations the last good release applied were edited or removed since",
    )
    .option("--no-rollback", "do not roll back automatically when the deploy fails (overrides rollback.auto)")
    .option("--no-soak", "skip the post-cutover soak checks")
    .option("--create", "create the stack if it does not exist")
    .action(async (o: UpOpts) => {
      await runUp(o);
    });
}
