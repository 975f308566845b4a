/** How a new release's containers replace the old ones. */
export type RolloutStrategy = "recreate" | "blue-green";

/** The container settings a strategy implies, for the App component to apply. */
export interface RolloutPlan {
  strategy: RolloutStrategy;
  /** Delete the old container before creating the new one (needed with a fixed name/host port). */
  deleteBeforeReplace: boolean;
  /** The container keeps one fixed name across releases. */
  fixedName: boolean;
  /** The app container publishes a host port itself (blue-green: only the proxy does). */
  publishHostPort: boolean;
  /** Pulumi waits for Docker health `healthy` before moving on (`wait: true`). */
  waitHealthy: boolean;
  /** A reverse proxy routes to healthy containers. */
  proxy: boolean;
  /** What users lose during the rollout, said plainly; null when nothing. */
  downtime: string | null;
}

/**
 * Pure: the plan of a strategy. Blue-green needs a Docker healthcheck, because both Pulumi's `wait`
 * and the proxy decide on health; without one the error names the config key to set.
 */
export function rolloutPlan(strategy: RolloutStrategy, opts: { hasHealthcheck: boolean }): RolloutPlan {
  if (strategy === "recreate") {
    return {
      strategy,
      deleteBeforeReplace: true,
      fixedName: true,
      publishHostPort: true,
      waitHealthy: opts.hasHealthcheck,
      proxy: false,
      downtime:
        "recreate stops the old container before the new one starts: requests fail until the new one is healthy (seconds)",
    };
  }
  if (strategy === "blue-green") {
    if (!opts.hasHealthcheck) {
      throw new Error(
        "`rollout: blue-green` needs a Docker healthcheck on the app (`app.healthcheck` in the stack config): the proxy and the cutover wait on it",
      );
    }
    return {
      strategy,
      deleteBeforeReplace: false,
      fixedName: false,
      publishHostPort: false,
      waitHealthy: true,
      proxy: true,
      downtime: null,
    };
  }
  throw new Error(`\`rollout\` must be "recreate" or "blue-green", got ${JSON.stringify(strategy)}`);
}
