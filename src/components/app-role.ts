import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { appRoleCommand, appRoleSql, scramVerifier } from "../core/database/roles";

/** Arguments of the app role's set-up in a managed database container. */
export interface AppRoleArgs {
  /** Name of the database container (`docker exec` target). */
  container: pulumi.Input<string>;
  /** `database.user`: owns the schema, runs migrations and backups, runs this set-up. */
  owner: string;
  /** The owner's password; reaches psql only through the environment. Secret. */
  ownerPassword: pulumi.Input<string>;
  /** `database.name`. */
  database: string;
  /** The app role's name (see appRoleName). */
  role: string;
  /** The app role's password; only its SCRAM verifier leaves this process, on stdin. Secret. */
  password: pulumi.Input<string>;
  /** Re-runs the set-up (the release key): a restored dump or a hand-made table gets its grants back. */
  trigger: pulumi.Input<string>;
  /** A remote Docker host (`ssh://...`) where the container runs. */
  dockerHost?: string;
}

/** Creates or updates the app's non-superuser role and its grants, after the database is up (issue 15). */
export class AppRole extends pulumi.ComponentResource {
  /** The set-up command (the migration and the app depend on it). */
  public readonly command: command.local.Command;

  constructor(name: string, args: AppRoleArgs, opts: pulumi.ComponentResourceOptions = {}) {
    super("safe-deploy:database:AppRole", name, {}, opts);
    if (args.role === args.owner) throw new Error("`role` must differ from `owner` (`database.user`)");
    const sql = pulumi.output(args.password).apply((pw) =>
      appRoleSql({
        owner: args.owner,
        role: args.role,
        database: args.database,
        verifier: scramVerifier(pw, args.role),
      }),
    );
    this.command = new command.local.Command(
      `${name}-setup`,
      {
        create: appRoleCommand(args.owner, args.database),
        stdin: pulumi.secret(sql),
        environment: {
          SAFE_DEPLOY_DB_CONTAINER: args.container,
          PGPASSWORD: pulumi.secret(args.ownerPassword),
          ...(args.dockerHost ? { DOCKER_HOST: args.dockerHost } : {}),
        },
        triggers: [args.trigger],
        logging: "none",
        addPreviousOutputInEnv: false,
      },
      { parent: this, dependsOn: opts.dependsOn, additionalSecretOutputs: ["stdout", "stderr"] },
    );
    this.registerOutputs({});
  }
}
