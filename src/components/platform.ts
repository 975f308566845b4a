// Issue 17: the pm2 and render targets behind the same gates as Docker. The stages are the same
// components (Backup -> Migration -> hooks -> app -> HealthGate); only the app stage differs. Kept out
// of deployment.ts so the Docker graph stays exactly as it was.
import * as command from "@pulumi/command";
import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import { isAbsolute, join, resolve } from "node:path";
import type { StackConfig } from "../config";
import { checksumDir, releaseKey } from "../core/checksum";
import { directDatabaseUrl } from "../core/render/database";
import { HealthGate } from "../providers/healthgate";
import { Database } from "./database";
import type { DeploymentArgs } from "./deployment-args";
import { failedHookLines, hookCommands, type HookContext } from "./hooks";
import { Migration } from "./migration";
import { Pm2App } from "./pm2";
import { preDeployBackup } from "./pre-deploy-backup";
import { RenderApp } from "./render";

/** What the Deployment exports, whatever the target. */
export interface PlatformOutputs {
  url: pulumi.Output<string>;
  releaseKey: pulumi.Output<string>;
  backupFile: pulumi.Output<string>;
  migrationsChecksum: string;
  imageId: pulumi.Output<string>;
  healthCheckedAt: pulumi.Output<string>;
  postDeployWarnings: pulumi.Output<string[]>;
  containers: pulumi.Output<Record<string, string>>;
}

/** The ssh:// host pm2 runs on: `app.pm2.host`, else an ssh:// `docker.host`, else this machine. */
export function pm2Host(c: StackConfig): string | undefined {
  return c.app.pm2?.host ?? (c.docker.host.startsWith("ssh://") ? c.docker.host : undefined);
}

