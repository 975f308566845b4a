import type { Command } from "commander";

/** Options of `safe-deploy rebuild`. */
export interface RebuildCliOptions {
  databaseUrl?: string;
  schemaFrom?: string;
  migrations?: string;
  tool?: string;
  workDir?: string;
  backupDir?: string;
  dryRun?: boolean;
  yes?: boolean;
  stopApp?: string;
  startApp?: string;
  out?: (line: string) => void;
}

const TOOLS = ["node-pg-migrate", "prisma", "alembic", "command"];

/**
 * A test hook: with SAFE_DEPLOY_REBUILD_PAUSE=<step> the rebuild writes SAFE_DEPLOY_REBUILD_MARKER at
 * that step and waits there for a signal, so a test can interrupt it at a known point.
 */
async function pauseHook(step: string, signal: AbortSignal): Promise<void> {
  if (process.env.SAFE_DEPLOY_REBUILD_PAUSE !== step || !process.env.SAFE_DEPLOY_REBUILD_MARKER) return;
  const { writeFile } = await import("node:fs/promises");
  await writeFile(process.env.SAFE_DEPLOY_REBUILD_MARKER, step);
  if (signal.aborted) return;
  // A ref'd timer keeps the process up until the signal is seen: the group's Ctrl-C also ends the lock's
  // psql, and should its exit be handled first, nothing else would hold the event loop open.
  const alive = setInterval(() => {}, 60_000);
  await new Promise((r) => signal.addEventListener("abort", r, { once: true })).finally(() =>
    clearInterval(alive),
  );
}

/** Rebuilds the live database with a schema from `--schema-from` or `--migrations`, carrying the data over. */
export async function runRebuild(o: RebuildCliOptions): Promise<void> {
  const { ConfigError } = await import("../../core/errors");
  const { parseDatabaseUrl } = await import("../../core/backup/runner");
  const out = o.out ?? ((l: string) => process.stdout.write(l + "\n"));
  const databaseUrl = o.databaseUrl ?? process.env.DATABASE_URL;
  if (!databaseUrl) throw new ConfigError("no database: pass `--database-url` or set DATABASE_URL");
  const db = parseDatabaseUrl(databaseUrl).database;
  if (o.schemaFrom) parseDatabaseUrl(o.schemaFrom, "`--schema-from`");
  if (o.migrations && !TOOLS.includes(o.tool ?? ""))
    throw new ConfigError(
      `\`--migrations\` needs \`--tool\`, one of ${TOOLS.join("|")} (got "${o.tool ?? ""}")`,
    );
  if (o.tool && !o.migrations) throw new ConfigError("`--tool` goes with `--migrations DIR`");
  if (o.migrations) {
    const { missingMigrationsDirectory } = await import("../../core/migrations/runner");
    const missing = await missingMigrationsDirectory(o.tool as "prisma", o.workDir, o.migrations);
    if (missing)
      throw new ConfigError(
        `\`--migrations\` ${o.migrations} does not exist or is not a directory; pass it absolute or relative to \`--work-dir\``,
      );
  }
  // Refused before anything is built: the question could never be answered.
  if (!o.dryRun && !o.yes && !process.stdin.isTTY)
    throw new ConfigError(
      "rebuilding replaces the live database and the app must be stopped: pass `--yes` to confirm (and `--stop-app CMD` to stop it)",
    );
  const { createLogger } = await import("../../core/log/logger");
  const { rebuildDatabase } = await import("../../core/rebuild");
  const log = createLogger({ console: process.stderr });
  const r = await rebuildDatabase({
    databaseUrl,
    schemaFrom: o.schemaFrom,
    migrations: o.migrations
      ? { dir: o.migrations, tool: o.tool as "node-pg-migrate", workDir: o.workDir }
      : undefined,
    backupDir: o.backupDir,
    dryRun: o.dryRun,
    stopApp: o.stopApp,
    startApp: o.startApp,
    log,
    onStep: pauseHook,
    onPlan: (lines) => {
      out(`plan for database "${db}":`);
      for (const l of lines) out(l);
    },
    confirm: o.yes
      ? undefined
      : async () => {
          const { createInterface } = await import("node:readline/promises");
          const rl = createInterface({ input: process.stdin, output: process.stderr });
          const stopped = o.stopApp ? "" : " The app must be stopped (or in maintenance) first.";
          const answer = await rl.question(
            `Rebuild database "${db}" as planned above?${stopped} Type the database name: `,
          );
          rl.close();
          return answer.trim() === db;
        },
  });
  if (r.dryRun) {
    out("dry run: nothing changed (the new schema was built in a scratch database, then dropped)");
    return;
  }
  const rows = Object.values(r.copied).reduce((a, b) => a + b, 0);
  out(`safety backup: ${r.backupFile}`);
  out(
    `rebuilt "${r.database}": ${Object.keys(r.copied).length} tables, ${rows} rows carried over; the old database is kept as "${r.previousDatabase}"`,
  );
}

/** Registers `rebuild`. */
export function register(program: Command): void {
  program
    .command("rebuild")
    .description(
      "Rebuild the database with a new schema (from a database or migrations) and carry its data over; the old one is kept",
    )
    .option("--database-url <url>", "the live database (default $DATABASE_URL)")
    .option(
      "--schema-from <url>",
      "take the schema of this database (pg_dump --schema-only), e.g. development's",
    )
    .option("--migrations <dir>", "or apply these migrations to an empty database")
    .option("--tool <tool>", `with --migrations: ${TOOLS.join("|")}`)
    .option("--work-dir <dir>", "where the migration tool runs", ".")
    .option("--backup-dir <dir>", "where the safety backup goes (required unless --dry-run)")
    .option("--dry-run", "print the plan and what would not carry over; change nothing")
    .option("--yes", "do not ask (scripts): you confirm the app is stopped")
    .option(
      "--stop-app <cmd>",
      "shell command that stops the app (or turns maintenance on) before the backup",
    )
    .option("--start-app <cmd>", "shell command run at the end when --stop-app ran")
    .action(async (o: RebuildCliOptions) => runRebuild(o));
}
