import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { shellQuote, toolCommand, type Tool } from "./presets";

/** Inputs of {@link migrationCommand}: the plain values the Migration component knows. */
export interface MigrationCommandArgs {
  tool: Tool;
  /** Migrations directory, relative to `workDir`. */
  dir: string;
  /** Where the tool runs: a local directory, or the working directory inside the image. */
  workDir: string;
  /** Replaces the preset's `up` command. */
  command?: string;
  runIn: "local" | "container";
  /** Container mode: the image to run; goes to `$SAFE_DEPLOY_IMAGE` so Outputs can fill it in later. */
  image?: string;
  /** Container mode: the Docker network the database answers on (`$SAFE_DEPLOY_NETWORK`). */
  network?: string;
  dockerHost?: string;
  /** The variable the tool reads its URL from besides DATABASE_URL; the caller sets it to the same secret. */
  databaseUrlEnv?: string;
  /** PostgreSQL `lock_timeout` for the tool's sessions (default 5s): DDL never queues the app for long. */
  lockTimeout?: string;
  /** PostgreSQL `statement_timeout` (default 15min). */
  statementTimeout?: string;
  /**
   * Local mode only: run the tool through `safe-deploy migrate up`, which adds the advisory lock,
   * version records and the integrity check (row loss in critical tables fails the step).
   */
  guard?: {
    criticalTables?: string[];
    maxRowLossPercent?: number;
    lockWaitSeconds?: number;
    bin?: string;
    /**
     * The release's backup file: tools other than node-pg-migrate need it with `criticalTables` (they
     * commit as they go, so a loss is undone by restoring it).
     */
    backupFile?: string;
    /** The backup file comes from `$SAFE_DEPLOY_BACKUP_FILE` when the command runs (the deploy's Backup output). */
    backupFromEnv?: boolean;
  };
}

/** What a `command.local.Command` needs; DATABASE_URL is added by the caller, as a secret, to `environment`. */
export interface MigrationCommand {
  create: string;
  dir: string;
  environment: Record<string, string>;
}

/** PGOPTIONS value setting the timeouts in every session the tool opens (libpq and node-postgres read it). */
/** This checkout's `bin/safe-deploy`, found upward from this module (src/core/migrations, or dist/ when bundled). */
function safeDeployBin(): string {
  for (let d = __dirname; dirname(d) !== d; d = dirname(d)) {
    if (existsSync(join(d, "bin", "safe-deploy"))) return join(d, "bin", "safe-deploy");
  }
  return join(__dirname, "../../../bin/safe-deploy");
}

export function pgOptions(lockTimeout = "5s", statementTimeout = "15min"): string {
  for (const [k, v] of [
    ["lockTimeout", lockTimeout],
    ["statementTimeout", statementTimeout],
  ])
    if (!/^\d+\s*(ms|s|min|h)?$/.test(v))
      throw new Error(`\`${k}\` must look like 5s, 500ms or 10min, got "${v}"`);
  return `-c lock_timeout=${lockTimeout.replace(/\s/g, "")} -c statement_timeout=${statementTimeout.replace(/\s/g, "")}`;
}

/**
 * The shell command that applies every pending migration, and its non-secret environment. The command
 * never contains a secret: the tool reads DATABASE_URL from the environment, and in container mode
 * `-e DATABASE_URL` copies it from there too (like `docker compose --profile migration up migrate`).
 */
export function migrationCommand(args: MigrationCommandArgs): MigrationCommand {
  if (!args.dir) throw new Error("`dir` is required (the migrations directory, relative to `workDir`)");
  if (!args.workDir) throw new Error("`workDir` is required");
  if (args.databaseUrlEnv !== undefined && !/^[A-Za-z_][A-Za-z0-9_]*$/.test(args.databaseUrlEnv))
    throw new Error(`\`databaseUrlEnv\` must be an environment variable name, got "${args.databaseUrlEnv}"`);
  if (args.tool === "command" && !args.command)
    throw new Error('`command` is required when `tool` is "command"');
  const tool = args.command ?? toolCommand(args.tool, "up", { dir: args.dir })!;
  const environment: Record<string, string> = {
    PGOPTIONS: pgOptions(args.lockTimeout, args.statementTimeout),
    PGAPPNAME: "safe-deploy migrate",
  };
  if (args.runIn === "local") {
    if (!args.guard) return { create: tool, dir: args.workDir, environment };
    const g = args.guard;
    const argv = [g.bin ?? safeDeployBin(), "migrate", "up", "--tool", args.tool];
    argv.push("--dir", args.dir, "--work-dir", ".");
    if (args.command) argv.push("--command", args.command);
    if (args.databaseUrlEnv) argv.push("--database-url-env", args.databaseUrlEnv);
    argv.push(
      "--lock-timeout",
      args.lockTimeout ?? "5s",
      "--statement-timeout",
      args.statementTimeout ?? "15min",
    );
    if (g.lockWaitSeconds !== undefined) argv.push("--lock-wait", String(g.lockWaitSeconds));
    if (g.criticalTables?.length) argv.push("--critical-tables", g.criticalTables.join(","));
    if (g.maxRowLossPercent !== undefined) argv.push("--max-row-loss-percent", String(g.maxRowLossPercent));
    if (g.backupFile) argv.push("--backup", g.backupFile);
    let create = argv.map(shellQuote).join(" ");
    // In a deploy the backup is the Backup resource's output, known only when it ran: it reaches the
    // command through the environment. Only tools that commit as they go need it (node-pg-migrate's
    // guard works inside its one transaction).
    if (!g.backupFile && g.backupFromEnv && g.criticalTables?.length && args.tool !== "node-pg-migrate")
      create += ' --backup "$SAFE_DEPLOY_BACKUP_FILE"';
    return { create, dir: args.workDir, environment };
  }
  if (args.image) environment.SAFE_DEPLOY_IMAGE = args.image;
  if (args.network) environment.SAFE_DEPLOY_NETWORK = args.network;
  if (args.dockerHost) environment.DOCKER_HOST = args.dockerHost;
  const create = [
    'docker run --rm --label safe-deploy.role=migration --network "$SAFE_DEPLOY_NETWORK"',
    `-e DATABASE_URL${args.databaseUrlEnv ? ` -e ${args.databaseUrlEnv}` : ""} -e PGOPTIONS -e PGAPPNAME -w ${shellQuote(args.workDir)}`,
    `"$SAFE_DEPLOY_IMAGE" /bin/sh -c ${shellQuote(tool)}`,
  ].join(" ");
  return { create, dir: ".", environment };
}
