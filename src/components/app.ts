import * as command from "@pulumi/command";
import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import { urlHost } from "../core/address";
import { containerLabels } from "../core/release/labels";
import { drainCommand, readyAllCommand } from "../core/rollout/drain";
import { haproxyConfig, MAINTENANCE_PAGE } from "../core/rollout/haproxy";
import { rolloutPlan, type RolloutStrategy } from "../core/rollout/plan";
import { pinnedImage } from "./imagePin";

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
  /** `recreate` (default) or `blue-green` (behind a proxy; needs `healthcheck`). */
  rollout?: RolloutStrategy;
  /** Docker healthcheck of the app container; with it Pulumi waits for `healthy`. */
  healthcheck?: {
    command: string[];
    intervalSeconds: number;
    timeoutSeconds: number;
    retries: number;
    startPeriodSeconds: number;
  };
  /** Blue-green: the reverse proxy's image (HAProxy 2.x). */
  proxyImage?: string;
  /** Blue-green: the network alias that switches the proxy to its maintenance page (haproxy.ts). */
  maintenanceFlag?: string;
  /** Blue-green: the path the proxy health-checks on each app container. */
  healthPath?: string;
  expectStatus?: number[];
  /** A remote Docker host (`ssh://...`), where the proxy image is looked up. */
  dockerHost?: string;
}

/** The network alias every app container of the stack answers on (blue-green: the proxy's target). */
export const APP_ALIAS = "app";

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
 * a brief downtime, which the HealthGate then bounds. `blue-green`: the new container joins the network
 * under the alias `app` with no fixed name or host port, Pulumi waits for it to be healthy, a reverse
 * proxy (which owns the host port) routes only to healthy containers of that alias, and the old
 * container is deleted only after the new one is up.
 */
export class App extends pulumi.ComponentResource {
  /** The image content id the container runs. */
  public readonly imageId: pulumi.Output<string>;
  /** The container resource. */
  public readonly container: docker.Container;
  /** URL of the app from this machine. */
  public readonly localUrl: pulumi.Output<string>;
  /** Blue-green only: the proxy container. */
  public readonly proxy?: docker.Container;
  /** Blue-green only: drains this container in the proxy before its delete (issue 18). */
  public readonly drain?: command.local.Command;

  constructor(name: string, args: AppArgs, opts: pulumi.ComponentResourceOptions = {}) {
    super("safe-deploy:app:App", name, {}, opts);
    if (!args.imageId) throw new Error("`imageId` is required");
    this.imageId = pulumi.output(args.imageId);
    const envs = pulumi
      .all([args.databaseUrl, args.secretEnvironment ?? {}, args.redisUrl, args.version])
      .apply(([url, secrets, redis, version]) =>
        appEnvs(args.port, args.environment, url, secrets, redis, version),
      );
    const plan = rolloutPlan(args.rollout ?? "recreate", { hasHealthcheck: !!args.healthcheck });
    const hc = args.healthcheck;
    const published = [{ internal: args.port, external: args.hostPort, ip: args.bindAddress }];
    if (plan.proxy) {
      this.proxy = this.makeProxy(name, args, published);
    }
    this.container = new docker.Container(
      `${name}-app`,
      {
        image: this.imageId,
        envs: pulumi.secret(envs),
        ports: plan.publishHostPort ? published : undefined,
        networksAdvanced: [{ name: args.network, aliases: [APP_ALIAS] }],
        healthcheck: hc && {
          tests: hc.command,
          interval: `${hc.intervalSeconds}s`,
          timeout: `${hc.timeoutSeconds}s`,
          retries: hc.retries,
          startPeriod: `${hc.startPeriodSeconds}s`,
        },
        wait: plan.waitHealthy,
        waitTimeout: hc
          ? hc.startPeriodSeconds + hc.retries * (hc.intervalSeconds + hc.timeoutSeconds) + 30
          : undefined,
        restart: "unless-stopped",
        mustRun: true,
        destroyGraceSeconds: 30,
        labels: [
          ...containerLabels(pulumi.getStack(), "app"),
          { label: "safe-deploy.rollout", value: plan.strategy },
        ],
      },
      {
        parent: this,
        // Children don't inherit a component's dependsOn: the container itself waits for the migration.
        dependsOn: [
          ...([] as pulumi.Resource[]).concat((opts.dependsOn as pulumi.Resource[]) ?? []),
          ...(this.proxy ? [this.proxy] : []),
        ],
        deleteBeforeReplace: plan.deleteBeforeReplace,
        additionalSecretOutputs: ["envs"],
      },
    );
    if (this.proxy) this.drain = this.makeDrain(name, args, this.proxy);
    this.localUrl = pulumi.output(`http://${urlHost(args.bindAddress)}:${args.hostPort}`);
    this.registerOutputs({ imageId: this.imageId });
  }

  /**
   * Blue-green: replaced with each container and depending on it, so Pulumi deletes the old one just
   * before the old container: its `delete` takes that container out of HAProxy's rotation, waits for
   * its requests in flight and stops it; only then does the provider remove it (issue 18: a request
   * sent to the address of a container already gone hung until `timeout connect`).
   */
  private makeDrain(name: string, args: AppArgs, proxy: docker.Container): command.local.Command {
    const grace = 30; // the container's destroyGraceSeconds
    return new command.local.Command(
      `${name}-drain`,
      {
        create: proxy.name.apply((p) => readyAllCommand(p, "app")),
        delete: pulumi
          .all([proxy.name, this.container.name, args.network])
          .apply(([p, c, network]) =>
            drainCommand({ proxy: p, container: c, network, backend: "app", graceSeconds: grace }),
          ),
        environment: args.dockerHost ? { DOCKER_HOST: args.dockerHost } : undefined,
        triggers: [this.container.id],
        addPreviousOutputInEnv: false,
      },
      { parent: this, dependsOn: [this.container, proxy] },
    );
  }

  /** The blue-green proxy: owns the host port, routes only to healthy containers of the `app` alias. */
  private makeProxy(
    name: string,
    args: AppArgs,
    published: Array<{ internal: number; external: number; ip: string }>,
  ): docker.Container {
    const image = pinnedImage(`${name}-proxy-image`, args.proxyImage ?? "haproxy:2.8", args.dockerHost, {
      parent: this,
    });
    const cfg = haproxyConfig({
      listenPort: args.port,
      backends: [{ name: "app", host: APP_ALIAS, port: args.port, count: 4 }],
      healthPath: args.healthPath ?? "/health",
      expectStatus: args.expectStatus,
      maintenanceFlag: args.maintenanceFlag,
    });
    return new docker.Container(
      `${name}-proxy`,
      {
        image: image.id,
        ports: published,
        networksAdvanced: [{ name: args.network }],
        uploads: [
          { file: "/usr/local/etc/haproxy/haproxy.cfg", content: cfg },
          { file: "/etc/haproxy/maintenance.html", content: MAINTENANCE_PAGE },
        ],
        restart: "unless-stopped",
        mustRun: true,
        labels: containerLabels(pulumi.getStack(), "proxy"),
      },
      // It owns the fixed host port: a changed proxy must free it before its successor binds it.
      { parent: this, deleteBeforeReplace: true },
    );
  }
}
