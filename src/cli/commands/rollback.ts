import { Command, Option } from "commander";
import { basename } from "node:path";
import type { BackupEntry } from "../../core/backup";
import { CheckFailedError, ConfigError } from "../../core/errors";
import type { ReleaseRecord } from "../../core/release/ledger";
import { describeStep, manualRollbackPlan } from "../../core/release/plan";
import type { ReleaseContext } from "../context";
import {
  cancelled,
  contextOptions,
  projectDirOption,
  requireBackup,
  stateDirOption,
  stdout,
  summary,
  terminal,
  unfinishedRelease,
  type CommandDeps,
} from "../shared";
import { runHistory } from "./history";
import { runStatus } from "./status";

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

/**
 * The good release before the one running now (`--quick`), and why it is the one. When the running one
 * is itself a rollback, "before" counts from the release it re-applied, so a second quick rollback goes
 * further back, never forward again. When the newest deploy failed without being rolled back (or was
 * interrupted: still `pending`), the stack runs no good release at all, and the target is the last
 * good one, not the one before it. Releases stopped at preflight changed nothing and do not count.
 */
export function quickChoice(releases: readonly ReleaseRecord[]): { target: ReleaseRecord; why: string } {
  const good = releases.filter((r) => r.result === "good");
  const unfinishedNewest = unfinishedRelease(releases);
  if (unfinishedNewest && good[0]) {
    return {
      target: good[0],
      why: `the newest ${unfinishedNewest.what}, so the last good release ${good[0].id} is the target`,
    };
  }
  const current = good[0];
  const anchor = (current?.rolledBackTo && releases.find((r) => r.id === current.rolledBackTo)) || current;
  const target =
    anchor && good.find((r) => r.time < anchor.time || (r.time === anchor.time && r.id < anchor.id));
  if (!target) {
    throw new ConfigError(
      `--quick needs a good release before the running one${current ? ` (${current.id})` : ""}; none is recorded. ` +
        `See 'safe-deploy rollback --list' and use --to RELEASE or --backup FILE`,
    );
  }
  return {
    target,
    why: `${current!.id} is running${anchor !== current ? ` (a rollback to ${anchor!.id})` : ""}; the good release before it is ${target.id}`,
  };
}

/** The target of `--quick` (see `quickChoice`). */
export function quickTarget(releases: readonly ReleaseRecord[]): ReleaseRecord {
  return quickChoice(releases).target;
}

/** A chosen rollback, before planning. */
interface Choice {
  target?: ReleaseRecord;
  commit?: string;
  backupFile?: string;
}

async function resolveCommit(
  ctx: ReleaseContext,
  releases: readonly ReleaseRecord[],
  sha: string,
): Promise<Choice> {
  const { git } = await import("../context");
  const full = await git(ctx.projectDir, ["rev-parse", "--verify", `${sha}^{commit}`]).catch(() => {
    throw new ConfigError(`--commit ${sha}: no such commit in ${ctx.projectDir} (try 'git log --oneline')`);
  });
  const target = releases.find((r) => r.commit === full && r.result === "good");
  return target ? { target } : { commit: full };
}

/**
 * The release `--to ID` names. An id of another stack's release (the ids look alike) says which stack it
 * belongs to; every other mistake names the flag.
 */
async function releaseOfFlag(ctx: ReleaseContext, id: string): Promise<ReleaseRecord> {
  try {
    return await ctx.ledger.get(id);
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    const { readdir } = await import("node:fs/promises");
    const { existsSync } = await import("node:fs");
    const { join } = await import("node:path");
    const root = join(ctx.stateDir, "releases");
    const owners = (await readdir(root).catch(() => [] as string[]))
      .filter((d) => /^r-[\w-]+$/.test(id) && existsSync(join(root, d, `${id}.json`)))
      .map((d) => decodeURIComponent(d))
      .filter((s) => s !== ctx.stackName);
    if (owners.length) {
      throw new ConfigError(
        `--to ${id}: that is a release of stack "${owners[0]}", not of "${ctx.stackName}": pass ` +
          `--stack ${owners[0]} to roll that stack back, or pick a release of ${ctx.stackName} from ` +
          `'safe-deploy history --stack ${ctx.stackName}'`,
      );
    }
    throw new ConfigError(`--to ${id}: ${e.message}`);
  }
}

