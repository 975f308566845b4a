import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import { urlHost } from "../core/address";
import { haproxyConfig } from "../core/rollout/haproxy";
import { SWARM_PROXY_PAGE, swarmProxySpec, swarmServiceSpec, type SwarmSettings } from "../core/swarm/spec";
import type { StackConfig } from "../config";
import { appEnvs } from "./app";

/** Arguments of the app as a Swarm service (`app.target: swarm`, issue 18). */
export interface SwarmAppArgs {
  /** Service name (also the Docker DNS name of its tasks: `tasks.<serviceName>`). */
  serviceName: string;
  /** An image reference every node resolves: a registry digest on several nodes, a local tag on one. */
  image: pulumi.Input<string>;
  /** The image's content id: a new image is a new release even under the same tag. */
  imageId: pulumi.Input<string>;
  port: number;
  hostPort: number;
  bindAddress: string;
  replicas: number;
  /** The attachable overlay network the tasks share with the database. */
  network: pulumi.Input<string>;
  environment: Record<string, string>;
  secretEnvironment?: pulumi.Input<Record<string, string>>;
  /** Secret. */
  databaseUrl: pulumi.Input<string>;
  redisUrl?: pulumi.Input<string>;
  /** The release key: APP_VERSION of the tasks and the label the gate checks on every task. */
  version: pulumi.Input<string>;
  healthcheck: {
    command: string[];
    intervalSeconds: number;
    timeoutSeconds: number;
    retries: number;
    startPeriodSeconds: number;
  };
  swarm: SwarmSettings;
  /** `publishMode: host`: the proxy's image (HAProxy 2.x) and what it checks on each task. */
  proxyImage?: string;
  healthPath?: string;
  expectStatus?: number[];
}

/**
 * The app as a replicated Swarm service, rolled task by task (new task first, each watched, Swarm's
 * rollback on a failed one). With `publishMode: ingress` the routing mesh publishes the port on
 * every node; with `host` a global proxy service publishes it in host mode on each node and routes
 * to the healthy tasks over the overlay network.
 */
export class SwarmApp extends pulumi.ComponentResource {
  /** The app service. */
  public readonly service: docker.Service;
  /** `publishMode: host` only: the proxy service. */
  public readonly proxy?: docker.Service;
  /** URL of the app from this machine. */
  public readonly localUrl: pulumi.Output<string>;

