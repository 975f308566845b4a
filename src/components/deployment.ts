import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import { isAbsolute, join, resolve } from "node:path";
import type { StackConfig } from "../config";
import { checksumDir, releaseKey } from "../core/checksum";
import { HealthGate } from "../providers/healthgate";
import { App } from "./app";
import { Database } from "./database";
import { derivedAppPassword } from "../core/database/roles";
import { failedHookLines, hookCommands, type HookContext } from "./hooks";
import { appImage } from "./image";
import { preDeployBackup } from "./pre-deploy-backup";
import { Migration } from "./migration";
import * as command from "@pulumi/command";
import { MAINTENANCE_ALIAS } from "../core/rollout/haproxy";
import { maintenanceOffCommand, maintenanceOnCommand } from "../core/rollout/maintenance";
import type { DeploymentArgs } from "./deployment-args";
import { Redis } from "./redis";
import { platformStages } from "./platform";
import { pushedRef, swarmApp } from "./swarm";

export type { DeploymentArgs, DeploymentSecrets } from "./deployment-args";

/**
 * The guarded deploy as one resource graph (docs/architecture.md, "The deploy, as a resource graph"):
 * db -> Backup -> Migration -> App -> HealthGate -> outputs. `pulumi up` fails at the first stage that
 * fails and runs nothing after it, so an unhealthy release never reports success.
 */
export class Deployment extends pulumi.ComponentResource {
  /** The app's URL, known only once the gate passed. */
  public readonly url: pulumi.Output<string>;
  /** What identifies this release (image id + migrations checksum). */
  public readonly releaseKey: pulumi.Output<string>;
  /** The pre-deploy backup file, known only once the gate passed. */
  public readonly backupFile: pulumi.Output<string>;
  /** sha256 of the migration files this release applied. */
  public readonly migrationsChecksum: string;
  /** The app image's content id this release runs (what its tag pointed at when it was deployed). */
  public readonly imageId: pulumi.Output<string>;
  /** When the gate last passed. */
  public readonly healthCheckedAt: pulumi.Output<string>;
  /** One line per failed postDeploy hook (they warn, never roll back). */
  public readonly postDeployWarnings: pulumi.Output<string[]>;
  /** Names of the stack's containers, for `safe-deploy status` and the CLI's database access. */
  public readonly containers: pulumi.Output<Record<string, string>>;

