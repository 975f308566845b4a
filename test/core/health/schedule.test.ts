import { test } from "node:test";
import assert from "node:assert/strict";
import { decide, retrySchedule, worstCaseMs, type PollPolicy } from "../../../src/core/health/schedule";
import { combineResults, policyOf } from "../../../src/core/health/run";
import { gateAdvice, summarizeAttempts } from "../../../src/core/health/gate";

const base: PollPolicy = { retries: 3, delayMs: 10_000, timeoutMs: 5_000 };

test("retry schedules: fixed, backoff, capped", () => {
  const cases: [PollPolicy, number[]][] = [
    [base, [10_000, 10_000]],
    [{ ...base, retries: 1 }, []],
    [{ ...base, retries: 5, delayMs: 1000, backoff: 2 }, [1000, 2000, 4000, 8000]],
    [{ ...base, retries: 5, delayMs: 1000, backoff: 2, maxDelayMs: 3000 }, [1000, 2000, 3000, 3000]],
    [{ ...base, retries: 4, delayMs: 0, backoff: 3 }, [0, 0, 0]],
  ];
  for (const [policy, want] of cases) assert.deepEqual(retrySchedule(policy), want, JSON.stringify(policy));
});

test("worst case bounds the time to give up", () => {
  assert.equal(worstCaseMs(base), 3 * 5_000 + 2 * 10_000);
  assert.equal(worstCaseMs({ ...base, deadlineMs: 12_000 }), 12_000);
});

test("decisions after each attempt", () => {
  const cases: [string, PollPolicy, Parameters<typeof decide>[1], ReturnType<typeof decide>][] = [
    ["first pass", base, { attempt: 1, passed: true, streak: 1, elapsedMs: 10 }, { action: "pass" }],
    [
      "failure with attempts left",
      base,
      { attempt: 1, passed: false, streak: 0, elapsedMs: 10 },
      { action: "retry", waitMs: 10_000, timeoutMs: 5_000 },
    ],
    [
      "last attempt fails",
      base,
      { attempt: 3, passed: false, streak: 0, elapsedMs: 10 },
      { action: "fail", reason: "no healthy result after 3 attempt(s) (retries 3)" },
    ],
    [
      "pass not yet steady (threshold 2)",
      { ...base, successThreshold: 2 },
      { attempt: 1, passed: true, streak: 1, elapsedMs: 10 },
      { action: "retry", waitMs: 10_000, timeoutMs: 5_000 },
    ],
    [
      "steady after two passes",
      { ...base, successThreshold: 2 },
      { attempt: 3, passed: true, streak: 2, elapsedMs: 10 },
      { action: "pass" },
    ],
    [
      "backoff after the second failure",
      { ...base, backoff: 2 },
      { attempt: 2, passed: false, streak: 0, elapsedMs: 10 },
      { action: "retry", waitMs: 20_000, timeoutMs: 5_000 },
    ],
    [
      "deadline shortens the next attempt's timeout",
      { ...base, deadlineMs: 12_000 },
      { attempt: 1, passed: false, streak: 0, elapsedMs: 0 },
      { action: "retry", waitMs: 10_000, timeoutMs: 2_000 },
    ],
    [
      "deadline leaves no room",
      { ...base, deadlineMs: 12_000 },
      { attempt: 1, passed: false, streak: 0, elapsedMs: 3_000 },
      { action: "fail", reason: "overall deadline of 12000 ms reached after 1 attempt(s)" },
    ],
    [
      "soak: a failure when every remaining attempt must pass",
      { ...base, retries: 15, successThreshold: 15 },
      { attempt: 4, passed: false, streak: 0, elapsedMs: 10 },
      {
        action: "fail",
        reason: "15 consecutive healthy answers are out of reach with 11 attempt(s) left (retries 15)",
      },
    ],
    [
      "soak: still on track",
      { ...base, retries: 15, successThreshold: 15 },
      { attempt: 4, passed: true, streak: 4, elapsedMs: 10 },
      { action: "retry", waitMs: 10_000, timeoutMs: 5_000 },
    ],
    [
      "streak of 2 out of 5: one failure still leaves room",
      { ...base, retries: 5, successThreshold: 2 },
      { attempt: 3, passed: false, streak: 0, elapsedMs: 10 },
      { action: "retry", waitMs: 10_000, timeoutMs: 5_000 },
    ],
  ];
  for (const [name, policy, state, want] of cases) assert.deepEqual(decide(policy, state), want, name);
});

test("policyOf applies the users' defaults (3 attempts, 10 s apart, 5 s each)", () => {
  assert.deepEqual(policyOf({}), {
    retries: 3,
    delayMs: 10_000,
    timeoutMs: 5_000,
    backoff: undefined,
    maxDelayMs: undefined,
    deadlineMs: undefined,
    successThreshold: undefined,
  });
});

test("combining checks: all must pass; failures are listed; HTTP status kept", () => {
  assert.deepEqual(combineResults([{ ok: true, status: 200 }, { ok: true }]), { ok: true, status: 200 });
  assert.deepEqual(
    combineResults([
      { ok: true, status: 200 },
      { ok: false, detail: "tcp x ECONNREFUSED" },
      { ok: false, detail: "postgres: ECONNREFUSED" },
    ]),
    {
      ok: false,
      status: 200,
      detail: "tcp x ECONNREFUSED; postgres: ECONNREFUSED",
    },
  );
});

test("summary lines show time, status or error", () => {
  const s = summarizeAttempts([
    { ok: false, at: "2026-01-01T00:00:00.000Z", ms: 3, status: 503, detail: "status 503, expected 200" },
    { ok: false, at: "2026-01-01T00:00:10.000Z", ms: 1, detail: "ECONNREFUSED" },
    { ok: true, at: "2026-01-01T00:00:20.000Z", ms: 2, status: 200 },
  ]);
  assert.equal(
    s,
    [
      "  #1 2026-01-01T00:00:00.000Z FAILED status 503, expected 200 (3 ms)",
      "  #2 2026-01-01T00:00:10.000Z FAILED ECONNREFUSED (1 ms)",
      "  #3 2026-01-01T00:00:20.000Z ok status 200 (2 ms)",
    ].join("\n"),
  );
});

test("advice after a failed gate follows what the attempts saw", () => {
  const at = (detail: string) => [{ ok: false, detail, at: "2026-01-01T00:00:00.000Z", ms: 1 }];
  const cases: [string, boolean, RegExp][] = [
    ["ECONNREFUSED", false, /Check the app's logs .* raise retries/],
    ["DEPTH_ZERO_SELF_SIGNED_CERT", false, /not trusted here .*--ca FILE.*NODE_EXTRA_CA_CERTS=FILE/],
    ["UNABLE_TO_VERIFY_LEAF_SIGNATURE", true, /not signed by the CA given for this check/],
    ["CERT_HAS_EXPIRED", false, /has expired .*renew it/],
    ["ERR_TLS_CERT_ALTNAME_INVALID", false, /for another name/],
    [
      "status 301, expected 200; redirects to https://x/health",
      false,
      /redirect, which the check does not follow/,
    ],
  ];
  for (const [detail, caGiven, advice] of cases)
    assert.match(gateAdvice(at(detail), caGiven), advice, detail);
});
