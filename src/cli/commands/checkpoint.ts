// `checkpoint list|show|restore` (issue 14, part 3): the documented way back from broken Pulumi state.
import type { Command } from "commander";
import { basename } from "node:path";
import { CannotRunError, ConfigError } from "../../core/errors";
import type { CheckpointSummary } from "../../core/release/checkpoints";
import type { ReleaseRecord } from "../../core/release/ledger";
import {
  contextOptions,
  projectDirOption,
  stateDirOption,
  stdout,
  terminal,
  type CommandDeps,
} from "../shared";
import { stateDirOf } from "../state-dir";

/** Options of `safe-deploy checkpoint list|show|restore`. */
export interface CheckpointOpts {
  stack: string;
  projectDir?: string;
  stateDir?: string;
  json?: boolean;
  yes?: boolean;
}

/** `checkpoint list --stack S`: each archived checkpoint, newest first, with its release's time and result. */
export async function runCheckpointList(o: CheckpointOpts, deps: CommandDeps = {}): Promise<void> {
  const { CheckpointStore } = await import("../../core/release/checkpoints");
  const { Ledger } = await import("../../core/release/ledger");
  const out = deps.out ?? stdout;
  const stateDir = stateDirOf(o);
  const store = new CheckpointStore(stateDir, o.stack);
  const { releases } = await new Ledger(stateDir, o.stack).readAll();
  const byId = new Map(releases.map((r) => [r.id, r]));
  const rows = (await store.list()).reverse().map((f) => {
    const r = byId.get(f.release);
    return {
      release: f.release,
      file: f.file,
      bytes: f.bytes,
      time: r?.time,
      result: r?.result,
      commit: r?.commit,
    };
  });
  if (o.json) return out(JSON.stringify(rows, null, 2));
  if (!rows.length) return out(`no checkpoints of stack "${o.stack}" in ${store.dir}`);
  for (const r of rows) {
    out(
      `${r.release}  ${(r.time ?? "").replace("T", " ").slice(0, 19).padEnd(19)}  ${(r.result ?? "(no release record)").padEnd(11)}  ` +
        `${(r.bytes / 1024).toFixed(1).padStart(8)} KiB  ${basename(r.file)}`,
    );
  }
}

function describe(release: string, s: CheckpointSummary): string[] {
  const lines = [
    `checkpoint of release ${release}: deployment version ${s.version ?? "?"}, ${s.resources} resource(s), ` +
      `${s.pendingOperations} pending operation(s)`,
    `secrets: ${s.encryptedSecrets} encrypted by the stack's secrets provider (${s.secretsProvider ?? "unknown"})` +
      (s.plaintextSecrets ? `; ${s.plaintextSecrets} IN PLAINTEXT (written by an older safe-deploy)` : ""),
  ];
  for (const [type, n] of Object.entries(s.types).sort()) lines.push(`  ${String(n).padStart(3)}  ${type}`);
  return lines;
}

/** `checkpoint show RELEASE --stack S`: what the checkpoint holds; `--json` prints it (secrets stay ciphertext). */
export async function runCheckpointShow(
  release: string,
  o: CheckpointOpts,
  deps: CommandDeps = {},
): Promise<void> {
  const { CheckpointStore, summarizeCheckpoint } = await import("../../core/release/checkpoints");
  const out = deps.out ?? stdout;
  const state = await new CheckpointStore(stateDirOf(o), o.stack).read(release);
  if (o.json) return out(JSON.stringify(state, null, 2));
  for (const l of describe(release, summarizeCheckpoint(state))) out(l);
}

/** What `checkpoint restore` does and does not do, said before it asks. */
export function restoreNotice(stack: string, release: string, r: ReleaseRecord | undefined): string {
  const when = r
    ? ` (taken ${r.time.replace("T", " ").slice(0, 19)} UTC, before release ${release}, commit ${r.commit.slice(0, 12)})`
    : "";
  return [
    `checkpoint restore replaces the Pulumi state of stack ${stack} with the checkpoint${when}, then runs refresh.`,
    `  It changes: what Pulumi records about the stack's resources (the refresh then reads what really runs).`,
    `  It does NOT change: running containers, the database, images, volumes or the stack's config.`,
    `  It is NOT a rollback: to run an earlier release use 'safe-deploy rollback --stack ${stack}'.`,
    `  Resources created after the checkpoint are no longer in the state; 'safe-deploy recover --stack ${stack}' lists containers the state does not know.`,
  ].join("\n");
}

/**
 * `checkpoint restore RELEASE --stack S [--yes]`: imports the archived checkpoint under the deploy lock,
 * then `refresh`. Asks first (on a terminal) unless `--yes`.
 */
export async function runCheckpointRestore(
  release: string,
  o: CheckpointOpts,
  deps: CommandDeps = {},
): Promise<void> {
  const { CheckpointStore, summarizeCheckpoint } = await import("../../core/release/checkpoints");
  const { openContext } = await import("../context");
  const out = deps.out ?? stdout;
  const store = new CheckpointStore(stateDirOf(o), o.stack);
  const state = await store.read(release);
  const ctx = await openContext({ ...contextOptions(o, deps), logName: "rollback.log" });
  const record = await ctx.ledger.get(release).catch(() => undefined);
  out(restoreNotice(ctx.stackName, release, record));
  for (const l of describe(release, summarizeCheckpoint(state))) out(l);
  if (!o.yes) {
    const term = terminal(deps);
    if (!term.isTTY)
      throw new ConfigError("checkpoint restore needs confirmation: run it on a terminal or pass --yes");
    const { confirm } = await import("@inquirer/prompts");
    const ok = await confirm(
      { message: `Import this checkpoint into ${ctx.stackName}?`, default: false },
      { input: term.input, output: term.output },
    ).catch((e: Error) => {
      if (e.name === "ExitPromptError")
        throw new CannotRunError("checkpoint restore cancelled (Ctrl-C at the prompt); nothing changed");
      throw e;
    });
    if (!ok) return out("checkpoint restore cancelled; nothing changed");
  }
  const unlock = await ctx.ports().lock(ctx.stackName, `checkpoint restore ${release}`);
  try {
    ctx.log.step(`importing the checkpoint of ${release} into ${ctx.stackName}`);
    await ctx.stack.importState(state);
    ctx.log.step(`refresh of ${ctx.stackName}: reading what really runs`);
    await ctx.stack.refresh({ onOutput: (l) => ctx.fileLog.info(l.trimEnd()) });
  } finally {
    await unlock();
  }
  out(
    `checkpoint of ${release} imported into ${ctx.stackName} and refreshed. Check with 'pulumi preview --stack ${ctx.stackName}', ` +
      `then deploy with 'safe-deploy up --stack ${ctx.stackName}'`,
  );
}

/** Registers `checkpoint list|show RELEASE|restore RELEASE --stack S`. */
export function register(program: Command): void {
  const cmd = program
    .command("checkpoint")
    .description(
      "The stack state archived before each release (secrets encrypted): list, show, and restore it to recover broken Pulumi state",
    );
  const common = (c: Command) =>
    c.requiredOption("--stack <name>", "the stack").addOption(projectDirOption()).addOption(stateDirOption());
  common(cmd.command("list").description("Checkpoints of the stack, newest first, with their release"))
    .option("--json", "one JSON array, for machines")
    .action(async (o: CheckpointOpts) => {
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
      await runCheckpointRestore(release, o);
    });
}
