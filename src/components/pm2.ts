import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { envObject, logCheckCommand, releaseCommand, type Pm2Release } from "../core/pm2/release";
import { appEnvs } from "./app";

/** Arguments of the app run by pm2 (issue 17, `app.target: pm2`). */
export interface Pm2AppArgs {
  /** The release as plain values; its commands are built by src/core/pm2/release.ts. */
  release: Pm2Release;
  port: number;
  environment: Record<string, string>;
  /** Secret env vars of the app. */
  secretEnvironment?: pulumi.Input<Record<string, string>>;
  /** Secret: the app's DATABASE_URL. */
  databaseUrl: pulumi.Input<string>;
  /** Written to APP_VERSION; a new one re-runs the release command. */
  version: pulumi.Input<string>;
  /** Lines of `pm2 logs` the log check reads. */
  logLines: number;
  /** Deadline of the release command. */
  timeoutSeconds: number;
}

/**
 * The app as pm2 runs it. One `local.Command` per step rather than a dynamic provider: the steps are
 * shell commands on the target anyway, and `local.Command` + the system `ssh` reaches a server the way
 * `docker.host: ssh://` already does (the user's ssh config, agent and known_hosts, so the host key IS
 * checked; `remote.Command` would need the private key in config and checks no host key without
 * `hostKey`). The secret environment goes in through `environment`, never the command string.
 */
export class Pm2App extends pulumi.ComponentResource {
  /** The release command; its re-run on a new version is the cutover (pm2 reload/restart). */
  public readonly release: command.local.Command;
  /** The command the health gate's log check runs after the HTTP gate (needs `dependsOn` the gate). */
  public readonly logCheck: string;

  constructor(name: string, args: Pm2AppArgs, opts: pulumi.ComponentResourceOptions = {}) {
    super("safe-deploy:pm2:Pm2App", name, {}, opts);
    if (!args.release.root.startsWith("/")) throw new Error("`release.root` must be an absolute path");
    const env = pulumi
      .all([args.databaseUrl, args.secretEnvironment ?? {}, args.version])
      .apply(([url, secrets, version]) =>
        JSON.stringify(envObject(appEnvs(args.port, args.environment, url, secrets, undefined, version))),
      );
    this.release = new command.local.Command(
      `${name}-release`,
      {
        create: releaseCommand(args.release),
        environment: { SAFE_DEPLOY_APP_ENV: pulumi.secret(env) },
        triggers: [args.version],
        addPreviousOutputInEnv: false,
      },
      {
        parent: this,
        // Children don't inherit a component's dependsOn: the release itself waits for the migration.
        dependsOn: ([] as pulumi.Resource[]).concat((opts.dependsOn as pulumi.Resource[]) ?? []),
        customTimeouts: { create: `${args.timeoutSeconds}s`, update: `${args.timeoutSeconds}s` },
      },
    );
    this.logCheck = logCheckCommand(args.release, args.logLines);
    this.registerOutputs({});
  }
}
