import type { Command } from "commander";
import { toolCommandOptions } from "../shared";

/** Options of `safe-deploy rehearse`. */
export interface RehearseCliOptions {
  backup: string;
  migrations?: string;
  tool?: string;
  workDir?: string;
  databaseUrl?: string;
  criticalTables?: string;
  maxRowLossPercent?: string;
  scratchUrl?: string;
  stack?: string;
  projectDir?: string;
  json?: boolean;
  /** `--tool command`: the shell command that applies migrations (`{file}`: once per migration file). */
  command?: string;
  /** `--tool command`: prints the latest applied migration (the runner's own table), or nothing. */
  currentCommand?: string;
  /** The variable the tool reads its URL from, set like DATABASE_URL (`migrations.databaseUrlEnv`). */
  databaseUrlEnv?: string;
  /** Rehearse even though lint finds errors in the migrations; the reason is printed. */
  allowLint?: string;
  out?: (text: string) => void;
}

/** Rehearses pending migrations on a restored backup; exit 1 on a failed migration or critical row loss. */
export async function runRehearse(opts: RehearseCliOptions): Promise<void> {
  const { ConfigError } = await import("../../core/errors");
  const out = opts.out ?? ((t: string) => process.stdout.write(t + "\n"));
  const databaseUrl = opts.databaseUrl ?? process.env.DATABASE_URL ?? opts.scratchUrl;
  if (!databaseUrl)
    throw new ConfigError(
      "no server for the scratch database: pass `--database-url` (or set DATABASE_URL) or `--scratch-url`",
    );
  const tool = opts.tool ?? "node-pg-migrate";
  if (!["node-pg-migrate", "prisma", "alembic", "command"].includes(tool))
    throw new ConfigError(`\`--tool\` must be node-pg-migrate|prisma|alembic|command, got "${tool}"`);
  if (tool === "command" && !opts.command)
    throw new ConfigError(
      "`--tool command` needs `--command CMD`: the shell command that applies migrations, with `{file}` where one migration file goes to rehearse them one at a time (and `--current-command` to say which are applied)",
    );
  const { access } = await import("node:fs/promises");
  await access(opts.backup).catch(() => {
    throw new ConfigError(`\`--backup\`: no such file ${opts.backup}`);
  });
  const dir = opts.migrations ?? "migrations";
  const { missingMigrationsDirectory } = await import("../../core/migrations/runner");
  const missing = await missingMigrationsDirectory(tool as "prisma", opts.workDir, dir);
  if (missing)
    throw new ConfigError(
      `\`--migrations\` ${dir}${missing === dir ? "" : ` (${missing})`} does not exist or is not a directory; pass the migrations directory, absolute or relative to \`--work-dir\``,
    );
  const max = opts.maxRowLossPercent === undefined ? 0 : Number(opts.maxRowLossPercent);
  if (!Number.isFinite(max) || max < 0)
    throw new ConfigError("`--max-row-loss-percent` must be a non-negative number");
  const { checkAllowLint, lintGate } = await import("../../core/migrations/lint");
  const { resolve } = await import("node:path");
  // Before the restore: the gate itself runs only after it.
  await checkAllowLint(opts.allowLint);
  // Judged once the backup is restored: only the migrations its database has not applied.
  const gate = (scratchUrl: string) =>
    lintGate({
      command: "rehearse",
      dir: resolve(opts.workDir ?? ".", dir),
      allowLint: opts.allowLint,
      database: { url: scratchUrl, tool: tool as "node-pg-migrate" },
      // With --json, stdout holds only the report.
      out: opts.json ? (t: string) => process.stderr.write(t + "\n") : out,
    }).then(() => {});
  const { rehearseOrFail } = await import("../../core/migrations/rehearsal");
  const { showProgress } = await import("../progress");
  await rehearseOrFail(
    {
      backupFile: opts.backup,
      databaseUrl,
      tool: tool as "node-pg-migrate",
      dir,
      workDir: opts.workDir,
      custom: opts.command ? { up: opts.command, current: opts.currentCommand } : undefined,
      databaseUrlEnv: opts.databaseUrlEnv,
      criticalTables: opts.criticalTables
        ?.split(",")
        .map((s) => s.trim())
        .filter(Boolean),
      maxRowLossPercent: max,
      scratchUrl: opts.scratchUrl,
      beforeMigrations: gate,
      // Steps as they finish, on a terminal only: a pipe or CI gets the report alone.
      log: showProgress() ? (l: string) => process.stderr.write(l + "\n") : undefined,
    },
    out,
    opts.json,
  );
}

/** Registers `rehearse --backup FILE`. */
export function register(program: Command): void {
  toolCommandOptions(
    program
      .command("rehearse")
      .description(
        "Restore a backup into a scratch database and apply pending migrations, reporting time, locks and row changes",
      )
      .requiredOption("--backup <file>", "a pg_dump -Fc file")
      .option("--migrations <dir>", "migrations directory, relative to --work-dir", "migrations"),
  )
    .option("--work-dir <dir>", "where the tool runs", ".")
    .option("--database-url <url>", "server for the scratch database; defaults to $DATABASE_URL")
    .option("--critical-tables <list>", "comma-separated tables that must not lose rows")
    .option("--max-row-loss-percent <p>", "allowed loss in critical tables", "0")
    .option("--allow-lint <reason>", "rehearse even though lint finds errors in the migrations (say why)")
    .option(
      "--scratch-url <url>",
      "an empty database to restore into instead of a new one (for a role without CREATEDB); emptied after",
    )
    .option("--json", "print the report as JSON on stdout")
    .option("--stack <name>", "read the migrations' tool, dir and workDir from Pulumi.<stack>.yaml")
    .option("--project-dir <dir>", "directory of Pulumi.yaml, for --stack", ".")
    .action(async (o: RehearseCliOptions, cmd: Command) => {
      const { applyStackMigrations } = await import("../stack-migrations");
      applyStackMigrations(cmd, o as RehearseCliOptions & Record<string, unknown>, "migrations");
      return runRehearse(o);
    });
}
