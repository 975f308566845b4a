import { docker } from "../health/container";
import type { ProbeResult } from "../health/types";
import { RELEASE_LABEL } from "./spec";

/** The service check of the gate: Swarm's update state, and every running task of the new release. */
export interface ServiceCheck {
  /** Service name or id. */
  service: string;
  /** The release every running task must carry (label `safe-deploy.release`). */
  release: string;
  /** Tasks that must run. */
  replicas: number;
  /** e.g. unix:///var/run/docker.sock or ssh://user@host; default: $DOCKER_HOST or the local socket. */
  dockerHost?: string;
}

/** The parts of `docker service inspect` the check reads. */
export interface ServiceState {
  UpdateStatus?: { State?: string; Message?: string };
}

/** The parts of `docker inspect <task>` the check reads. */
export interface TaskState {
  ID: string;
  Slot?: number;
  NodeID?: string;
  DesiredState?: string;
  Status?: { State?: string; Err?: string; Message?: string };
  Spec?: { ContainerSpec?: { Labels?: Record<string, string> } };
}

/** Swarm's update states that mean the new release is not what runs. */
const FAILED_UPDATE: Record<string, string> = {
  rollback_completed: "Swarm rolled the update back",
  rollback_started: "Swarm is rolling the update back",
  rollback_paused: "Swarm's rollback of the update paused",
  paused: "Swarm paused the update",
};

/**
 * Pure verdict on one look at the service: Swarm did not roll the update back or pause it, and
 * `replicas` tasks are running, every one with the expected release label.
 */
export function serviceVerdict(
  check: Pick<ServiceCheck, "service" | "release" | "replicas">,
  service: ServiceState,
  tasks: TaskState[],
): ProbeResult {
  const u = service.UpdateStatus;
  const failed = u?.State ? FAILED_UPDATE[u.State] : undefined;
  if (failed) {
    return {
      ok: false,
      final: true,
      detail: `service ${check.service}: ${failed} (UpdateStatus ${u!.State}: ${u!.Message ?? "no message"}): a new task failed its Docker healthcheck or exited within \`app.swarm.monitorSeconds\`; the previous release still serves. See \`docker service ps ${check.service} --no-trunc\``,
    };
  }
  const wanted = tasks.filter((t) => t.DesiredState === "running");
  const bad = wanted.filter(
    (t) => t.Status?.State !== "running" || t.Spec?.ContainerSpec?.Labels?.[RELEASE_LABEL] !== check.release,
  );
  const good = wanted.length - bad.length;
  if (bad.length > 0 || good < check.replicas) {
    const why = bad
      .slice(0, 3)
      .map((t) => {
        const rel = t.Spec?.ContainerSpec?.Labels?.[RELEASE_LABEL];
        const state = t.Status?.State ?? "unknown";
        const err = t.Status?.Err ? `: ${t.Status.Err.slice(0, 200)}` : "";
        return `task ${t.Slot ?? t.ID.slice(0, 12)} ${state}${rel === check.release ? "" : " (older release)"}${err}`;
      })
      .join(", ");
    return {
      ok: false,
      detail: `service ${check.service}: ${good}/${check.replicas} tasks of this release running${why ? `; ${why}` : ""}`,
    };
  }
  return {
    ok: true,
    detail: `service ${check.service}: ${good}/${check.replicas} tasks of this release running`,
  };
}

/** Pure: one line of the task format `serviceProbe` asks Docker for. */
export function parseTaskLine(line: string): TaskState {
  const [ID, slot, DesiredState, State, release, ...errParts] = line.trim().split("|");
  const errJson = errParts.join("|");
  let Err: string | undefined;
  try {
    Err = errJson ? (JSON.parse(errJson) as string) || undefined : undefined;
  } catch {
    Err = errJson;
  }
  return {
    ID,
    Slot: Number(slot) || undefined,
    DesiredState,
    Status: { State, Err },
    Spec: {
      ContainerSpec: { Labels: release && release !== "<no value>" ? { [RELEASE_LABEL]: release } : {} },
    },
  };
}

/** Reads the service and its tasks through the Docker CLI (a manager node's), then judges them. */
export async function serviceProbe(check: ServiceCheck, timeoutMs: number): Promise<ProbeResult> {
  const t = Math.max(timeoutMs, 2000);
  const s = await docker(
    ["service", "inspect", "--format", "{{json .UpdateStatus}}", check.service],
    check.dockerHost,
    t,
  );
  if (s.code !== 0) {
    return { ok: false, detail: `service ${check.service}: ${s.err.trim().split("\n")[0]}` };
  }
  let service: ServiceState;
  try {
    // Only UpdateStatus leaves Docker: the service's spec holds the app's environment (secrets).
    service = { UpdateStatus: (JSON.parse(s.out) as ServiceState["UpdateStatus"]) ?? undefined };
  } catch {
    return { ok: false, detail: `service ${check.service}: unreadable docker service inspect output` };
  }
  const ps = await docker(
    ["service", "ps", "--quiet", "--no-trunc", "--filter", "desired-state=running", check.service],
    check.dockerHost,
    t,
  );
  if (ps.code !== 0)
    return { ok: false, detail: `service ${check.service}: ${ps.err.trim().split("\n")[0]}` };
  const ids = ps.out
    .split("\n")
    .map((l) => l.trim())
    .filter(Boolean);
  let tasks: TaskState[] = [];
  if (ids.length > 0) {
    // Only the fields the verdict reads: a task's full spec holds the app's environment (secrets).
    const fmt = `{{.ID}}|{{.Slot}}|{{.DesiredState}}|{{.Status.State}}|{{index .Spec.ContainerSpec.Labels "${RELEASE_LABEL}"}}|{{json .Status.Err}}`;
    const r = await docker(["inspect", "--type", "task", "--format", fmt, ...ids], check.dockerHost, t);
    if (r.code !== 0)
      return { ok: false, detail: `service ${check.service}: ${r.err.trim().split("\n")[0]}` };
    tasks = r.out
      .split("\n")
      .filter((l) => l.trim())
      .map(parseTaskLine);
  }
  return serviceVerdict(check, service, tasks);
}