/** Flags to a choice; undefined when no mode flag was given (the menu decides). */
async function choiceFromFlags(
  ctx: ReleaseContext,
  o: RollbackOpts,
  releases: ReleaseRecord[],
  deps: CommandDeps,
): Promise<Choice | undefined> {
  if (o.quick) {
    const { target, why } = quickChoice(releases);
    (deps.out ?? stdout)(`--quick: ${why}`);
    return { target };
  }
  if (o.to) {
    const target = await releaseOfFlag(ctx, o.to);
    if (target.result !== "good") {
      throw new ConfigError(
        `--to ${o.to}: that release ended ${target.result}; pick a good one from 'safe-deploy history'`,
      );
    }
    return { target };
  }
  if (o.commit) return resolveCommit(ctx, releases, o.commit);
  if (o.backup) return { backupFile: await requireBackup(o.backup) };
  if (o.full) {
    return {
      ...(await resolveCommit(ctx, releases, o.full[0])),
      backupFile: await requireBackup(o.full[1], "--full SHA"),
    };
  }
  return undefined;
}

/**
 * Refuses a rollback whose program is gone from git (a force-push rewrote history, a shallow CI clone)
 * before anything changes, naming the ways on.
 */
async function requireCommit(ctx: ReleaseContext, commit: string, target?: ReleaseRecord): Promise<void> {
  const { hasCommit } = await import("../context");
  if (await hasCommit(ctx.projectDir, commit)) return;
  throw new ConfigError(
    `rollback refused: ${target ? `release ${target.id} ran commit` : "commit"} ${commit.slice(0, 12)}, which is not ` +
      `in the git repository at ${ctx.projectDir} (history rewritten by a force-push, or a shallow clone), so its ` +
      `program cannot be re-applied; nothing was changed. Fetch it ('git fetch origin ${commit}' or ` +
      `'git fetch --unshallow') and run again, pick another release with --to RELEASE ('safe-deploy rollback ` +
      `--list'), or restore only the database with --backup FILE`,
  );
}

/**
 * A rollback returns the stack's own database to an earlier state: a backup of another database (another
 * stack's, another app's) is refused before anything changes, naming the commands that load one on purpose.
 */
async function requireSameDatabase(file: string, url: string, stack: string): Promise<void> {
  const { readManifest, parseDatabaseUrl } = await import("../../core/backup");
  const from = (await readManifest(file)).database;
  const ours = parseDatabaseUrl(url).database;
  if (from === ours) return;
  throw new ConfigError(
    `rollback refused: ${file} is a backup of database "${from}", not of "${ours}", the database of stack ` +
      `${stack}; nothing was changed. Pick one of ${stack}'s backups ('safe-deploy rollback --stack ${stack} ` +
      `--list'); to load another database's data on purpose, use 'safe-deploy seed --stack ${stack} --backup ` +
      `FILE' or 'safe-deploy backup restore FILE'`,
  );
}

