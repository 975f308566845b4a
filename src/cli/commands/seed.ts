import type { Command } from "commander";
import { ConfigError } from "../../core/errors";
import {
  cancelled,
  contextOptions,
  projectDirOption,
  requireBackup,
  stateDirOption,
  stdout,
  terminal,
  type CommandDeps,
} from "../shared";

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

/**
 * `seed --stack S`: replaces the stack's database with another stack's backup (the users load staging
 * from the latest production backup before a production deploy). Under the stack's deploy lock; the
 * backup is verified, a safety backup taken, the copy restored into a new database, row counts checked,
 * then swapped in (the old database is kept under a dated name).
 */
export async function runSeed(o: SeedOpts, deps: CommandDeps = {}): Promise<string> {
  const { listBackups } = await import("../../core/backup");
  const { openContext } = await import("../context");
  const out = deps.out ?? stdout;
  if (!!o.backup === !!o.fromDir)
    throw new ConfigError("seed needs exactly one of --backup FILE or --from-dir DIR");
  if (/prod/i.test(o.stack) && !o.allowProduction) {
    throw new ConfigError(
      `seed replaces the whole database of "${o.stack}", which looks like production: pass --allow-production if you mean it`,
    );
  }
  let file: string;
  if (o.backup) file = await requireBackup(o.backup);
  else {
    const { resolve } = await import("node:path");
    const { existsSync } = await import("node:fs");
    if (!existsSync(resolve(o.fromDir!))) throw new ConfigError(`--from-dir ${o.fromDir}: no such directory`);
    const list = (await listBackups(resolve(o.fromDir!))).filter(
      (b) => b.label !== "safety" && b.hasManifest,
    );
    if (!list.length)
      throw new ConfigError(
        `--from-dir ${o.fromDir}: no backup with a manifest there (safety backups are skipped)`,
      );
    file = list[0].file;
  }
  const ctx = await openContext({ ...contextOptions(o, deps), logName: "seed.log" });
  const db = await ctx.database();
  if (!db)
    throw new ConfigError(`stack "${ctx.stackName}" has no database yet: deploy it once, then seed it`);
  out(`seed: the database of ${ctx.stackName} (${db.where}) will be replaced by ${file}`);
  if (!o.yes) {
    const term = terminal(deps);
    if (!term.isTTY) throw new ConfigError("seed replaces a database: run it on a terminal or pass --yes");
    const { confirm } = await import("@inquirer/prompts");
    const ok = await confirm(
      { message: `Replace the ${ctx.stackName} database?`, default: false },
      { input: term.input, output: term.output },
    ).catch(cancelled("seed"));
    if (!ok) {
      out("seed cancelled; nothing changed");
      return file;
    }
  }
  const ports = ctx.ports({});
  const unlock = await ports.lock(ctx.stackName, "seed");
  try {
    const safety = await ports.database.safetyBackup();
    await ports.database.restore(file, safety);
    out(`seed: ${ctx.stackName} now holds ${file}; safety backup of what was there: ${safety}`);
    out(`next: 'safe-deploy up --stack ${ctx.stackName}' applies the pending migrations to this copy`);
  } finally {
    await unlock();
  }
  return file;
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
    .addOption(projectDirOption())
    .addOption(stateDirOption())
    .option("--yes", "do not ask for confirmation")
    .option("--allow-production", "allow seeding a stack whose name contains 'prod'")
    .action(async (o: SeedOpts) => {
      await runSeed(o);
    });
}