  constructor(name: string, args: DeploymentArgs, opts: pulumi.ComponentResourceOptions = {}) {
    super("safe-deploy:deployment:Deployment", name, {}, opts);
    const { config: c, secrets } = args;
    if (c.app.target === "pm2" || c.app.target === "render") {
      // Issue 17: pm2 and render pass the same gates; their stages are wired in platform.ts.
      const o = platformStages(this, name, args);
      this.url = o.url;
      this.releaseKey = o.releaseKey;
      this.backupFile = o.backupFile;
      this.migrationsChecksum = o.migrationsChecksum;
      this.imageId = o.imageId;
      this.healthCheckedAt = o.healthCheckedAt;
      this.postDeployWarnings = o.postDeployWarnings;
      this.containers = o.containers;
      this.registerOutputs({ url: this.url, releaseKey: this.releaseKey, backupFile: this.backupFile });
      return;
    }
    const abs = (p: string) => (isAbsolute(p) ? p : resolve(args.projectDir, p));
    const provider = new docker.Provider(`${name}-docker`, { host: c.docker.host }, { parent: this });
    const child = (extra: pulumi.CustomResourceOptions = {}) => ({ parent: this, provider, ...extra });
    const remote = c.docker.host.startsWith("ssh://");

    const network = new docker.Network(
      `${name}-net`,
      {
        name: c.docker.network,
        // A Swarm service only joins swarm-scoped networks; attachable so the database and migration
        // containers (plain containers) join it too.
        driver: c.app.target === "swarm" ? "overlay" : "bridge",
        attachable: c.app.target === "swarm" ? true : undefined,
        labels: [{ label: "safe-deploy.stack", value: pulumi.getStack() }],
      },
      child(),
    );

    const redis = c.redis.enabled
      ? new Redis(
          `${name}-redis`,
          { image: c.redis.image, network: network.name, dockerHost: remote ? c.docker.host : undefined },
          { parent: this, providers: { docker: provider } },
        )
      : undefined;

    // The image is resolved (pulled or built) before anything else runs, so a bad image or a failed build
    // fails the deploy before the backup.
    const {
      image: appImageResource,
      imageId,
      ref: imageRef,
      pushed,
    } = appImage(
      name,
      {
        ...c.app,
        appName: c.app.name,
        commit: args.commit,
        projectDir: args.projectDir,
        dockerHost: remote ? c.docker.host : undefined,
      },
      child(),
    );
    this.imageId = imageId;
    this.migrationsChecksum = checksumDir(join(abs(c.migrations.workDir), c.migrations.dir));
    this.releaseKey = imageId.apply((id) => releaseKey(id, this.migrationsChecksum));

    // The app connects as its own non-superuser role (issue 15); set up again on every release.
    const dbPassword = secrets.dbPassword!;
    const db = new Database(
      `${name}-database`,
      c.database.mode === "container"
        ? {
            ...c.database,
            password: dbPassword,
            network: network.name,
            dockerHost: remote ? c.docker.host : undefined,
            appPassword:
              secrets.dbAppPassword ?? pulumi.secret(pulumi.output(dbPassword).apply(derivedAppPassword)),
            roleTrigger: this.releaseKey,
          }
        : { mode: "external", databaseUrl: secrets.databaseUrl!, appDatabaseUrl: secrets.appDatabaseUrl },
      { parent: this, providers: { docker: provider } },
    );
    if (c.database.mode === "container" && !secrets.dbAppPassword) {
      pulumi.log.warn(
        '`dbAppPassword` is not set: the app role\'s password is derived from `dbPassword`. Set its own with `pulumi config set --secret dbAppPassword "$(openssl rand -base64 24)"`',
        this,
      );
    }

    const hookCtx: HookContext = {
      stack: pulumi.getStack(),
      projectDir: args.projectDir,
      releaseKey: this.releaseKey,
      image: imageId,
      network: network.name,
      dockerHost: remote ? c.docker.host : undefined,
      databaseUrls: { local: db.hostUrl, container: db.networkUrl },
      secretEnvironment: secrets.hookSecrets,
    };
    const hooks = (point: keyof StackConfig["hooks"], after: pulumi.Resource[]) =>
      hookCommands(name, point, c.hooks[point], hookCtx, after, { parent: this });
    const preBackup = hooks("preBackup", [appImageResource, ...(db.container ? [db.container] : [])]);

    // An external database has no container to exec into: it is dumped from this machine, as the CLI does.
    const backup = preDeployBackup(name, {
      config: c,
      args,
      releaseKey: this.releaseKey,
      databaseUrl: db.hostUrl,
      container:
        c.database.mode === "container" ? { url: db.containerUrl, name: db.containerName } : undefined,
      encryptionKey: secrets.backupEncryptionKey,
      dependsOn: [...preBackup, appImageResource, ...(db.container ? [db.container] : [])],
      parent: this,
    });

    // Blue-green with maintenanceDuringMigrations: the proxy serves its maintenance page from just
    // before the migration until it (and postMigrate) finished. A failed migration leaves the page up
    // until the rollback's re-apply runs these two again.
    const maintenanceName = `${pulumi.getStack()}-maintenance`.replace(/[^A-Za-z0-9_.-]/g, "-");
    const maintenanceOn =
      c.app.rollout === "blue-green" && c.app.maintenanceDuringMigrations
        ? new command.local.Command(
            `${name}-maintenance-on`,
            {
              create: network.name.apply((net) =>
                maintenanceOnCommand(
                  maintenanceName,
                  net,
                  c.app.proxyImage,
                  c.migrations.timeoutSeconds + 600,
                ),
              ),
              environment: remote ? { DOCKER_HOST: c.docker.host } : undefined,
              triggers: [this.releaseKey],
              addPreviousOutputInEnv: false,
            },
            { parent: this, dependsOn: [backup] },
          )
        : undefined;

    const migration = new Migration(
      `${name}-migration`,
      {
        ...c.migrations,
        workDir: c.migrations.runIn === "local" ? abs(c.migrations.workDir) : c.migrations.workDir,
        databaseUrl: c.migrations.runIn === "container" ? db.networkUrl : db.hostUrl,
        migrationsChecksum: this.migrationsChecksum,
        integrity: c.integrity,
        backupId: backup.id,
        backupFile: backup.file,
        image: imageId,
        network: network.name,
        dockerHost: remote ? c.docker.host : undefined,
        projectDir: args.projectDir,
        stack: pulumi.getStack(),
      },
      {
        parent: this,
        dependsOn: [
          backup,
          ...(maintenanceOn ? [maintenanceOn] : []),
          ...(db.appRole ? [db.appRole.command] : []),
        ],
      },
    );

    const postMigrate = hooks("postMigrate", [migration.command]);
    const maintenanceOff =
      maintenanceOn &&
      new command.local.Command(
        `${name}-maintenance-off`,
        {
          create: maintenanceOffCommand(maintenanceName),
          environment: remote ? { DOCKER_HOST: c.docker.host } : undefined,
          // A command re-runs `create` on any input change: a new timeout, proxy image or network turns
          // maintenance on without a new release, so the same change must turn it off again.
          triggers: [this.releaseKey, maintenanceOn.create],
          addPreviousOutputInEnv: false,
        },
        { parent: this, dependsOn: [migration.command, ...postMigrate] },
      );
    const preCutover = hooks("preCutover", [migration.command, ...postMigrate]);

    const appDeps = [migration.command, ...preCutover, ...(maintenanceOff ? [maintenanceOff] : [])];
    const swarm =
      c.app.target === "swarm"
        ? swarmApp(
            name,
            c,
            {
              image: pushed ? pushedRef(imageRef, pushed) : pulumi.output(imageRef),
              imageId,
              network: network.name,
              databaseUrl: db.appNetworkUrl,
              secrets,
              redisUrl: redis?.url,
              version: this.releaseKey,
            },
            { parent: this, providers: { docker: provider }, dependsOn: appDeps },
          )
        : undefined;
    const app = swarm
      ? undefined
      : new App(
          `${name}-app`,
          {
            ...c.app,
            imageId,
            network: network.name,
            databaseUrl: db.appNetworkUrl,
            secretEnvironment: secrets.appSecrets,
            redisUrl: redis?.url,
            version: this.releaseKey,
            rollout: c.app.rollout,
            healthcheck: c.app.healthcheck,
            proxyImage: c.app.proxyImage,
            maintenanceFlag: c.app.maintenanceDuringMigrations ? MAINTENANCE_ALIAS : undefined,
            healthPath: c.health.path,
            expectStatus: c.health.expectStatus,
            dockerHost: remote ? c.docker.host : undefined,
          },
          {
            parent: this,
            providers: { docker: provider },
            dependsOn: appDeps,
          },
        );

    const localUrl = swarm ? swarm.localUrl : app!.localUrl;
    const gate = new HealthGate(
      `${name}-health`,
      {
        url: c.health.url ?? localUrl.apply((u) => `${u}${c.health.path}`),
        expectStatus: c.health.expectStatus,
        retries: c.health.retries,
        delaySeconds: c.health.delaySeconds,
        timeoutSeconds: c.health.timeoutSeconds,
        triggers: swarm
          ? { serviceId: swarm.service.id, imageId, release: this.releaseKey }
          : { containerId: app!.container.id, imageId: app!.imageId },
        // The new container itself must be running and healthy: behind a blue-green proxy the URL
        // alone could still be answered by the old one.
        container: swarm
          ? undefined
          : pulumi.output(app!.container.name).apply((n) => ({ name: n, dockerHost: c.docker.host })),
        // Swarm: every running task is this release and Swarm did not roll the update back.
        service: swarm
          ? pulumi.all([swarm.service.name, this.releaseKey]).apply(([service, release]) => ({
              service,
              release,
              replicas: c.app.replicas,
              dockerHost: c.docker.host,
            }))
          : undefined,
      },
      { parent: this, dependsOn: [swarm ? swarm.service : app!.container] },
    );

    const postDeploy = hooks("postDeploy", [gate]);
    // A failing postDeploy hook only warns: its wrapper reports on stdout (secret), from which only the
    // "failed" status lines are taken out for the release record.
    this.postDeployWarnings = pulumi.unsecret(
      pulumi
        .all(postDeploy.map((h) => h.stdout))
        .apply((outs) => outs.flatMap((o) => failedHookLines(o ?? ""))),
    );

    // Outputs exist only once the gate passed: a failed gate leaves no "success" to read.
    this.healthCheckedAt = gate.checkedAt;
    this.url = pulumi.all([gate.checkedAt, localUrl]).apply(([, u]) => c.health.url ?? u);
    this.backupFile = pulumi.all([gate.checkedAt, backup.file]).apply(([, f]) => f);
    this.containers = pulumi
      .all({
        database: db.containerName ?? pulumi.output(""),
        // Containers only: `safe-deploy status` inspects each as a container; a Swarm service is not one.
        app: app?.container.name ?? pulumi.output(""),
        proxy: app?.proxy?.name ?? pulumi.output(""),
        redis: redis?.container.name ?? pulumi.output(""),
      })
      .apply((m) => Object.fromEntries(Object.entries(m).filter(([, v]) => v)));
    this.registerOutputs({ url: this.url, releaseKey: this.releaseKey, backupFile: this.backupFile });
  }
}