/** Plans a choice, shows the plan, asks (unless --yes), runs it. */
async function execute(
  ctx: ReleaseContext,
  choice: Choice,
  o: RollbackOpts,
  deps: CommandDeps,
): Promise<void> {
  const { migrationsAt, readSchemaVersion } = await import("../context");
  const { rollbackTo } = await import("../../core/release/orchestrator");
  const out = deps.out ?? stdout;
  const releases = await ctx.ledger.list();
  const db = await ctx.database();
  const currentSchema = db ? await readSchemaVersion(db, ctx.config) : undefined;
  const ports = ctx.ports({});
  const currentCommit = await ports.git.head();
  const commit = choice.target?.commit ?? choice.commit;
  if (commit && commit !== currentCommit) await requireCommit(ctx, commit, choice.target);
  const plan = manualRollbackPlan({
    releases,
    target: choice.target,
    commit: choice.commit,
    backupFile: choice.backupFile,
    currentSchema,
    knownSchemas: choice.commit ? await migrationsAt(ctx.projectDir, ctx.config, choice.commit) : undefined,
    currentCommit,
  });
  if (!plan.ok) throw new ConfigError(`rollback refused: ${plan.reason}`);
  if (choice.backupFile && db) await requireSameDatabase(choice.backupFile, db.url, ctx.stackName);
  out(`rollback of ${ctx.stackName}: ${plan.why}`);
  plan.steps.forEach((s, i) => out(`  ${i + 1}. ${describeStep(s)}`));
  if (!o.yes) {
    const term = terminal(deps);
    if (!term.isTTY) throw new ConfigError("rollback needs confirmation: run it on a terminal or pass --yes");
    const { confirm } = await import("@inquirer/prompts");
    const ok = await confirm(
      { message: "Go ahead?", default: false },
      { input: term.input, output: term.output },
    );
    if (!ok) {
      out("rollback cancelled; nothing changed");
      return;
    }
  }
  const { exitCode, release } = await rollbackTo(
    {
      stack: ctx.stackName,
      steps: plan.steps,
      target: choice.target,
      commit: choice.commit,
      backupFile: plan.backupFile,
    },
    ports,
  );
  if (release) out(summary(release));
  if (exitCode !== 0) {
    throw new CheckFailedError(
      `rollback of ${ctx.stackName} failed; see logs/rollback.log and 'safe-deploy rollback --stack ${ctx.stackName} --status'`,
    );
  }
  out(`rollback of ${ctx.stackName} done: healthy`);
}

async function printBackups(ctx: ReleaseContext, out: (l: string) => void): Promise<BackupEntry[]> {
  const { listBackups } = await import("../../core/backup");
  const list = await listBackups(ctx.backupDir);
  if (!list.length) out(`no backups in ${ctx.backupDir}`);
  for (const b of list) {
    const size = b.sizeBytes === undefined ? "?" : `${(b.sizeBytes / 2 ** 20).toFixed(1)} MiB`;
    out(
      `  ${b.createdAt.replace("T", " ").slice(0, 19)}  ${(b.label ?? "-").padEnd(10)} ${size.padStart(10)}  ${b.file}`,
    );
  }
  return list;
}

/** `rollback --stack S [...]`: flags, or with none on a terminal the users' seven-option menu. */
export async function runRollback(o: RollbackOpts, deps: CommandDeps = {}): Promise<void> {
  const { openContext } = await import("../context");
  const out = deps.out ?? stdout;
  if (o.status) {
    const code = await runStatus({ stack: o.stack, projectDir: o.projectDir, stateDir: o.stateDir }, deps);
    if (code) process.exitCode = code;
    return;
  }
  // Flag mistakes are found before the stack is opened (which needs Pulumi and takes time).
  if (o.full && o.full.length !== 2) throw new ConfigError("--full takes two values: --full SHA FILE");
  if (o.backup) await requireBackup(o.backup);
  if (o.full) await requireBackup(o.full[1], "--full SHA");
  const mode = o.quick || o.to || o.commit || o.backup || o.full || o.list;
  if (!mode && !terminal(deps).isTTY) {
    throw new ConfigError(
      "rollback needs a mode when not on a terminal: --quick, --to RELEASE, --commit SHA, --backup FILE, " +
        "--full SHA FILE, --status or --list",
    );
  }
  const ctx = await openContext({ ...contextOptions(o, deps), logName: "rollback.log" });
  if (o.list) {
    out("releases (newest first):");
    await runHistory({ stack: o.stack, stateDir: ctx.stateDir }, out);
    out(`backups in ${ctx.backupDir}:`);
    await printBackups(ctx, out);
    return;
  }
  const releases = await ctx.ledger.list();
  const choice = await choiceFromFlags(ctx, o, releases, deps);
  // Prompts come before anything changes: Ctrl-C at one is a cancel, said as such (exit 3, as any
  // command stopped by Ctrl-C), not the prompt library's "User force closed the prompt".
  return (choice ? execute(ctx, choice, o, deps) : menu(ctx, o, deps)).catch(cancelled("rollback"));
}

