/** The inputs that decide whether a gate must run again (everything but its outputs). */
export const GATE_INPUT_KEYS = [
  "url",
  "expectStatus",
  "retries",
  "delaySeconds",
  "timeoutSeconds",
  "triggers",
  "backoff",
  "maxDelaySeconds",
  "deadlineSeconds",
  "successThreshold",
  "json",
  "ca",
  "tcp",
  "postgresUrl",
  "container",
  "service",
] as const;

function stable(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(stable).join(",")}]`;
  if (v && typeof v === "object") {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o)
      .filter((k) => o[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${stable(o[k])}`)
      .join(",")}}`;
  }
  return JSON.stringify(v ?? null);
}

/**
 * Pure diff: any change of an input (above all `triggers`, the container and image ids) means an
 * update, which re-runs the gate in place; nothing needs a replace because a gate owns no real thing.
 */
export function diffHealthGate(
  olds: Record<string, unknown>,
  news: Record<string, unknown>,
): { changes: boolean; replaces: string[]; deleteBeforeReplace: boolean } {
  const changed = GATE_INPUT_KEYS.filter((k) => stable(olds[k]) !== stable(news[k]));
  return { changes: changed.length > 0, replaces: [], deleteBeforeReplace: false };
}
