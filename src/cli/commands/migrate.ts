import type { Command } from "commander";
import type { Tool } from "../../core/migrations/presets";

/** Options of `safe-deploy migrate ACTION [N|REV]`. */
export interface MigrateCliOptions {
  action: string;
  target?: string;
  /** Required unless `stack` names a stack whose config says it. */
  tool?: string;
  stack?: string;
  projectDir?: string;
  dir?: string;
  workDir?: string;
  databaseUrl?: string;
  command?: string;
  /** The variable the tool reads its URL from, set like DATABASE_URL (`migrations.databaseUrlEnv`). */
  databaseUrlEnv?: string;
  lockTimeout?: string;
  statementTimeout?: string;
  lockWait?: string;
  lockRetries?: string;
  backup?: string;
  criticalTables?: string;
  maxRowLossPercent?: string;
  /** `down` without asking (scripts). */
  yes?: boolean;
  /** `up` despite lint errors in the migrations: the reason, printed with them. */
  allowLint?: string;
  /** Asks a question on the terminal; default: readline on stdin/stderr when stdin is a TTY. */
  ask?: (question: string) => Promise<string>;
  out?: (text: string) => void;
}

/** Readline on the terminal, or undefined when stdin is not one. */
async function terminalAsk(): Promise<((q: string) => Promise<string>) | undefined> {
  if (!process.stdin.isTTY) return undefined;
  const { createInterface } = await import("node:readline/promises");
  return async (q) => {
    const rl = createInterface({ input: process.stdin, output: process.stderr });
    try {
      return await rl.question(q);
    } finally {
      rl.close();
    }
  };
}

/**
 * `down` runs the migrations' down steps, which drop tables and columns with their data (issue 15): it
 * says what it would revert and wants the database name typed, or `--yes`.
 */
async function confirmDown(opts: MigrateCliOptions, databaseUrl: string, dir: string): Promise<void> {
  const { ConfigError } = await import("../../core/errors");
  const { parseDatabaseUrl } = await import("../../core/backup/runner");
  const db = parseDatabaseUrl(databaseUrl).database;
  if (opts.tool === "prisma") return; // no down migrations: the runner says so
  let what: string;
  if (opts.tool === "node-pg-migrate") {
    const { migrationsToRevert } = await import("../../core/migrations/runner");
    const names = await migrationsToRevert(databaseUrl, opts.target);
    if (!names.length) return;
    what = `${names.length} migration(s) (${names.join(", ")})`;
  } else
    what = `${opts.target ?? "1"} ${/^\d+$/.test(opts.target ?? "1") ? "migration(s)" : "(down to revision)"} with ${opts.tool}`;
  if (opts.yes) return;
  const ask = opts.ask ?? (await terminalAsk());
  if (!ask)
    throw new ConfigError(
      `\`migrate down\` would revert ${what} on database "${db}", running their down steps (tables and columns they created are dropped with their data), and there is no terminal to confirm on: pass \`--yes\` to confirm (take a backup first: \`safe-deploy backup create\`)`,
    );
  const answer = await ask(
    `Revert ${what} on database "${db}"? Their down steps drop what they created, data included (${dir}). Type the database name to confirm: `,
  );
  if (answer.trim() !== db) throw new ConfigError(`migrate down cancelled: nothing was reverted`);
}

const ACTIONS = ["check", "current", "history", "up", "down", "accept-edit"];
const TOOLS = ["node-pg-migrate", "prisma", "alembic", "command"];