/** The users' rollback.sh menu, on @inquirer/prompts; returns after an action or "exit". */
async function menu(ctx: ReleaseContext, o: RollbackOpts, deps: CommandDeps): Promise<void> {
  const { listBackups } = await import("../../core/backup");
  const out = deps.out ?? stdout;
  const { select, input } = await import("@inquirer/prompts");
  const term = terminal(deps);
  const io = { input: term.input, output: term.output };
  for (;;) {
    const releases = await ctx.ledger.list();
    const action = await select(
      {
        message: `Rollback of ${ctx.stackName}: what do you want to do?`,
        choices: [
          { name: "1. Recent releases", value: "releases" },
          { name: "2. Available backups", value: "backups" },
          { name: "3. Roll back to a commit", value: "commit" },
          { name: "4. Restore the database from a backup", value: "backup" },
          { name: "5. Full rollback (commit and database)", value: "full" },
          { name: "6. System status", value: "status" },
          { name: "7. Quick rollback (last good release and its backup)", value: "quick" },
          { name: "Exit", value: "exit" },
        ],
      },
      io,
    );
    // The release shown is the release re-applied: several releases can share a commit (the stack file
    // may change without one), so the choice is the release itself, not its commit.
    const pickCommit = async (): Promise<Choice> => {
      const good = releases.filter((r) => r.result === "good");
      const id = await select(
        {
          message: "Which release?",
          choices: [
            ...good.slice(0, 10).map((r) => ({
              name: `${r.id}  ${r.commit.slice(0, 12)}  schema ${r.schemaVersion ?? "-"}`,
              value: r.id,
            })),
            { name: "another commit...", value: "" },
          ],
        },
        io,
      );
      const target = good.find((r) => r.id === id);
      if (target) return { target };
      return resolveCommit(ctx, releases, await input({ message: "Commit (sha):", required: true }, io));
    };
    const pickBackup = async () => {
      const list = await listBackups(ctx.backupDir);
      if (!list.length) throw new ConfigError(`no backups in ${ctx.backupDir}`);
      return select(
        {
          message: "Which backup?",
          choices: list.slice(0, 20).map((b) => ({
            name: `${b.createdAt.replace("T", " ").slice(0, 19)}  ${b.label ?? "-"}  ${basename(b.file)}`,
            value: b.file,
          })),
        },
        io,
      );
    };
    switch (action) {
      case "exit":
        return;
      case "releases":
        await runHistory({ stack: ctx.stackName, stateDir: ctx.stateDir }, out);
        break;
      case "backups":
        await printBackups(ctx, out);
        break;
      case "status":
        await runStatus({ stack: ctx.stackName, projectDir: ctx.projectDir, stateDir: ctx.stateDir }, deps);
        break;
      case "quick": {
        const { target, why } = quickChoice(releases);
        out(`quick rollback: ${why}`);
        return execute(ctx, { target }, o, deps);
      }
      case "commit":
        return execute(ctx, await pickCommit(), o, deps);
      case "backup":
        return execute(ctx, { backupFile: await pickBackup() }, o, deps);
      case "full": {
        const commit = await pickCommit();
        return execute(ctx, { ...commit, backupFile: await pickBackup() }, o, deps);
      }
    }
  }
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
    .addOption(projectDirOption())
    .addOption(stateDirOption())
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
      await runRollback(o);
    });
}
