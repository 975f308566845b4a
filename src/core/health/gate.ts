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
 * Runs `probe` under `policy` until it passes or gives up; a failure's message names the target and
 * summarises every attempt (time, status or error).
 */
export async function pollUntilHealthy(
  target: string,
  probe: Probe,
  policy: PollPolicy,
  hooks: GateHooks = {},
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
    if (d.action === "fail") {
      const redirected = attempts.some((x) => /; redirects to /.test(x.detail ?? ""));
      return {
        ok: false,
        attempts,
        message: redact(
          `health check of ${target} failed: ${d.reason}.\n${summarizeAttempts(attempts)}\n` +
            (redirected
              ? "The health URL answers with a redirect, which the check does not follow: poll the URL it redirects to " +
                "(`health.url` or `health.path` in the stack config, --url on the CLI), or accept that status " +
                "(`health.expectStatus`, --expect-status)."
              : "Check the app's logs (docker logs) and its health endpoint, or raise retries/delaySeconds/timeoutSeconds " +
                "(`health` in the stack config, --retries/--delay/--timeout on the CLI)."),
        ),
      };
    }
    timeoutMs = d.timeoutMs;
    await new Promise((res) => setTimeout(res, d.waitMs));
  }
}