/** The guarded deploy of `app.target` pm2 or render, as children of `parent`. */
export function platformStages(
  parent: pulumi.ComponentResource,
  name: string,
  args: DeploymentArgs,
): PlatformOutputs {
  const { config: c, secrets } = args;
  const abs = (p: string) => (isAbsolute(p) ? p : resolve(args.projectDir, p));
  const container = c.database.mode === "container";
  const remoteDocker = c.docker.host.startsWith("ssh://");

  // A managed database container (pm2 beside PostgreSQL in Docker, seed 004) keeps its Docker graph.
  const provider = container
    ? new docker.Provider(`${name}-docker`, { host: c.docker.host }, { parent })
    : undefined;
  const network =
    provider &&
    new docker.Network(
      `${name}-net`,
      {
        name: c.docker.network,
        driver: "bridge",
        labels: [{ label: "safe-deploy.stack", value: pulumi.getStack() }],
      },
      { parent, provider },
    );
  const db = new Database(
    `${name}-database`,
    c.database.mode === "container"
      ? {
          ...c.database,
          password: secrets.dbPassword!,
          network: network!.name,
          dockerHost: remoteDocker ? c.docker.host : undefined,
        }
      : { mode: "external", databaseUrl: secrets.databaseUrl! },
    { parent, ...(provider ? { providers: { docker: provider } } : {}) },
  );
  // Migrations and pg_dump need a direct connection: a pooled external URL is refused (naming the key).
  const directUrl = container
    ? db.hostUrl
    : pulumi.secret(
        pulumi
          .all([secrets.databaseUrl!, secrets.migrationDatabaseUrl ?? ""])
          .apply(([u, m]) => directDatabaseUrl(u, m || undefined)),
      );

  const imageId = pulumi.output(
    c.app.target === "render" && c.app.image ? c.app.image : `git:${args.commit}`,
  );
  const migrationsChecksum = checksumDir(join(abs(c.migrations.workDir), c.migrations.dir));
  const key = imageId.apply((id) => releaseKey(id, migrationsChecksum));

  const hookCtx: HookContext = {
    stack: pulumi.getStack(),
    projectDir: args.projectDir,
    releaseKey: key,
    image: imageId,
    network: network?.name ?? "",
    dockerHost: remoteDocker ? c.docker.host : undefined,
    databaseUrls: { local: directUrl, container: db.networkUrl },
    secretEnvironment: secrets.hookSecrets,
  };
  const hooks = (point: keyof StackConfig["hooks"], after: pulumi.Resource[]) =>
    hookCommands(name, point, c.hooks[point], hookCtx, after, { parent });
  const preBackup = hooks("preBackup", db.container ? [db.container] : []);

  const backup = preDeployBackup(name, {
    config: c,
    args,
    releaseKey: key,
    databaseUrl: directUrl,
    container: container ? { url: db.containerUrl, name: db.containerName } : undefined,
    encryptionKey: secrets.backupEncryptionKey,
    dependsOn: [...preBackup, ...(db.container ? [db.container] : [])],
    parent,
  });

  const migration = new Migration(
    `${name}-migration`,
    {
      ...c.migrations,
      runIn: "local",
      workDir: abs(c.migrations.workDir),
      databaseUrl: directUrl,
      migrationsChecksum,
      integrity: c.integrity,
      backupId: backup.id,
      projectDir: args.projectDir,
      stack: pulumi.getStack(),
    },
    { parent, dependsOn: [backup] },
  );
  const postMigrate = hooks("postMigrate", [migration.command]);
  const preCutover = hooks("preCutover", [migration.command, ...postMigrate]);
  const cutoverAfter = [migration.command, ...postMigrate, ...preCutover];

  let gate: HealthGate;
  let gated: pulumi.Resource[];
  let baseUrl: pulumi.Input<string>;
  if (c.app.target === "pm2") {
    const p = c.app.pm2!;
    const host = pm2Host(c);
    const app = new Pm2App(
      `${name}-app`,
      {
        release: {
          root: p.root,
          commit: args.commit,
          appName: c.app.name,
          repoDir: args.projectDir,
          appDir: p.appDir,
          install: p.install,
          script: p.script,
          execMode: p.execMode,
          instances: p.instances,
          bin: p.bin,
          keepReleases: c.app.keepReleases,
          host,
        },
        port: c.app.port,
        environment: c.app.environment,
        secretEnvironment: secrets.appSecrets,
        // The app on the target reaches the database as this machine does (its published port), or
        // through the URL the user gave (a pooled one is fine for the app).
        databaseUrl: container ? db.hostUrl : secrets.databaseUrl!,
        version: key,
        logLines: p.logLines,
        timeoutSeconds: p.timeoutSeconds,
      },
      { parent, dependsOn: cutoverAfter },
    );
    baseUrl = `http://127.0.0.1:${c.app.port}`;
    gate = new HealthGate(
      `${name}-health`,
      {
        url: c.health.url ?? `${baseUrl}${c.health.path}`,
        expectStatus: c.health.expectStatus,
        retries: c.health.retries,
        delaySeconds: c.health.delaySeconds,
        timeoutSeconds: c.health.timeoutSeconds,
        triggers: { releaseKey: key, commit: args.commit },
      },
      { parent, dependsOn: [app.release] },
    );
    // The log half of the gate: critical lines in `pm2 logs --nostream` fail the release too.
    const logs = new command.local.Command(
      `${name}-pm2-logs`,
      { create: app.logCheck, triggers: [key], addPreviousOutputInEnv: false },
      { parent, dependsOn: [gate] },
    );
    gated = [gate, logs];
  } else {
    const r = c.app.render!;
    const app = new RenderApp(
      `${name}-app`,
      {
        apiUrl: r.apiUrl,
        apiKey: secrets.renderApiKey!,
        serviceId: r.serviceId,
        commit: args.commit,
        imageUrl: c.app.image,
        timeoutSeconds: r.deployTimeoutSeconds,
        pollSeconds: r.pollSeconds,
      },
      { parent, dependsOn: cutoverAfter },
    );
    baseUrl = c.health.url!;
    gate = new HealthGate(
      `${name}-health`,
      {
        url: c.health.url!,
        expectStatus: c.health.expectStatus,
        retries: c.health.retries,
        delaySeconds: c.health.delaySeconds,
        timeoutSeconds: c.health.timeoutSeconds,
        triggers: { deployId: app.deploy.deployId, releaseKey: key },
      },
      { parent, dependsOn: [app.deploy] },
    );
    gated = [gate];
  }

  const postDeploy = hooks("postDeploy", gated);
  const done = pulumi.all(gated.map((g) => (g as pulumi.CustomResource).id));
  return {
    url: pulumi.all([gate.checkedAt, done, baseUrl]).apply(([, , u]) => c.health.url ?? u),
    releaseKey: key,
    backupFile: pulumi.all([gate.checkedAt, done, backup.file]).apply(([, , f]) => f),
    migrationsChecksum,
    imageId,
    healthCheckedAt: gate.checkedAt,
    postDeployWarnings: pulumi.unsecret(
      pulumi
        .all(postDeploy.map((h) => h.stdout))
        .apply((outs) => outs.flatMap((o) => failedHookLines(o ?? ""))),
    ),
    containers: pulumi
      .all({ database: db.containerName ?? pulumi.output("") })
      .apply((m) => Object.fromEntries(Object.entries(m).filter(([, v]) => v))),
  };
}
