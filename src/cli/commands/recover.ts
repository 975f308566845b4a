// `recover` (issue 14, part 2 item 4): what a killed `safe-deploy up` leaves behind. Since Pulumi 3.28 the
// next `up` carries on past pending operations; the blockers are the backend's lock (file backend:
// `.pulumi/locks/...`) and containers whose pending create was dropped (`stack import` or the next `up`),
// which hold the fixed port ("port is already allocated") or keep answering behind the blue-green proxy.
import type { Command } from "commander";
import { CannotRunError, ConfigError } from "../../core/errors";
import {
  contextOptions,
  projectDirOption,
  stateDirOption,
  stdout,
  terminal,
  type CommandDeps,
} from "../shared";

/** Options of `safe-deploy recover`. */
export interface RecoverOpts {
  stack: string;
  projectDir?: string;
  stateDir?: string;
  yes?: boolean;
}

/** Whether `pulumi cancel` failed only because nothing was running (the Pulumi Cloud backend says so). */
function nothingToCancel(e: unknown): boolean {
  return /no (update|operation)s? (is )?(currently )?in progress|not currently (running|locked)/i.test(
    e instanceof Error ? e.message : String(e),
  );
}

/**
 * `recover --stack S [--yes]`: under the deploy lock (so no deploy of ours runs: a Pulumi lock now is
 * stale) `pulumi cancel`, then the orphan containers listed and, confirmed or with `--yes`, removed.
 */
export async function runRecover(o: RecoverOpts, deps: CommandDeps = {}): Promise<void> {
  const { openContext } = await import("../context");
  const { removeContainers, stackContainers } = await import("../containers");
  const { orphanContainers } = await import("../../core/release/labels");
  const out = deps.out ?? stdout;
  const ctx = await openContext({ ...contextOptions(o, deps), logName: "rollback.log" });
  const stack = ctx.stackName;
  // Refuses, naming the holder, while a deploy or rollback runs: its Pulumi lock and new containers are live.
  const unlock = await ctx.ports().lock(stack, "recover");
  try {
    await ctx.stack.cancel().then(
      () => out(`Pulumi lock of ${stack} cleared (pulumi cancel): no deploy holds the deploy lock`),
      (e: unknown) => {
        if (!nothingToCancel(e)) throw e;
        out(`no Pulumi update of ${stack} in progress`);
      },
    );
    const orphans = orphanContainers(
      await stackContainers(ctx.config.docker.host, stack),
      await ctx.stack.exportState(),
    );
    if (!orphans.length) {
      out(`no orphan containers of ${stack} at ${ctx.config.docker.host}`);
      return;
    }
    out(
      `containers labelled safe-deploy.stack=${stack} that the state does not know (left by a killed update):`,
    );
    for (const c of orphans)
      out(`  ${c.name}  role=${c.role || "?"}  ${c.state}  created ${c.created}  ${c.id.slice(0, 12)}`);
    if (!o.yes) {
      const term = terminal(deps);
      if (!term.isTTY)
        throw new ConfigError(
          `${orphans.length} orphan container(s) of ${stack} not removed: confirm on a terminal or pass --yes`,
        );
      const { confirm } = await import("@inquirer/prompts");
      const ok = await confirm(
        { message: `Remove these ${orphans.length} container(s)? (their volumes stay)`, default: false },
        { input: term.input, output: term.output },
      ).catch((e: Error) => {
        if (e.name === "ExitPromptError")
          throw new CannotRunError("recover cancelled (Ctrl-C at the prompt)");
        throw e;
      });
      if (!ok) return out("orphan containers left in place");
    }
    await removeContainers(
      ctx.config.docker.host,
      orphans.map((c) => c.id),
    );
    out(`removed ${orphans.length} orphan container(s); deploy again with 'safe-deploy up --stack ${stack}'`);
  } finally {
    await unlock();
  }
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
    .addOption(projectDirOption())
    .addOption(stateDirOption())
    .option("--yes", "remove the orphan containers without asking (scripts)")
    .action(async (o: RecoverOpts) => {
      await runRecover(o);
    });
}
