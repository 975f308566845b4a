import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";

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
  /** Container mode: the new app image (id) to run the tool from. */
  image?: pulumi.Input<string>;
  /** Container mode: the Docker network on which the database answers. */
  network?: pulumi.Input<string>;
  dockerHost?: string;
}

/** Quotes a value for `/bin/sh`. */
export function shellQuote(s: string): string {
  return /^[A-Za-z0-9_./:=@%+-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/** The preset command that applies every pending migration; never contains a secret. */
export function presetCommand(tool: MigrationArgs["tool"], dir: string, override?: string): string {
  if (override) return override;
  switch (tool) {
    case "node-pg-migrate":
      return `npx --no-install node-pg-migrate up -m ${shellQuote(dir)}`;
    case "prisma":
      return "npx --no-install prisma migrate deploy";
    case "alembic":
      return "alembic upgrade head";
    case "command":
      throw new Error('`migrations.command` is required when `migrations.tool` is "command"');
  }
}

/**
 * The shell command the step runs. In container mode it starts a one-off container of the new image
 * on the stack's network (like `docker compose --profile migration up migrate`); `-e DATABASE_URL`
 * without a value copies it from the environment, so the URL is never part of the command line.
 */
export function migrationShellCommand(
  args: Pick<MigrationArgs, "tool" | "dir" | "command" | "runIn" | "workDir">,
) {
  const tool = presetCommand(args.tool, args.dir, args.command);
  if (args.runIn === "local") return tool;
  return [
    'docker run --rm --label safe-deploy.role=migration --network "$SAFE_DEPLOY_NETWORK"',
    `-e DATABASE_URL -w ${shellQuote(args.workDir)} "$SAFE_DEPLOY_IMAGE" /bin/sh -c ${shellQuote(tool)}`,
  ].join(" ");
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
    const environment: Record<string, pulumi.Input<string>> = {
      DATABASE_URL: pulumi.secret(args.databaseUrl),
    };
    if (args.runIn === "container") {
      environment.SAFE_DEPLOY_IMAGE = args.image!;
      environment.SAFE_DEPLOY_NETWORK = args.network!;
      if (args.dockerHost) environment.DOCKER_HOST = args.dockerHost;
    }
    this.command = new command.local.Command(
      `${name}-migrate`,
      {
        create: migrationShellCommand(args),
        dir: args.runIn === "local" ? args.workDir : undefined,
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
