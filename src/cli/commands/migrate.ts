import type { Command } from "commander";

/** Options of `safe-deploy migrate ACTION [N|REV]`. */
export interface MigrateCliOptions {
  action: string;
  target?: string;
  tool: string;
  dir?: string;
  workDir?: string;
  databaseUrl?: string;
  command?: string;
  lockTimeout?: string;
  statementTimeout?: string;
  lockWait?: string;
  lockRetries?: string;
  backup?: string;
  criticalTables?: string;
  maxRowLossPercent?: string;
  out?: (text: string) => void;
}

const ACTIONS = ["check", "current", "history", "up", "down"];
const TOOLS = ["node-pg-migrate", "prisma", "alembic", "command"];

/** Runs one migrate action through the runner (lock, timeouts, versions, integrity). */
export async function runMigrate(opts: MigrateCliOptions): Promise<void> {
  const { ConfigError } = await import("../../core/errors");
  const out = opts.out ?? ((t: string) => process.stdout.write(t + "\n"));
  if (!ACTIONS.includes(opts.action))
    throw new ConfigError(`\`migrate\` action must be one of ${ACTIONS.join("|")}, got "${opts.action}"`);
  if (!TOOLS.includes(opts.tool))
    throw new ConfigError(`\`--tool\` must be one of ${TOOLS.join("|")}, got "${opts.tool}"`);
  const databaseUrl = opts.databaseUrl ?? process.env.DATABASE_URL;
  if (!databaseUrl) throw new ConfigError("no database: pass `--database-url` or set DATABASE_URL");
  const num = (flag: string, v?: string) => {
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!Number.isFinite(n) || n < 0)
      throw new ConfigError(`\`${flag}\` must be a non-negative number, got "${v}"`);
    return n;
  };
  const { pgOptions } = await import("../../core/migrations/command");
  try {
    pgOptions(opts.lockTimeout, opts.statementTimeout);
  } catch (e) {
    const flag = (e as Error).message.replace("`lockTimeout`", "`--lock-timeout`");
    throw new ConfigError(flag.replace("`statementTimeout`", "`--statement-timeout`"));
  }
  const { migrate, missingMigrationsDirectory } = await import("../../core/migrations/runner");
  const defaultDir =
    opts.tool === "alembic" ? "alembic" : opts.tool === "prisma" ? "prisma/migrations" : "migrations";
  const dir = opts.dir ?? defaultDir;
  const missing = await missingMigrationsDirectory(opts.tool as "prisma", opts.workDir, dir);
  if (missing)
    throw new ConfigError(
      `\`--dir\` ${dir}${missing === dir ? "" : ` (${missing})`} does not exist or is not a directory; pass the migrations directory, absolute or relative to \`--work-dir\``,
    );
  const custom = opts.command ? { [opts.action]: opts.command } : undefined;
  const result = await migrate({
    action: opts.action as "up",
    target: opts.target,
    tool: opts.tool as "node-pg-migrate",
    dir,
    workDir: opts.workDir,
    databaseUrl,
    custom,
    lockTimeout: opts.lockTimeout,
    statementTimeout: opts.statementTimeout,
    lockWaitSeconds: num("--lock-wait", opts.lockWait),
    lockRetries: num("--lock-retries", opts.lockRetries),
    backupFile: opts.backup,
    integrity: opts.criticalTables
      ? {
          criticalTables: opts.criticalTables
            .split(",")
            .map((s) => s.trim())
            .filter(Boolean),
          maxRowLossPercent: num("--max-row-loss-percent", opts.maxRowLossPercent),
        }
      : undefined,
    log: (l) => process.stderr.write(l + "\n"),
  });
  if (result.output.trim()) out(result.output.trim());
  if (opts.action === "up" || opts.action === "down")
    out(`schema version: ${result.before ?? "(none)"} -> ${result.after ?? "(none)"}`);
  for (const line of result.rowChanges ?? []) out(`rows ${line}`);
}

/** Registers `migrate check|current|history|up [N|REV]|down [N|REV] --tool ...`. */
export function register(program: Command): void {
  program
    .command("migrate")
    .description("Run migrations under an advisory lock with lock/statement timeouts")
    .argument("<action>", ACTIONS.join("|"))
    .argument("[target]", "N (how many) or REV (migration name / revision) for up and down")
    .requiredOption("--tool <tool>", TOOLS.join("|"))
    .option("--dir <dir>", "migrations directory, absolute or relative to --work-dir")
    .option("--work-dir <dir>", "where the tool runs", ".")
    .option("--database-url <url>", "defaults to $DATABASE_URL")
    .option(
      "--command <cmd>",
      "with --tool command: the shell command for this action ({target} is replaced)",
    )
    .option("--lock-timeout <t>", "PostgreSQL lock_timeout for the tool", "5s")
    .option("--statement-timeout <t>", "PostgreSQL statement_timeout for the tool", "15min")
    .option("--lock-wait <seconds>", "how long to wait for another run's migration lock", "60")
    .option("--lock-retries <n>", "re-run after a lock_timeout cancel this many times", "2")
    .option("--backup <file>", "this release's backup; refuse to run if it does not exist")
    .option("--critical-tables <list>", "comma-separated tables whose rows must not be lost (integrity)")
    .option("--max-row-loss-percent <p>", "allowed loss in critical tables", "0")
    .action(
      async (action: string, target: string | undefined, o: Omit<MigrateCliOptions, "action" | "target">) =>
        runMigrate({ ...o, action, target }),
    );
}