/** Runs one migrate action through the runner (lock, timeouts, versions, integrity). */
export async function runMigrate(opts: MigrateCliOptions): Promise<void> {
  const { ConfigError } = await import("../../core/errors");
  const out = opts.out ?? ((t: string) => process.stdout.write(t + "\n"));
  if (!ACTIONS.includes(opts.action))
    throw new ConfigError(`\`migrate\` action must be one of ${ACTIONS.join("|")}, got "${opts.action}"`);
  if (opts.tool === undefined)
    throw new ConfigError(
      `\`migrate\` needs \`--tool\` (${TOOLS.join("|")}) or \`--stack S\` to read it from Pulumi.<S>.yaml`,
    );
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
  if (opts.action === "accept-edit") {
    if (!opts.target)
      throw new ConfigError(
        "`migrate accept-edit NAME`: name the applied migration whose edit is intended (see `safe-deploy migrate check`)",
      );
    const { connect } = await import("../../core/migrations/runner");
    const { acceptEdit } = await import("../../core/migrations/checksums");
    const { resolve } = await import("node:path");
    const client = await connect(databaseUrl, "safe-deploy migrate");
    try {
      const r = await acceptEdit(
        client,
        opts.tool as "prisma",
        resolve(opts.workDir ?? ".", dir),
        opts.target,
      );
      out(
        `accepted the edit of ${opts.target}: checksum ${r.from.slice(0, 12)} -> ${r.to.slice(0, 12)} (the database must already match it: applied migrations never run again)`,
      );
    } finally {
      await client.end().catch(() => {});
    }
    return;
  }
  if (opts.action === "down") await confirmDown(opts, databaseUrl, dir);
  // Dangerous migrations are refused before they run (issue 16), as `rehearse` and the deploy's preflight
  // do; a `command` tool's directory is the user's own layout, which preflight does not lint either.
  if (opts.action === "up" && opts.tool !== "command") {
    const { lintGate } = await import("../../core/migrations/lint");
    const { resolve } = await import("node:path");
    await lintGate({
      command: "migrate up",
      dir: resolve(opts.workDir ?? ".", dir),
      allowLint: opts.allowLint,
      // Only what this database has not applied is judged (issue 21): years of applied history pass.
      database: { url: databaseUrl, tool: opts.tool as Tool },
      out,
    });
  }
  const custom = opts.command ? { [opts.action]: opts.command } : undefined;
  const { holdDatabaseLock } = await import("../shared");
  const unlock = await holdDatabaseLock(databaseUrl, `safe-deploy migrate ${opts.action}`, opts.action);
  const result = await migrate({
    action: opts.action as "up",
    target: opts.target,
    tool: opts.tool as "node-pg-migrate",
    dir,
    workDir: opts.workDir,
    databaseUrl,
    custom,
    databaseUrlEnv: opts.databaseUrlEnv,
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
  }).finally(unlock);
  if (result.output.trim()) out(result.output.trim());
  if (opts.action === "up" || opts.action === "down")
    out(`schema version: ${result.before ?? "(none)"} -> ${result.after ?? "(none)"}`);
  for (const line of result.rowChanges ?? []) out(`rows ${line}`);
}

/** Registers `migrate check|current|history|up [N|REV]|down [N|REV]|accept-edit NAME --tool ...`. */
export function register(program: Command): void {
  program
    .command("migrate")
    .description("Run migrations under an advisory lock with lock/statement timeouts")
    .argument("<action>", ACTIONS.join("|"))
    .argument(
      "[target]",
      "N (how many) or REV (migration name / revision) for up and down; NAME for accept-edit",
    )
    .option("--tool <tool>", `${TOOLS.join("|")} (required without --stack)`)
    .option("--dir <dir>", "migrations directory, absolute or relative to --work-dir")
    .option("--work-dir <dir>", "where the tool runs", ".")
    .option("--database-url <url>", "defaults to $DATABASE_URL")
    .option(
      "--command <cmd>",
      "with --tool command: the shell command for this action ({target} is replaced)",
    )
    .option("--database-url-env <name>", "the variable the tool reads its URL from, set like DATABASE_URL")
    .option("--lock-timeout <t>", "PostgreSQL lock_timeout for the tool", "5s")
    .option("--statement-timeout <t>", "PostgreSQL statement_timeout for the tool", "15min")
    .option("--lock-wait <seconds>", "how long to wait for another run's migration lock", "60")
    .option("--lock-retries <n>", "re-run after a lock_timeout cancel this many times", "2")
    .option("--backup <file>", "this release's backup; refuse to run if it does not exist")
    .option("--critical-tables <list>", "comma-separated tables whose rows must not be lost (integrity)")
    .option("--max-row-loss-percent <p>", "allowed loss in critical tables", "0")
    .option("--yes", "down: revert without asking (required without a terminal)")
    .option("--allow-lint <reason>", "up: run although lint finds errors in the migrations, for this reason")
    .option("--stack <name>", "read the migrations' tool, dir and workDir from Pulumi.<stack>.yaml")
    .option("--project-dir <dir>", "directory of Pulumi.yaml, for --stack", ".")
    .action(
      async (
        action: string,
        target: string | undefined,
        o: Omit<MigrateCliOptions, "action" | "target">,
        cmd: Command,
      ) => {
        const { applyStackMigrations } = await import("../stack-migrations");
        applyStackMigrations(cmd, o, "dir");
        return runMigrate({ ...o, action, target });
      },
    );
}
