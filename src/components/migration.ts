import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { existsSync } from "node:fs";
import { isAbsolute, join, relative } from "node:path";
import { logOutputTo } from "../core/hooks/output-log";
import { migrationCommand } from "../core/migrations/command";

/** Arguments of the migration step (it runs after the backup, before the new app: docs/architecture.md, "The deploy, as a resource graph"). */
export interface MigrationArgs {
  tool: "node-pg-migrate" | "prisma" | "alembic" | "command";
  /** Migrations directory, relative to `workDir`. */
  dir: string;
  /** Where the tool runs (local mode) or the working directory inside the image (container mode). */
  workDir: string;
  /** Replaces the tool's preset command. */
  command?: string;
  runIn: "local" | "container";
  /** Secret; reaches the tool only through the environment. */
  databaseUrl: pulumi.Input<string>;
  /** The variable the tool reads its URL from when not DATABASE_URL: set to the same secret (issue 21). */
  databaseUrlEnv?: string;
  /** sha256 over the migration files: a change re-runs the step. */
  migrationsChecksum: string;
  /** The release's backup id: a new backup means a new release, so the step runs again. */
  backupId: pulumi.Input<string>;
  timeoutSeconds: number;
  /** PostgreSQL lock_timeout / statement_timeout for the tool's sessions, so DDL never stalls the app. */
  lockTimeout?: string;
  statementTimeout?: string;
  /** Local mode: row counts of these tables before/after; a loss above the limit fails the step. */
  integrity?: { criticalTables: string[]; maxRowLossPercent: number };
  /** Container mode: the new app image (id) to run the tool from. */
  image?: pulumi.Input<string>;
  /** Container mode: the Docker network on which the database answers. */
  network?: pulumi.Input<string>;
  dockerHost?: string;
  /**
   * The checkout the program runs from. Paths in the command are made relative to it (the command
   * runs from the project root), so a deploy from another checkout (a rollback's temporary worktree)
   * declares identical inputs and re-runs nothing.
   */
  projectDir?: string;
  /**
   * The release's backup file (the Backup resource's output): with `integrity.criticalTables`, tools
   * that commit as they go restore it when rows are lost. Reaches the command through the environment.
   */
  backupFile?: pulumi.Input<string>;
  /** Names the log file `logs/migrations/<stack>.log`. */
  stack?: string;
}

/** `to` relative to `from` when `to` is inside the project, else `to` unchanged. Pure. */
export function projectRelative(projectDir: string, from: string, to: string): string {
  const inside = !relative(projectDir, to).startsWith("..") && !isAbsolute(relative(projectDir, to));
  return inside ? relative(from, to) || "." : to;
}

/** Applies pending migrations once per release, after the backup; output kept secret and out of logs. */
export class Migration extends pulumi.ComponentResource {
  /** The command resource (the app depends on it). */
  public readonly command: command.local.Command;

  constructor(name: string, args: MigrationArgs, opts: pulumi.ComponentResourceOptions = {}) {
    super("safe-deploy:migration:Migration", name, {}, opts);
    if (args.timeoutSeconds <= 0) throw new Error("`timeoutSeconds` must be positive");
    if (args.runIn === "container" && (!args.image || !args.network)) {
      throw new Error('`image` and `network` are required when `runIn` is "container"');
    }
    // Image and network are Outputs: the command names them as $SAFE_DEPLOY_IMAGE/$SAFE_DEPLOY_NETWORK and
    // they are filled into the environment here.
    // Local mode goes through `safe-deploy migrate up`: advisory lock, versions and the integrity check.
    const root = args.projectDir;
    const local = args.runIn === "local";
    const absWork = root && !isAbsolute(args.workDir) ? join(root, args.workDir) : args.workDir;
    // The command provider runs from the project root: `dir` and the tool's path relative to it.
    const workDir = local && root ? projectRelative(root, root, absWork) : args.workDir;
    const binPath = root ? join(root, "bin", "safe-deploy") : undefined;
    const bin =
      local && binPath && existsSync(binPath) ? projectRelative(root!, absWork, binPath) : undefined;
    const guard = local
      ? { ...args.integrity, bin, backupFromEnv: args.backupFile !== undefined }
      : undefined;
    const cmd = migrationCommand({ ...args, workDir, image: undefined, network: undefined, guard });
    const cwd = local ? absWork : root;
    const create = logOutputTo(cmd.create, {
      fallbackDir: root && cwd ? projectRelative(root, cwd, root) : ".",
      file: `logs/migrations/${(args.stack ?? "stack").replace(/[^A-Za-z0-9_.-]/g, "-")}.log`,
      what: "migration",
    });
    const environment: Record<string, pulumi.Input<string>> = {
      ...cmd.environment,
      DATABASE_URL: pulumi.secret(args.databaseUrl),
      ...(args.databaseUrlEnv ? { [args.databaseUrlEnv]: pulumi.secret(args.databaseUrl) } : {}),
    };
    if (local && args.backupFile !== undefined) environment.SAFE_DEPLOY_BACKUP_FILE = args.backupFile;
    if (args.runIn === "container") {
      environment.SAFE_DEPLOY_IMAGE = args.image!;
      environment.SAFE_DEPLOY_NETWORK = args.network!;
    }
    this.command = new command.local.Command(
      `${name}-migrate`,
      {
        create,
        dir: args.runIn === "local" ? cmd.dir : undefined,
        environment,
        triggers: [args.migrationsChecksum, args.backupId],
        // The tool's output can echo connection details; it stays secret and out of the engine's log.
        logging: "none",
        // The default hands the previous run's (secret) stdout to the next run's environment.
        addPreviousOutputInEnv: false,
      },
      {
        parent: this,
        // Children don't inherit a component's dependsOn: the command itself must wait for the backup.
        dependsOn: opts.dependsOn,
        additionalSecretOutputs: ["stdout", "stderr"],
        customTimeouts: { create: `${args.timeoutSeconds}s`, update: `${args.timeoutSeconds}s` },
      },
    );
    this.registerOutputs({});
  }
}
