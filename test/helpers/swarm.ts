// STANDS IN FOR THE PROVIDER: `pulumi up` cannot run here, so these helpers hand the exact service spec
// the program declares (src/core/swarm/spec.ts, in @pulumi/docker `Service` argument shape) to the real
// Docker Engine API, as pulumi-docker's service resource does (ServiceCreate / ServiceUpdate with the
// whole spec; it also queries the registry on create, which a local image on one node does not need).
import { execFile } from "node:child_process";
import { request } from "node:http";
import { promisify } from "node:util";

const run = promisify(execFile);

/** Makes this Docker engine a single-node swarm manager (idempotent; the swarm is left up). */
export async function ensureSwarm(): Promise<void> {
  const state = (await run("docker", ["info", "--format", "{{.Swarm.LocalNodeState}}"])).stdout.trim();
  if (state === "active") return;
  if (state !== "inactive")
    throw new Error(`docker swarm is "${state}": fix it by hand (docker swarm leave --force)`);
  try {
    await run("docker", ["swarm", "init", "--advertise-addr", "127.0.0.1"]);
  } catch (e) {
    // Another test file may have initialised it meanwhile.
    const again = (await run("docker", ["info", "--format", "{{.Swarm.LocalNodeState}}"])).stdout.trim();
    if (again !== "active") throw e;
  }
}

/** "15s" / "500ms" / "2m" -> nanoseconds, as the provider converts its duration strings. */
export function nanos(d: string | undefined): number | undefined {
  if (d === undefined) return undefined;
  const m = /^(\d+(?:\.\d+)?)(ns|us|ms|s|m|h)$/.exec(d);
  if (!m) throw new Error(`not a duration: ${d}`);
  const unit = { ns: 1, us: 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 }[m[2] as "s"];
  return Math.round(Number(m[1]) * unit);
}

const labels = (l?: { label: string; value: string }[]) =>
  Object.fromEntries((l ?? []).map((x) => [x.label, x.value]));

interface UpdateCfg {
  parallelism?: number;
  order?: string;
  failureAction?: string;
  monitor?: string;
  maxFailureRatio?: string;
  delay?: string;
}
type Labels = { label: string; value: string }[];

/** The `@pulumi/docker` Service arguments the program's specs use (plain values). */
export interface ServiceArgsShape {
  name: string;
  labels?: Labels;
  mode: { replicated?: { replicas: number }; global?: boolean };
  taskSpec: {
    containerSpec: {
      image: string;
      commands?: string[];
      env?: Record<string, string>;
      labels?: Labels;
      healthcheck?: {
        tests: string[];
        interval?: string;
        timeout?: string;
        retries?: number;
        startPeriod?: string;
      };
      stopGracePeriod?: string;
    };
    networksAdvanceds: { name: string; aliases?: string[] }[];
    placement?: { constraints?: string[]; maxReplicas?: number };
    resources?: { limits?: { nanoCpus?: number; memoryBytes?: number } };
    restartPolicy?: { condition?: string; delay?: string; window?: string };
  };
  updateConfig?: UpdateCfg;
  rollbackConfig?: UpdateCfg;
  endpointSpec: {
    mode?: string;
    ports: { targetPort: number; publishedPort?: number; publishMode?: string; protocol?: string }[];
  };
}
type AnySpec = ServiceArgsShape;

function updateCfg(u?: UpdateCfg) {
  if (!u) return undefined;
  return {
    Parallelism: u.parallelism,
    Order: u.order,
    FailureAction: u.failureAction,
    Monitor: nanos(u.monitor),
    MaxFailureRatio: u.maxFailureRatio === undefined ? undefined : Number(u.maxFailureRatio),
    Delay: nanos(u.delay),
  };
}

