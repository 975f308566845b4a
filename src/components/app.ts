import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";

/** Arguments of the app container. */
export interface AppArgs {
  /** The image's content id (`RemoteImage.imageId`): pins the container to exactly that image. */
  imageId: pulumi.Input<string>;
  port: number;
  hostPort: number;
  bindAddress: string;
  network: pulumi.Input<string>;
  environment: Record<string, string>;
  /** Secret env vars (e.g. JWT keys): stay secret in state. */
  secretEnvironment?: pulumi.Input<Record<string, string>>;
  /** Secret. */
  databaseUrl: pulumi.Input<string>;
  redisUrl?: pulumi.Input<string>;
  /** Written to APP_VERSION so /health can report which release answers. */
  version?: pulumi.Input<string>;
}

/** Builds the container's env list; plain pure function so the env contract is table-tested. */
export function appEnvs(
  port: number,
  environment: Record<string, string>,
  databaseUrl: string,
  secretEnvironment: Record<string, string> = {},
  redisUrl?: string,
  version?: string,
): string[] {
  const env: Record<string, string> = { ...environment, ...secretEnvironment, PORT: String(port) };
  env.DATABASE_URL = databaseUrl;
  if (redisUrl) env.REDIS_URL = redisUrl;
  if (version) env.APP_VERSION = version;
  return Object.entries(env).map(([k, v]) => `${k}=${v}`);
}

/**
 * The app container, pinned to the image's content id (a new image always replaces it). Strategy
 * `recreate`: fixed name and host port, so the old container is deleted before the new one starts —
 * a brief downtime, which the HealthGate then bounds.
 */
export class App extends pulumi.ComponentResource {
  /** The image content id the container runs. */
  public readonly imageId: pulumi.Output<string>;
  /** The container resource. */
  public readonly container: docker.Container;
  /** URL of the app from this machine. */
  public readonly localUrl: pulumi.Output<string>;

  constructor(name: string, args: AppArgs, opts: pulumi.ComponentResourceOptions = {}) {
    super("safe-deploy:app:App", name, {}, opts);
    if (!args.imageId) throw new Error("`imageId` is required");
    this.imageId = pulumi.output(args.imageId);
    const envs = pulumi
      .all([args.databaseUrl, args.secretEnvironment ?? {}, args.redisUrl, args.version])
      .apply(([url, secrets, redis, version]) =>
        appEnvs(args.port, args.environment, url, secrets, redis, version),
      );
    this.container = new docker.Container(
      `${name}-app`,
      {
        image: this.imageId,
        envs: pulumi.secret(envs),
        ports: [{ internal: args.port, external: args.hostPort, ip: args.bindAddress }],
        networksAdvanced: [{ name: args.network }],
        restart: "unless-stopped",
        mustRun: true,
        destroyGraceSeconds: 30,
        labels: [{ label: "safe-deploy.role", value: "app" }],
      },
      // Children don't inherit a component's dependsOn: the container itself waits for the migration.
      {
        parent: this,
        dependsOn: opts.dependsOn,
        deleteBeforeReplace: true,
        additionalSecretOutputs: ["envs"],
      },
    );
    const host = args.bindAddress === "0.0.0.0" ? "127.0.0.1" : args.bindAddress;
    this.localUrl = pulumi.output(`http://${host}:${args.hostPort}`);
    this.registerOutputs({ imageId: this.imageId });
  }
}
