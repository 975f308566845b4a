// `checkpoint list|show|restore` (issue 14, part 3): the documented way back from broken Pulumi state.
import { basename } from "node:path";
import type { CheckpointOpts } from "./commands/checkpoint";
import type { CommandDeps } from "./release-commands";
import { openContext } from "./release-context";
import { stateDirOf } from "./state-dir";
import { CannotRunError, ConfigError } from "../core/errors";
import { CheckpointStore, summarizeCheckpoint, type CheckpointSummary } from "../core/release/checkpoints";
import { Ledger, type ReleaseRecord } from "../core/release/ledger";

const stdout = (line: string) => process.stdout.write(line + "\n");

/** `checkpoint list --stack S`: each archived checkpoint, newest first, with its release's time and result. */
export async function runCheckpointList(o: CheckpointOpts, deps: CommandDeps = {}): Promise<void> {
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
  const out = deps.out ?? stdout;
  const store = new CheckpointStore(stateDirOf(o), o.stack);
  const state = await store.read(release);
  const ctx = await openContext({
    stack: o.stack,
    projectDir: o.projectDir,
    stateDir: o.stateDir,
    openStack: deps.openStack,
    console: deps.console,
    logName: "rollback.log",
  });
  const record = await ctx.ledger.get(release).catch(() => undefined);
  out(restoreNotice(ctx.stackName, release, record));
  for (const l of describe(release, summarizeCheckpoint(state))) out(l);
  if (!o.yes) {
    const term = deps.terminal ?? {
      input: process.stdin,
      output: process.stdout,
      isTTY: !!process.stdin.isTTY && !!process.stdout.isTTY,
    };
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