/** Pure: the program's spec (+ env) as the Docker Engine API's ServiceSpec. */
export function engineSpec(spec: AnySpec, env: Record<string, string> = {}) {
  const t = spec.taskSpec;
  const c = t.containerSpec;
  const hc = c.healthcheck;
  return {
    Name: spec.name,
    Labels: labels(spec.labels),
    TaskTemplate: {
      ContainerSpec: {
        Image: c.image,
        Command: c.commands,
        Env: Object.entries({ ...(c.env ?? {}), ...env }).map(([k, v]) => `${k}=${v}`),
        Labels: labels(c.labels),
        Healthcheck: hc && {
          Test: hc.tests,
          Interval: nanos(hc.interval),
          Timeout: nanos(hc.timeout),
          Retries: hc.retries,
          StartPeriod: nanos(hc.startPeriod),
        },
        StopGracePeriod: nanos(c.stopGracePeriod),
      },
      Networks: t.networksAdvanceds.map((n) => ({ Target: n.name, Aliases: n.aliases })),
      Placement: {
        Constraints: t.placement?.constraints,
        MaxReplicas: t.placement?.maxReplicas,
      },
      Resources: t.resources?.limits && {
        Limits: { NanoCPUs: t.resources.limits.nanoCpus, MemoryBytes: t.resources.limits.memoryBytes },
      },
      RestartPolicy: t.restartPolicy && {
        Condition: t.restartPolicy.condition,
        Delay: nanos(t.restartPolicy.delay),
        Window: nanos(t.restartPolicy.window),
      },
    },
    Mode: spec.mode.global ? { Global: {} } : { Replicated: { Replicas: spec.mode.replicated?.replicas } },
    UpdateConfig: updateCfg(spec.updateConfig),
    RollbackConfig: updateCfg(spec.rollbackConfig),
    EndpointSpec: {
      Mode: spec.endpointSpec.mode,
      Ports: spec.endpointSpec.ports.map((p) => ({
        Protocol: p.protocol,
        TargetPort: p.targetPort,
        PublishedPort: p.publishedPort,
        PublishMode: p.publishMode,
      })),
    },
  };
}

function api(method: string, path: string, body?: unknown): Promise<{ status: number; json: any }> {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : JSON.stringify(body);
    const req = request(
      {
        socketPath: "/var/run/docker.sock",
        method,
        path,
        headers: data ? { "content-type": "application/json" } : {},
      },
      (res) => {
        let text = "";
        res.on("data", (d) => (text += d));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, json: text ? JSON.parse(text) : null }));
      },
    );
    req.on("error", reject);
    req.end(data);
  });
}

/** Creates the service, or updates it to exactly this spec (what a `pulumi up` of the spec does). */
export async function applyService(spec: AnySpec, env: Record<string, string> = {}): Promise<string> {
  const body = engineSpec(spec, env);
  const cur = await api("GET", `/services/${encodeURIComponent(spec.name)}`);
  if (cur.status === 404) {
    const r = await api("POST", "/services/create", body);
    if (r.status !== 201) throw new Error(`service create failed (${r.status}): ${JSON.stringify(r.json)}`);
    return r.json.ID as string;
  }
  const r = await api("POST", `/services/${cur.json.ID}/update?version=${cur.json.Version.Index}`, body);
  if (r.status !== 200) throw new Error(`service update failed (${r.status}): ${JSON.stringify(r.json)}`);
  return cur.json.ID as string;
}

/** Removes services (and waits until their tasks are gone, so their networks can go too). */
export async function removeServices(names: string[]): Promise<void> {
  for (const n of names) await run("docker", ["service", "rm", n]).catch(() => undefined);
  for (let i = 0; i < 60; i++) {
    const { stdout } = await run("docker", [
      "ps",
      "-aq",
      ...names.flatMap((n) => ["--filter", `label=com.docker.swarm.service.name=${n}`]),
    ]);
    if (!stdout.trim()) return;
    await new Promise((r) => setTimeout(r, 500));
  }
}

/** An attachable overlay network for a test (the program declares the same driver for `app.target: swarm`). */
export async function createOverlay(name: string): Promise<string> {
  await run("docker", [
    "network",
    "create",
    "--driver",
    "overlay",
    "--attachable",
    "--label",
    "safe-deploy-test=swarm",
    name,
  ]);
  return name;
}

/** The current UpdateStatus.State of a service ("" before any update). */
export async function updateState(name: string): Promise<string> {
  const { stdout } = await run("docker", [
    "service",
    "inspect",
    "--format",
    "{{if .UpdateStatus}}{{.UpdateStatus.State}}{{end}}",
    name,
  ]);
  return stdout.trim();
}