  constructor(name: string, args: SwarmAppArgs, opts: pulumi.ComponentResourceOptions = {}) {
    super("safe-deploy:swarm:SwarmApp", name, {}, opts);
    if (!args.healthcheck) throw new Error("`healthcheck` is required: the rolling update waits on it");
    if (!/^[a-z][a-z0-9-]{0,62}$/.test(args.serviceName)) {
      throw new Error("`serviceName` must be lower-case letters, digits and '-'");
    }
    const envs = pulumi
      .all([args.databaseUrl, args.secretEnvironment ?? {}, args.redisUrl, args.version])
      .apply(([url, secrets, redis, version]) =>
        Object.fromEntries(
          appEnvs(args.port, args.environment, url, secrets, redis, version).map((kv) => {
            const i = kv.indexOf("=");
            return [kv.slice(0, i), kv.slice(i + 1)];
          }),
        ),
      );
    const spec = pulumi
      .all([args.image, args.network, args.version, args.imageId])
      .apply(([image, network, release]) =>
        swarmServiceSpec({
          name: args.serviceName,
          image,
          port: args.port,
          hostPort: args.hostPort,
          replicas: args.replicas,
          network,
          release,
          healthcheck: args.healthcheck,
          swarm: args.swarm,
        }),
      );
    const dependsOn = ([] as pulumi.Resource[]).concat((opts.dependsOn as pulumi.Resource[]) ?? []);
    this.service = new docker.Service(
      `${name}-service`,
      {
        name: spec.name,
        mode: spec.mode,
        labels: spec.labels,
        taskSpec: pulumi
          .all([spec.taskSpec, pulumi.secret(envs)])
          .apply(([t, env]) => ({ ...t, containerSpec: { ...t.containerSpec, env } })),
        updateConfig: spec.updateConfig,
        rollbackConfig: spec.rollbackConfig,
        endpointSpec: spec.endpointSpec,
        convergeConfig: spec.convergeConfig,
      },
      // Children don't inherit a component's dependsOn: the service itself waits for the migration.
      { parent: this, dependsOn, additionalSecretOutputs: ["taskSpec"] },
    );
    if (args.swarm.publishMode === "host") {
      const cfg = haproxyConfig({
        listenPort: args.hostPort,
        backends: [
          { name: "app", host: `tasks.${args.serviceName}`, port: args.port, count: 2 * args.replicas + 2 },
        ],
        healthPath: args.healthPath ?? "/health",
        expectStatus: args.expectStatus,
        maintenancePage: SWARM_PROXY_PAGE,
      });
      // Each node resolves the image by reference (a content id is not a reference a node can pull).
      const proxy = pulumi.output(args.network).apply((network) =>
        swarmProxySpec({
          name: `${args.serviceName}-proxy`,
          image: args.proxyImage ?? "haproxy:2.8",
          hostPort: args.hostPort,
          network,
          haproxyConfig: cfg,
          constraints: args.swarm.constraints,
        }),
      );
      this.proxy = new docker.Service(
        `${name}-proxy`,
        {
          name: proxy.name,
          mode: proxy.mode,
          labels: proxy.labels,
          taskSpec: proxy.taskSpec,
          updateConfig: proxy.updateConfig,
          endpointSpec: proxy.endpointSpec,
        },
        { parent: this, dependsOn },
      );
    }
    this.localUrl = pulumi.output(`http://${urlHost(args.bindAddress)}:${args.hostPort}`);
    this.registerOutputs({ localUrl: this.localUrl });
  }
}

/** `repository@sha256:…` of a pushed image: what every node of a swarm pulls, whatever the tag says now. */
export function pushedRef(ref: string, pushed: docker.RegistryImage): pulumi.Output<string> {
  const slash = ref.lastIndexOf("/");
  const colon = ref.lastIndexOf(":");
  const repository = colon > slash ? ref.slice(0, colon) : ref;
  return pushed.sha256Digest.apply((d) => `${repository}@${d}`);
}

/** The SwarmApp of a stack's config (`app.target: swarm`); the parts come from the deployment graph. */
export function swarmApp(
  name: string,
  c: StackConfig,
  parts: {
    image: pulumi.Input<string>;
    imageId: pulumi.Input<string>;
    network: pulumi.Input<string>;
    databaseUrl: pulumi.Input<string>;
    secrets: { appSecrets?: pulumi.Input<Record<string, string>> };
    redisUrl?: pulumi.Input<string>;
    version: pulumi.Input<string>;
  },
  opts: pulumi.ComponentResourceOptions,
): SwarmApp {
  return new SwarmApp(
    `${name}-app`,
    {
      serviceName: `${pulumi.getStack()}-${c.app.name}`.toLowerCase().replace(/[^a-z0-9-]/g, "-"),
      image: parts.image,
      imageId: parts.imageId,
      port: c.app.port,
      hostPort: c.app.hostPort,
      bindAddress: c.app.bindAddress,
      replicas: c.app.replicas,
      network: parts.network,
      environment: c.app.environment,
      secretEnvironment: parts.secrets.appSecrets,
      databaseUrl: parts.databaseUrl,
      redisUrl: parts.redisUrl,
      version: parts.version,
      healthcheck: c.app.healthcheck!,
      swarm: c.app.swarm,
      proxyImage: c.app.proxyImage,
      healthPath: c.health.path,
      expectStatus: c.health.expectStatus,
    },
    opts,
  );
}
