import { pollUntilHealthy, type GateResult } from "./gate";
import { httpProbe, type JsonAssertion } from "./http";
import type { PollPolicy } from "./schedule";

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

/** Runs the gate a spec describes; throws CheckFailedError with every attempt summarised. */
export async function runGate(spec: GateSpec): Promise<GateResult> {
  const check = { url: spec.url, expectStatus: spec.expectStatus, json: spec.json };
  return pollUntilHealthy(spec.url, (t) => httpProbe(check, t), policyOf(spec));
}
