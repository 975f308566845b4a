/** How a gate polls: attempts, waits between them, and the overall deadline. */
export interface PollPolicy {
  /** Total attempts before giving up (>= 1). The users' scripts: 3; the soak: 15. */
  retries: number;
  /** Wait before the second attempt, in ms. */
  delayMs: number;
  /** Per-attempt timeout, in ms. */
  timeoutMs: number;
  /** Multiplier applied to the wait after each failed attempt (1 = fixed delay). */
  backoff?: number;
  /** Cap on one wait when backing off, in ms. */
  maxDelayMs?: number;
  /** Overall deadline from the first attempt, in ms; no attempt starts that could not finish before it. */
  deadlineMs?: number;
  /** Consecutive passing attempts needed (a flapping app must hold steady), default 1. */
  successThreshold?: number;
}

/** The wait before attempt `n + 1` (0-based `n`): delay × backoff^n, capped by `maxDelayMs`. */
export function waitBefore(policy: PollPolicy, n: number): number {
  const factor = Math.pow(policy.backoff ?? 1, Math.max(0, n));
  const wait = policy.delayMs * factor;
  return Math.round(policy.maxDelayMs !== undefined ? Math.min(wait, policy.maxDelayMs) : wait);
}

/** The waits between consecutive attempts when every attempt fails (length retries - 1). */
export function retrySchedule(policy: PollPolicy): number[] {
  return Array.from({ length: Math.max(0, policy.retries - 1) }, (_, i) => waitBefore(policy, i));
}

/** Upper bound of the time a never-healthy target takes to fail the gate, in ms. */
export function worstCaseMs(policy: PollPolicy): number {
  const total = policy.retries * policy.timeoutMs + retrySchedule(policy).reduce((a, b) => a + b, 0);
  return policy.deadlineMs !== undefined ? Math.min(total, policy.deadlineMs) : total;
}

/** What the gate does after an attempt. */
export type Decision =
  | { action: "pass" }
  | { action: "retry"; waitMs: number; timeoutMs: number }
  | { action: "fail"; reason: string };

/**
 * Pure decision after attempt number `attempt` (1-based) given whether it passed, how many passes in a
 * row there now are, and the time elapsed since the first attempt began.
 */
export function decide(
  policy: PollPolicy,
  s: { attempt: number; passed: boolean; streak: number; elapsedMs: number },
): Decision {
  const need = policy.successThreshold ?? 1;
  if (s.passed && s.streak >= need) return { action: "pass" };
  // Passing streaks continue at the plain delay; backoff only stretches waits after failures.
  const left = policy.retries - s.attempt;
  if (need > 1 && left < need - (s.passed ? s.streak : 0)) {
    // A soak needs `need` passes in a row: once that is out of reach, stop instead of polling on.
    return {
      action: "fail",
      reason: `${need} consecutive healthy answers are out of reach with ${left} attempt(s) left (retries ${policy.retries})`,
    };
  }
  if (s.attempt >= policy.retries) {
    return {
      action: "fail",
      reason: `no healthy result after ${s.attempt} attempt(s) (retries ${policy.retries})`,
    };
  }
  const waitMs = s.passed ? policy.delayMs : waitBefore(policy, s.attempt - 1);
  let timeoutMs = policy.timeoutMs;
  if (policy.deadlineMs !== undefined) {
    const left = policy.deadlineMs - s.elapsedMs - waitMs;
    if (left <= 0) {
      return {
        action: "fail",
        reason: `overall deadline of ${policy.deadlineMs} ms reached after ${s.attempt} attempt(s)`,
      };
    }
    timeoutMs = Math.min(timeoutMs, left);
  }
  return { action: "retry", waitMs, timeoutMs };
}
