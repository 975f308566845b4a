import type { ProbeResult } from "./types";

/** The container check: state through Docker, logs scanned during the check window. */
export interface ContainerCheck {
  /** Container name or id. */
  name: string;
  /** e.g. unix:///var/run/docker.sock or ssh://user@host; default: $DOCKER_HOST or the local socket. */
  dockerHost?: string;
  /** Require Docker health `healthy` when the container has a healthcheck (default true). */
  requireHealthy?: boolean;
  /** Regular expressions (case-insensitive) that fail the check when a log line matches. */
  logPatterns?: string[];
}

/** The parts of `docker inspect` the check reads. */
export interface ContainerState {
  Status?: string;
  Running?: boolean;
  Restarting?: boolean;
  ExitCode?: number;
  /** Why Docker could not start it (e.g. `exec: "x": executable file not found`). */
  Error?: string;
  Health?: { Status?: string };
  RestartCount?: number;
}

/** Default patterns of a critical log line (the users' scripts grep for these). */
export const DEFAULT_LOG_PATTERNS = [
  "\\bFATAL\\b",
  "\\bpanic\\b",
  "Unhandled(Promise)?Rejection",
  "\\bCRITICAL\\b",
];

/** Pure verdict on one inspect: running, healthy if it has a healthcheck, restarts not rising. */
export function containerVerdict(
  state: ContainerState,
  restartBaseline: number,
  requireHealthy = true,
): ProbeResult {
  const restarts = state.RestartCount ?? 0;
  if (restarts > restartBaseline) {
    return {
      ok: false,
      detail: `container restarted ${restarts - restartBaseline} time(s) during the check (crash loop?)`,
    };
  }
  if (state.Restarting) return { ok: false, detail: "container is restarting" };
  if (!state.Running) {
    return {
      ok: false,
      detail: `container is ${state.Status ?? "not running"} (exit code ${state.ExitCode ?? "?"})${state.Error ? `: ${state.Error.slice(0, 300)}` : ""}`,
    };
  }
  const health = state.Health?.Status;
  if (requireHealthy && health !== undefined && health !== "healthy") {
    return { ok: false, detail: `container health is ${health}` };
  }
  return { ok: true, detail: health ? `running, ${health}` : "running" };
}

/** Pure scan: the first log line matching a pattern (case-insensitive), trimmed, or null. */
export function findCriticalLine(logs: string, patterns: string[]): string | null {
  const res = patterns.map((p) => new RegExp(p, "i"));
  for (const line of logs.split(/\r?\n/)) {
    if (res.some((r) => r.test(line))) return line.trim().slice(0, 200);
  }
  return null;
}

/** Runs the docker CLI against `dockerHost`; resolves with its exit code and output, never rejects. */
export function docker(
  args: string[],
  dockerHost: string | undefined,
  timeoutMs: number,
): Promise<{ code: number; out: string; err: string }> {
  const { execFile } = require("node:child_process");
  const env = dockerHost ? { ...process.env, DOCKER_HOST: dockerHost } : process.env;
  return new Promise((resolve) => {
    execFile(
      "docker",
      args,
      { env, timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 },
      (e: (Error & { code?: number | string }) | null, out: string, err: string) =>
        resolve({
          code: e ? (typeof e.code === "number" ? e.code : 1) : 0,
          out: String(out),
          err: String(err || e?.message || ""),
        }),
    );
  });
}

/**
 * Returns a probe bound to one check window: the first attempt records the restart count and the
 * window start; later attempts fail if the count rises or a log line since the start is critical.
 */
export function containerProbe(check: ContainerCheck): (timeoutMs: number) => Promise<ProbeResult> {
  let baseline: number | undefined;
  let since: string | undefined;
  return async (timeoutMs) => {
    const t = Math.max(timeoutMs, 2000);
    since ??= new Date(Date.now() - 1000).toISOString();
    const r = await docker(
      ["inspect", "--format", "{{json .State}}|{{.RestartCount}}", check.name],
      check.dockerHost,
      t,
    );
    if (r.code !== 0) {
      const why = /No such (object|container)/i.test(r.err)
        ? "no such container"
        : r.err.trim().split("\n")[0];
      return { ok: false, detail: `container ${check.name}: ${why}` };
    }
    // The state's JSON may hold a `|` (an Error quoting the command): the count is after the last one.
    const out = r.out.trim();
    const bar = out.lastIndexOf("|");
    let parsed: ContainerState | null;
    try {
      parsed = JSON.parse(out.slice(0, bar)) as ContainerState | null;
    } catch {
      return {
        ok: false,
        detail: `container ${check.name}: unreadable docker inspect output: ${out.slice(0, 200)}`,
      };
    }
    const state = { ...parsed, RestartCount: Number(out.slice(bar + 1)) || 0 };
    baseline ??= state.RestartCount;
    const v = containerVerdict(state, baseline, check.requireHealthy ?? true);
    if (!v.ok) return { ok: false, detail: `container ${check.name}: ${v.detail}` };
    const patterns = check.logPatterns ?? DEFAULT_LOG_PATTERNS;
    if (patterns.length > 0) {
      const logs = await docker(["logs", "--since", since, check.name], check.dockerHost, t);
      const line = findCriticalLine(`${logs.out}\n${logs.err}`, patterns);
      if (line !== null) return { ok: false, detail: `container ${check.name}: critical log line: ${line}` };
    }
    return { ok: true, detail: `container ${check.name}: ${v.detail}` };
  };
}
