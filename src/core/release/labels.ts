// The labels every container of a stack carries (set by src/components), so the CLI finds a stack's
// containers on the Docker host itself: the stack's outputs are those of the last *successful* update,
// and after a failed or killed one they may name a container that was replaced (issue 14, items 4 and 5).

/** Label holding the stack name. */
export const STACK_LABEL = "safe-deploy.stack";
/** Label holding the container's role. */
export const ROLE_LABEL = "safe-deploy.role";

/** What a container is for. */
export type ContainerRole = "database" | "app" | "proxy" | "redis";

/** The labels of a stack's container with `role`, as the docker provider takes them. Pure. */
export function containerLabels(stack: string, role: ContainerRole): Array<{ label: string; value: string }> {
  return [
    { label: STACK_LABEL, value: stack },
    { label: ROLE_LABEL, value: role },
  ];
}

/** A container the Docker host reports for a stack. */
export interface StackContainer {
  /** Full id. */
  id: string;
  name: string;
  role: string;
  /** running, exited, created, restarting, ... */
  state: string;
  /** `docker ps` CreatedAt, e.g. `2026-12-06 04:10:11 +0000 UTC`. */
  created: string;
}

/**
 * Role -> container name: per role the running container created last (a blue-green deploy runs two app
 * containers for a moment; an exited one left by a failed update never wins over a running one). Pure.
 */
export function containersByRole(list: readonly StackContainer[]): Record<string, string> {
  const rank = (c: StackContainer) => `${c.state === "running" ? 1 : 0}|${c.created}`;
  const best = new Map<string, StackContainer>();
  for (const c of list) {
    if (!c.role) continue;
    const seen = best.get(c.role);
    if (!seen || rank(c) > rank(seen)) best.set(c.role, c);
  }
  return Object.fromEntries([...best].map(([role, c]) => [role, c.name]));
}

/**
 * Containers with the stack's labels that the state does not know (by id): left by an update killed
 * mid-way, whose pending create `stack import` or the next `up` dropped. Pure.
 */
export function orphanContainers(labelled: readonly StackContainer[], state: unknown): StackContainer[] {
  const known = new Set<string>();
  const resources = (state as { deployment?: { resources?: Array<{ type?: string; id?: string }> } })
    ?.deployment?.resources;
  for (const r of resources ?? []) if (r.type === "docker:index/container:Container" && r.id) known.add(r.id);
  return labelled.filter((c) => !known.has(c.id));
}
