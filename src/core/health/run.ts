import { containerProbe, type ContainerCheck } from "./container";
import { pollUntilHealthy, type GateHooks, type GateResult } from "./gate";
import { httpProbe, type JsonAssertion } from "./http";
import { postgresProbe } from "./postgres";
import type { PollPolicy } from "./schedule";
import { tcpProbe } from "./tcp";
import { serviceProbe, type ServiceCheck } from "../swarm/check";
import type { Probe, ProbeResult } from "./types";

/** A gate as plain values: what the HealthGate provider and `safe-deploy health` pass in. */
export interface GateSpec {
  url: string;
  expectStatus?: number[];
  retries?: number;
  delaySeconds?: number;
  timeoutSeconds?: number;
  backoff?: number;
  maxDelaySeconds?: number;
  deadlineSeconds?: number;
  successThreshold?: number;
  json?: JsonAssertion;
  /** PEM CA certificate(s) to trust for an https:// URL. */
  ca?: string;
  /** Ports that must accept connections. */
  tcp?: { host: string; port: number }[];
  /** A database the release must reach: `SELECT 1` (a secret URL). */
  postgresUrl?: string;
  /** The container to watch: running, Docker-healthy, no restarts, no critical log lines. */
  container?: ContainerCheck;
  /** A Swarm service: not rolled back by Swarm, every running task of this release (issue 18). */
  service?: ServiceCheck;
}

/** The policy a spec means, with the users' defaults: 3 attempts, 10 s apart, 5 s each. */
export function policyOf(spec: Omit<GateSpec, "url">): PollPolicy {
  return {
    retries: spec.retries ?? 3,
    delayMs: (spec.delaySeconds ?? 10) * 1000,
    timeoutMs: (spec.timeoutSeconds ?? 5) * 1000,
    backoff: spec.backoff,
    maxDelayMs: spec.maxDelaySeconds !== undefined ? spec.maxDelaySeconds * 1000 : undefined,
    deadlineMs: spec.deadlineSeconds !== undefined ? spec.deadlineSeconds * 1000 : undefined,
    successThreshold: spec.successThreshold,
  };
}

/** Pure: one attempt's result from every check's result (the first is HTTP, whose status it keeps). */
export function combineResults(results: ProbeResult[]): ProbeResult {
  const failed = results.filter((r) => !r.ok);
  const status = results[0]?.status;
  if (failed.length === 0) {
    const notes = results.map((r) => r.detail).filter((d): d is string => !!d);
    return notes.length ? { ok: true, status, detail: notes.join("; ") } : { ok: true, status };
  }
  const detail = failed.map((r) => r.detail ?? "failed").join("; ");
  return failed.some((r) => r.final)
    ? { ok: false, status, detail, final: true }
    : { ok: false, status, detail };
}

/** One probe running every check of the spec in parallel; an attempt passes only if all pass. */
export function probeOf(spec: GateSpec): Probe {
  const probes: Probe[] = [
    (t) => httpProbe({ url: spec.url, expectStatus: spec.expectStatus, json: spec.json, ca: spec.ca }, t),
  ];
  for (const target of spec.tcp ?? []) probes.push((t) => tcpProbe(target, t));
  const pg = spec.postgresUrl;
  if (pg) probes.push((t) => postgresProbe(pg, t));
  if (spec.container) probes.push(containerProbe(spec.container));
  const svc = spec.service;
  if (svc) probes.push((t) => serviceProbe(svc, t));
  return async (t) => combineResults(await Promise.all(probes.map((p) => p(t))));
}

/** Runs the gate a spec describes; a failure carries one message summarising every attempt. */
export async function runGate(spec: GateSpec, hooks: GateHooks = {}): Promise<GateResult> {
  return pollUntilHealthy(spec.url, probeOf(spec), policyOf(spec), hooks, !!spec.ca);
}
