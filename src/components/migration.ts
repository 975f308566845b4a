import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { migrationCommand } from "../core/migrations/command";

/** Arguments of the migration step (see DESIGN.md: it runs after the backup, before the new app). */
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
  /** sha256 over the migration files: a change re-runs the step. */
  migrationsChecksum: string;
  /** The release's backup id: a new backup means a new release, so the step runs again. */
  backupId: pulumi.Input<string>;
  timeoutSeconds: number;
  /** PostgreSQL lock_timeout / statement_timeout for the tool's sessions, so DDL never stalls the app. */
  lockTimeout?: string;
  statementTimeout?: string;
  /** Container mode: the new app image (id) to run the tool from. */
  image?: pulumi.Input<string>;
  /** Container mode: the Docker network on which the database answers. */
  network?: pulumi.Input<string>;
  dockerHost?: string;
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
    const cmd = migrationCommand({ ...args, image: undefined, network: undefined });
    const environment: Record<string, pulumi.Input<string>> = {
      ...cmd.environment,
      DATABASE_URL: pulumi.secret(args.databaseUrl),
    };
    if (args.runIn === "container") {
      environment.SAFE_DEPLOY_IMAGE = args.image!;
      environment.SAFE_DEPLOY_NETWORK = args.network!;
    }
    this.command = new command.local.Command(
      `${name}-migrate`,
      {
        create: cmd.create,
        dir: args.runIn === "local" ? cmd.dir : undefined,
        environment,
        triggers: [args.migrationsChecksum, args.backupId],
        // The tool's output can echo connection details; it stays secret and out of the engine's log.
        logging: "none",
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
