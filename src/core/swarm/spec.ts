import { MAINTENANCE_PAGE } from "../rollout/haproxy";

/** Swarm settings of the app (config `app.swarm`), as plain values. */
export interface SwarmSettings {
  publishMode: "ingress" | "host";
  constraints: string[];
  maxReplicasPerNode: number;
  limits: { cpus?: number; memoryMb?: number };
  parallelism: number;
  monitorSeconds: number;
}

/** What the service spec is built from: plain values, so the spec is table-tested without Pulumi. */
export interface SwarmServiceInput {
  name: string;
  /** An image reference every node can resolve (a registry digest on several nodes; a local tag on one). */
  image: string;
  port: number;
  hostPort: number;
  replicas: number;
  /** The overlay network the tasks, the database and the proxy share. */
  network: string;
  /** Written as a container label on each task: the gate checks every running task carries it. */
  release: string;
  healthcheck: {
    command: string[];
    intervalSeconds: number;
    timeoutSeconds: number;
    retries: number;
    startPeriodSeconds: number;
  };
  swarm: SwarmSettings;
}

/** Where the proxy task writes its maintenance page (pass it to `haproxyConfig`). */
export const SWARM_PROXY_PAGE = "/tmp/maintenance.html";

/** The label that tells which release a task runs. */
export const RELEASE_LABEL = "safe-deploy.release";
/** The network alias of every app task (the proxy routes to `tasks.<service>`). */
export const SWARM_APP_ALIAS = "app";

/**
 * Pure: the service spec in `@pulumi/docker` `Service` argument shape (minus `env`, added by the
 * component as a secret). Rolling update: new task first (`start-first`), each watched for
 * `monitorSeconds`, Swarm's own rollback on a failed task (`failureAction: rollback`).
 */
export function swarmServiceSpec(i: SwarmServiceInput) {
  if (!i.healthcheck.command.length) throw new Error("`healthcheck.command` must not be empty");
  if (!Number.isInteger(i.replicas) || i.replicas < 1) throw new Error("`replicas` must be an integer >= 1");
  const s = i.swarm;
  const hc = i.healthcheck;
  const monitor = `${s.monitorSeconds}s`;
  // The task turns healthy at the latest after start period + retries x (interval + timeout); the
  // update of every batch must fit, plus a margin for pulling the image.
  const perTask =
    hc.startPeriodSeconds + hc.retries * (hc.intervalSeconds + hc.timeoutSeconds) + s.monitorSeconds;
  const batches = Math.ceil(i.replicas / s.parallelism);
  const limits: { nanoCpus?: number; memoryBytes?: number } = {};
  if (s.limits.cpus !== undefined) limits.nanoCpus = Math.round(s.limits.cpus * 1e9);
  if (s.limits.memoryMb !== undefined) limits.memoryBytes = s.limits.memoryMb * 1024 * 1024;
  return {
    name: i.name,
    mode: { replicated: { replicas: i.replicas } },
    labels: [{ label: "safe-deploy.role", value: "app" }],
    taskSpec: {
      containerSpec: {
        image: i.image,
        healthcheck: {
          tests: hc.command,
          interval: `${hc.intervalSeconds}s`,
          timeout: `${hc.timeoutSeconds}s`,
          retries: hc.retries,
          startPeriod: `${hc.startPeriodSeconds}s`,
        },
        labels: [
          { label: "safe-deploy.role", value: "app" },
          { label: RELEASE_LABEL, value: i.release },
        ],
        stopGracePeriod: "30s",
      },
      networksAdvanceds: [{ name: i.network, aliases: [SWARM_APP_ALIAS] }],
      placement: {
        constraints: s.constraints,
        maxReplicas: s.maxReplicasPerNode || undefined,
      },
      resources: Object.keys(limits).length ? { limits } : undefined,
      restartPolicy: { condition: "any", delay: "5s", window: "30s" },
    },
    updateConfig: {
      parallelism: s.parallelism,
      order: "start-first",
      failureAction: "rollback",
      monitor,
      maxFailureRatio: "0",
      delay: "0s",
    },
    rollbackConfig: {
      parallelism: s.parallelism,
      order: "start-first",
      failureAction: "pause",
      monitor,
      maxFailureRatio: "0",
      delay: "0s",
    },
    endpointSpec: {
      mode: "vip",
      ports:
        s.publishMode === "ingress"
          ? [{ targetPort: i.port, publishedPort: i.hostPort, publishMode: "ingress", protocol: "tcp" }]
          : [],
    },
    // The provider waits for convergence and fails on Swarm's rollback ("service rollback completed").
    convergeConfig: { delay: "2s", timeout: `${batches * perTask * 2 + 60}s` },
  };
}

/** The spec's type. */
export type SwarmServiceSpec = ReturnType<typeof swarmServiceSpec>;

/**
 * Pure: with `publishMode: host` one proxy task per node publishes the port in host mode and routes
 * to every healthy app task over the overlay network (`tasks.<service>` in Docker DNS).
 */
export function swarmProxySpec(i: {
  name: string;
  image: string;
  hostPort: number;
  network: string;
  /** From `haproxyConfig({ ..., maintenancePage: SWARM_PROXY_PAGE })`. */
  haproxyConfig: string;
  constraints: string[];
  /** HTML served with a 503 while no task is healthy. */
  maintenancePage?: string;
}) {
  return {
    name: i.name,
    mode: { global: true },
    labels: [{ label: "safe-deploy.role", value: "proxy" }],
    taskSpec: {
      containerSpec: {
        image: i.image,
        // A service has no file uploads: the config comes in through the environment.
        commands: [
          "/bin/sh",
          "-c",
          `printf "%s" "$MAINTENANCE_PAGE" > ${SWARM_PROXY_PAGE} && ` +
            'printf "%s\\n" "$HAPROXY_CFG" > /tmp/haproxy.cfg && exec haproxy -W -db -f /tmp/haproxy.cfg',
        ],
        env: { HAPROXY_CFG: i.haproxyConfig, MAINTENANCE_PAGE: i.maintenancePage ?? MAINTENANCE_PAGE },
        labels: [{ label: "safe-deploy.role", value: "proxy" }],
      },
      networksAdvanceds: [{ name: i.network }],
      placement: { constraints: i.constraints },
      restartPolicy: { condition: "any", delay: "2s" },
    },
    updateConfig: {
      parallelism: 1,
      order: "stop-first",
      failureAction: "rollback",
      monitor: "5s",
      maxFailureRatio: "0",
      delay: "0s",
    },
    endpointSpec: {
      mode: "vip",
      ports: [{ targetPort: i.hostPort, publishedPort: i.hostPort, publishMode: "host", protocol: "tcp" }],
    },
  };
}
