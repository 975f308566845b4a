import { redact } from "../log/redact";
import { decide, type PollPolicy } from "./schedule";
import type { Attempt, Probe } from "./types";

/**
 * The result of a gate. A failure is returned, not thrown: classes copied into a dynamic provider
 * lose `extends Error`, so each caller throws its own error (CheckFailedError in the CLI, Error in
 * the provider) with `message`.
 */
export type GateResult =
  { ok: true; checkedAt: string; attempts: Attempt[] } | { ok: false; message: string; attempts: Attempt[] };

/** What to call back as the gate runs (progress lines for the CLI). */
export interface GateHooks {
  onAttempt?: (a: Attempt, n: number) => void;
}

/** Pure: one line per attempt, e.g. `#2 2026-01-01T12:00:05.120Z FAILED status 503, expected 200 (12 ms)`. */
export function summarizeAttempts(attempts: Attempt[]): string {
  return attempts
    .map((a, i) => {
      const parts: string[] = [];
      if (a.status !== undefined && !a.detail?.startsWith(`status ${a.status}`))
        parts.push(`status ${a.status}`);
      if (a.detail) parts.push(a.detail);
      if (parts.length === 0) parts.push(a.ok ? "ok" : "no response");
      return `  #${i + 1} ${a.at} ${a.ok ? "ok" : "FAILED"} ${parts.join(", ")} (${a.ms} ms)`;
    })
    .join("\n");
}

/**
 * Pure: what to do about a failed gate, from what its attempts saw. Raising retries never helps a
 * certificate this machine refuses or a redirect the check does not follow, so those get their own fix.
 */
export function gateAdvice(attempts: Attempt[], caGiven = false): string {
  const seen = (re: RegExp) => attempts.some((a) => re.test(a.detail ?? ""));
  if (seen(/SELF_SIGNED|UNABLE_TO_(GET_ISSUER|VERIFY)|CERT_UNTRUSTED|CERT_SIGNATURE_FAILURE/)) {
    return caGiven
      ? "The server's certificate is not signed by the CA given for this check: give the CA that issued it, or the " +
          "server's own self-signed certificate."
      : "The server's certificate is not trusted here (self-signed or a private CA): pass its CA (or the self-signed " +
          "certificate) with `--ca FILE` on the CLI; for `safe-deploy up` and `pulumi up`, set NODE_EXTRA_CA_CERTS=FILE " +
          "in their environment.";
  }
  if (seen(/CERT_HAS_EXPIRED|CERT_NOT_YET_VALID/)) {
    return "The server's certificate has expired (or is not valid yet): renew it, or check this machine's clock.";
  }
  if (seen(/ALTNAME_INVALID/)) {
    return "The server's certificate is for another name: poll the name it was issued for (`health.url`, --url).";
  }
  if (seen(/; redirects to /)) {
    return (
      "The health URL answers with a redirect, which the check does not follow: poll the URL it redirects to " +
      "(`health.url` or `health.path` in the stack config, --url on the CLI), or accept that status " +
      "(`health.expectStatus`, --expect-status)."
    );
  }
  return (
    "Check the app's logs (docker logs) and its health endpoint, or raise retries/delaySeconds/timeoutSeconds " +
    "(`health` in the stack config, --retries/--delay/--timeout on the CLI)."
  );
}

/**
 * Runs `probe` under `policy` until it passes or gives up; a failure's message names the target and
 * summarises every attempt (time, status or error).
 */
export async function pollUntilHealthy(
  target: string,
  probe: Probe,
  policy: PollPolicy,
  hooks: GateHooks = {},
  caGiven = false,
): Promise<GateResult> {
  const attempts: Attempt[] = [];
  const start = Date.now();
  let timeoutMs = policy.timeoutMs;
  let streak = 0;
  for (;;) {
    const began = Date.now();
    const r = await probe(timeoutMs);
    const a: Attempt = { ...r, at: new Date(began).toISOString(), ms: Date.now() - began };
    attempts.push(a);
    hooks.onAttempt?.(a, attempts.length);
    streak = r.ok ? streak + 1 : 0;
    const d = decide(policy, {
      attempt: attempts.length,
      passed: r.ok,
      streak,
      elapsedMs: Date.now() - start,
    });
    if (d.action === "pass") return { ok: true, checkedAt: new Date().toISOString(), attempts };
    // Retrying a final failure only delays the rollback (issue 18: Swarm already rolled back).
    if (d.action === "fail" || (!r.ok && r.final)) {
      return {
        ok: false,
        attempts,
        message: redact(
          `health check of ${target} failed: ${d.action === "fail" ? d.reason : "a check reported a failure no retry can fix"}.\n${summarizeAttempts(attempts)}\n` +
            gateAdvice(attempts, caGiven),
        ),
      };
    }
    timeoutMs = d.timeoutMs;
    await new Promise((res) => setTimeout(res, d.waitMs));
  }
}
