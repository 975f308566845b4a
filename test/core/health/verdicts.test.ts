// Issue 22: the gate's pure parts at their edges (schedule, decisions, summary, advice, JSON body,
// container verdict), and pollUntilHealthy driven by a scripted probe: quick enough for a mutation run.
import { test } from "node:test";
import assert from "node:assert/strict";
import { decide, waitBefore, worstCaseMs, type PollPolicy } from "../../../src/core/health/schedule";
import { combineResults, policyOf } from "../../../src/core/health/run";
import { gateAdvice, pollUntilHealthy, summarizeAttempts } from "../../../src/core/health/gate";
import { checkJsonBody, valueAtPath } from "../../../src/core/health/http";
import { containerVerdict, findCriticalLine, DEFAULT_LOG_PATTERNS } from "../../../src/core/health/container";
import type { Attempt, ProbeResult } from "../../../src/core/health/types";

const base: PollPolicy = { retries: 3, delayMs: 10_000, timeoutMs: 5_000 };

test("waitBefore: backoff defaults to 1, a negative n counts as 0, waits are rounded and capped", () => {
  assert.equal(waitBefore({ ...base, delayMs: 100 }, 5), 100);
  assert.equal(waitBefore({ ...base, delayMs: 100, backoff: 2 }, -3), 100);
  assert.equal(waitBefore({ ...base, delayMs: 100, backoff: 1.5 }, 1), 150);
  assert.equal(waitBefore({ ...base, delayMs: 3, backoff: 1.5 }, 1), 5); // 4.5 rounds up
  assert.equal(waitBefore({ ...base, delayMs: 1000, backoff: 3, maxDelayMs: 2500 }, 1), 2500);
  assert.equal(waitBefore({ ...base, delayMs: 1000, backoff: 3, maxDelayMs: 0 }, 0), 0);
});

test("worstCaseMs: attempts plus waits, or the deadline when it is shorter", () => {
  const p = { ...base, retries: 4, delayMs: 100, timeoutMs: 1000, backoff: 2 };
  assert.equal(worstCaseMs(p), 4 * 1000 + 100 + 200 + 400);
  assert.equal(worstCaseMs({ ...p, deadlineMs: 4700 }), 4700);
  assert.equal(worstCaseMs({ ...p, deadlineMs: 4699 }), 4699);
  assert.equal(worstCaseMs({ ...p, deadlineMs: 10_000 }), 4700);
});

test("decide at its edges: soak reach, passing streaks at the plain delay, deadline exactly used up", () => {
  const soak = { ...base, retries: 5, successThreshold: 3, backoff: 4 };
  // 2 passes in a row, 3 attempts left: the third pass is reachable; waits stay at the plain delay.
  assert.deepEqual(decide(soak, { attempt: 2, passed: true, streak: 2, elapsedMs: 0 }), {
    action: "retry",
    waitMs: 10_000,
    timeoutMs: 5_000,
  });
  // A failure at attempt 2 leaves 3 attempts: exactly enough for 3 passes.
  assert.deepEqual(decide(soak, { attempt: 2, passed: false, streak: 0, elapsedMs: 0 }), {
    action: "retry",
    waitMs: 40_000,
    timeoutMs: 5_000,
  });
  // At attempt 3 a failure leaves 2: out of reach.
  assert.deepEqual(decide(soak, { attempt: 3, passed: false, streak: 0, elapsedMs: 0 }), {
    action: "fail",
    reason: "3 consecutive healthy answers are out of reach with 2 attempt(s) left (retries 5)",
  });
  // 1 pass, 1 attempt left, 3 needed: 1 left < 2 still needed.
  assert.equal(decide(soak, { attempt: 4, passed: true, streak: 1, elapsedMs: 0 }).action, "fail");
  // 2 passes, 1 attempt left: reachable, the last attempt may complete the streak.
  assert.equal(decide(soak, { attempt: 4, passed: true, streak: 2, elapsedMs: 0 }).action, "retry");
  // A pass below the threshold on the last attempt fails as "no healthy result" when the soak's check
  // does not apply (threshold 1 is met by any pass, so use the attempt count).
  assert.deepEqual(decide(base, { attempt: 4, passed: false, streak: 0, elapsedMs: 0 }), {
    action: "fail",
    reason: "no healthy result after 4 attempt(s) (retries 3)",
  });
  // Deadline: wait + elapsed exactly at the deadline fails; one ms before leaves a 1 ms attempt.
  const d = { ...base, deadlineMs: 20_000 };
  assert.equal(decide(d, { attempt: 1, passed: false, streak: 0, elapsedMs: 10_000 }).action, "fail");
  assert.deepEqual(decide(d, { attempt: 1, passed: false, streak: 0, elapsedMs: 9_999 }), {
    action: "retry",
    waitMs: 10_000,
    timeoutMs: 1,
  });
  assert.deepEqual(decide(d, { attempt: 1, passed: false, streak: 0, elapsedMs: 0 }), {
    action: "retry",
    waitMs: 10_000,
    timeoutMs: 5_000,
  });
});

test("policyOf converts every given second to ms", () => {
  assert.deepEqual(
    policyOf({
      retries: 7,
      delaySeconds: 0.5,
      timeoutSeconds: 2,
      backoff: 1.5,
      maxDelaySeconds: 4,
      deadlineSeconds: 60,
      successThreshold: 3,
    }),
    {
      retries: 7,
      delayMs: 500,
      timeoutMs: 2000,
      backoff: 1.5,
      maxDelayMs: 4000,
      deadlineMs: 60_000,
      successThreshold: 3,
    },
  );
  assert.deepEqual(policyOf({ maxDelaySeconds: 0, deadlineSeconds: 0 }).maxDelayMs, 0);
  assert.deepEqual(policyOf({ deadlineSeconds: 0 }).deadlineMs, 0);
});

test("combineResults: notes of passing checks joined; a failure without detail; final carried; no checks", () => {
  assert.deepEqual(
    combineResults([
      { ok: true, status: 200 },
      { ok: true, detail: "container x: running" },
      { ok: true, detail: "" },
    ]),
    { ok: true, status: 200, detail: "container x: running" },
  );
  assert.deepEqual(
    combineResults([
      { ok: true, status: 200, detail: "a" },
      { ok: true, detail: "b" },
    ]),
    { ok: true, status: 200, detail: "a; b" },
  );
  assert.deepEqual(combineResults([{ ok: false, status: 503 }, { ok: true }]), {
    ok: false,
    status: 503,
    detail: "failed",
  });
  assert.deepEqual(
    combineResults([
      { ok: true, status: 200 },
      { ok: false, detail: "service rolled back", final: true },
      { ok: false, detail: "tcp" },
    ]),
    { ok: false, status: 200, detail: "service rolled back; tcp", final: true },
  );
  assert.deepEqual(combineResults([{ ok: false, detail: "x", final: false }]), {
    ok: false,
    status: undefined,
    detail: "x",
  });
  assert.deepEqual(combineResults([]), { ok: true, status: undefined });
});

test("summarizeAttempts: status once, 'ok' or 'no response' when nothing else is known", () => {
  const at = "2026-01-01T00:00:00.000Z";
  assert.equal(
    summarizeAttempts([
      { ok: false, at, ms: 1, status: 200, detail: "postgres: ECONNREFUSED" },
      { ok: false, at, ms: 2 },
      { ok: true, at, ms: 3 },
      { ok: false, at, ms: 4, status: 503 },
    ]),
    [
      `  #1 ${at} FAILED status 200, postgres: ECONNREFUSED (1 ms)`,
      `  #2 ${at} FAILED no response (2 ms)`,
      `  #3 ${at} ok ok (3 ms)`,
      `  #4 ${at} FAILED status 503 (4 ms)`,
    ].join("\n"),
  );
  assert.equal(summarizeAttempts([]), "");
});

test("gateAdvice: every certificate error code, whole sentences, the default otherwise", () => {
  const at = (...details: Array<string | undefined>): Attempt[] =>
    details.map((detail) => ({ ok: false, detail, at: "2026-01-01T00:00:00.000Z", ms: 1 }));
  const untrusted =
    "The server's certificate is not trusted here (self-signed or a private CA): pass its CA (or the self-signed " +
    "certificate) with `--ca FILE` on the CLI; for `safe-deploy up` and `pulumi up`, set NODE_EXTRA_CA_CERTS=FILE " +
    "in their environment.";
  const otherCa =
    "The server's certificate is not signed by the CA given for this check: give the CA that issued it, or the " +
    "server's own self-signed certificate.";
  const expired =
    "The server's certificate has expired (or is not valid yet): renew it, or check this machine's clock.";
  const fallback =
    "Check the app's logs (docker logs) and its health endpoint, or raise retries/delaySeconds/timeoutSeconds " +
    "(`health` in the stack config, --retries/--delay/--timeout on the CLI).";
  for (const code of [
    "SELF_SIGNED_CERT_IN_CHAIN",
    "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
    "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
    "CERT_UNTRUSTED",
    "CERT_SIGNATURE_FAILURE",
  ]) {
    assert.equal(gateAdvice(at("ECONNREFUSED", code)), untrusted, code);
    assert.equal(gateAdvice(at(code), true), otherCa, code);
  }
  assert.equal(gateAdvice(at("CERT_HAS_EXPIRED")), expired);
  assert.equal(gateAdvice(at("CERT_NOT_YET_VALID")), expired);
  assert.equal(
    gateAdvice(at("ERR_TLS_CERT_ALTNAME_INVALID")),
    "The server's certificate is for another name: poll the name it was issued for (`health.url`, --url).",
  );
  assert.equal(
    gateAdvice(at("status 302, expected 200; redirects to /login")),
    "The health URL answers with a redirect, which the check does not follow: poll the URL it redirects to " +
      "(`health.url` or `health.path` in the stack config, --url on the CLI), or accept that status " +
      "(`health.expectStatus`, --expect-status).",
  );
  assert.equal(gateAdvice(at(undefined, "UNABLE_TO_RESOLVE", "status 503")), fallback);
  assert.equal(gateAdvice([]), fallback);
});

/** A probe answering from a script, recording the timeouts it was given. */
function scripted(results: ProbeResult[]) {
  const timeouts: number[] = [];
  let i = 0;
  const probe = async (t: number) => {
    timeouts.push(t);
    return results[Math.min(i++, results.length - 1)];
  };
  return { probe, timeouts, calls: () => i };
}

test("pollUntilHealthy: passes on the first good answer, reporting each attempt to the hook", async () => {
  const s = scripted([
    { ok: false, detail: "ECONNREFUSED" },
    { ok: true, status: 200 },
  ]);
  const seen: Array<[number, boolean]> = [];
  const r = await pollUntilHealthy(
    "http://app/health",
    s.probe,
    { retries: 5, delayMs: 1, timeoutMs: 700 },
    {
      onAttempt: (a, n) => seen.push([n, a.ok]),
    },
  );
  assert.equal(r.ok, true);
  assert.deepEqual(seen, [
    [1, false],
    [2, true],
  ]);
  assert.deepEqual(s.timeouts, [700, 700]);
  assert.equal(r.attempts.length, 2);
  assert.match(r.attempts[0].at, /^\d{4}-\d\d-\d\dT/);
  if (r.ok) assert.ok(Date.parse(r.checkedAt) >= Date.parse(r.attempts[1].at));
});

test("pollUntilHealthy: a final failure stops at once, naming why, with the summary and advice, redacted", async () => {
  const s = scripted([
    { ok: false, detail: "service app rolled back by Swarm (postgres://u:pw-123@db/x)", final: true },
  ]);
  const r = await pollUntilHealthy("svc", s.probe, { retries: 5, delayMs: 1, timeoutMs: 100 });
  assert.equal(r.ok, false);
  assert.equal(s.calls(), 1);
  if (r.ok) return;
  assert.match(
    r.message,
    /^health check of svc failed: a check reported a failure no retry can fix\.\n {2}#1 \S+ FAILED service app rolled back by Swarm \(postgres:\/\/u:\*\*\*@db\/x\) \(\d+ ms\)\nCheck the app's logs/,
  );
  assert.ok(!r.message.includes("pw-123"));
  // A final flag on a passing answer means nothing.
  const ok = await pollUntilHealthy("svc", scripted([{ ok: true, final: true }]).probe, base);
  assert.equal(ok.ok, true);
});

test("pollUntilHealthy: gives up after the retries with the schedule's reason; the deadline shortens the last timeout", async () => {
  const s = scripted([{ ok: false, detail: "CERT_HAS_EXPIRED" }]);
  const r = await pollUntilHealthy("https://app", s.probe, { retries: 3, delayMs: 1, timeoutMs: 50 });
  assert.equal(s.calls(), 3);
  assert.ok(!r.ok);
  if (!r.ok) {
    assert.match(
      r.message,
      /^health check of https:\/\/app failed: no healthy result after 3 attempt\(s\) \(retries 3\)\.\n/,
    );
    assert.equal(r.message.match(/FAILED CERT_HAS_EXPIRED/g)?.length, 3);
    assert.match(r.message, /\nThe server's certificate has expired/);
  }
  // The caGiven flag reaches the advice.
  const ca = await pollUntilHealthy(
    "https://app",
    scripted([{ ok: false, detail: "SELF_SIGNED_CERT_IN_CHAIN" }]).probe,
    { retries: 1, delayMs: 1, timeoutMs: 50 },
    {},
    true,
  );
  assert.ok(!ca.ok && /not signed by the CA given for this check/.test(ca.message));
  // Without the flag, no CA was given: the advice is to pass one.
  const noCa = await pollUntilHealthy(
    "https://app",
    scripted([{ ok: false, detail: "SELF_SIGNED_CERT_IN_CHAIN" }]).probe,
    { retries: 1, delayMs: 1, timeoutMs: 50 },
  );
  assert.ok(!noCa.ok && /not trusted here .*`--ca FILE`/.test(noCa.message));
  // A deadline far in the future leaves the timeout alone; the next attempt gets decide's timeout.
  const d = scripted([{ ok: false }, { ok: true }]);
  await pollUntilHealthy("x", d.probe, { retries: 2, delayMs: 1, timeoutMs: 60_000, deadlineMs: 1_000_000 });
  assert.deepEqual(d.timeouts, [60_000, 60_000]);
  const e = scripted([{ ok: false }, { ok: true }]);
  await pollUntilHealthy("x", e.probe, { retries: 2, delayMs: 1, timeoutMs: 60_000, deadlineMs: 30_000 });
  assert.equal(e.timeouts[0], 60_000);
  assert.ok(e.timeouts[1] <= 30_000 - 1 && e.timeouts[1] > 0, `${e.timeouts[1]}`);
});

test("valueAtPath and checkJsonBody", () => {
  const doc = { checks: { db: "ok", list: [{ ok: true }] }, n: null, zero: 0 };
  assert.equal(valueAtPath(doc, "checks.db"), "ok");
  assert.equal(valueAtPath(doc, "checks.list.0.ok"), true);
  assert.equal(valueAtPath(doc, ".checks..db."), "ok");
  assert.deepEqual(valueAtPath(doc, ""), doc);
  assert.equal(valueAtPath(doc, "n.x"), undefined);
  assert.equal(valueAtPath(doc, "zero.x"), undefined);
  assert.equal(valueAtPath(doc, "checks.db.length"), undefined, "a string is no object to descend into");
  assert.equal(checkJsonBody('{"a":{"b":[1,2]}}', { path: "a.b", equals: [1, 2] }), null);
  assert.equal(checkJsonBody('{"a":1}', { path: "a", equals: "1" }), 'body a is 1, expected "1"');
  assert.equal(checkJsonBody('{"a":1}', { path: "b", equals: true }), "body b is missing, expected true");
  assert.equal(checkJsonBody('{"a":null}', { path: "a", equals: "x" }), 'body a is null, expected "x"');
  assert.equal(
    checkJsonBody("<html><body>Service Unavailable, come back later</body></html>", { path: "a", equals: 1 }),
    'body is not JSON (starts "<html><body>Service Unavailable, come ba")',
  );
});

test("containerVerdict edges: restarts equal to the baseline pass; unknown status and exit code; long errors cut", () => {
  assert.deepEqual(containerVerdict({ Running: true, RestartCount: 2 }, 2), { ok: true, detail: "running" });
  assert.deepEqual(containerVerdict({ Running: true }, 0), { ok: true, detail: "running" });
  assert.deepEqual(containerVerdict({ Running: true, RestartCount: 3 }, 2), {
    ok: false,
    detail: "container restarted 1 time(s) during the check (crash loop?)",
  });
  assert.deepEqual(containerVerdict({}, 0), { ok: false, detail: "container is not running (exit code ?)" });
  assert.deepEqual(containerVerdict({ Running: false, Status: "exited", ExitCode: 0 }, 0), {
    ok: false,
    detail: "container is exited (exit code 0)",
  });
  const long = containerVerdict({ Status: "created", ExitCode: 127, Error: "e".repeat(400) }, 0);
  assert.equal(long.detail, `container is created (exit code 127): ${"e".repeat(300)}`);
  assert.deepEqual(containerVerdict({ Running: true, Health: { Status: "unhealthy" } }, 0), {
    ok: false,
    detail: "container health is unhealthy",
  });
  assert.deepEqual(containerVerdict({ Running: true, Health: { Status: "healthy" } }, 0), {
    ok: true,
    detail: "running, healthy",
  });
  assert.deepEqual(containerVerdict({ Running: true, Health: {} }, 0), { ok: true, detail: "running" });
  assert.deepEqual(containerVerdict({ Running: true, Restarting: false }, 0), {
    ok: true,
    detail: "running",
  });
});

test("findCriticalLine: CRLF lines, case, each default pattern, long lines cut", () => {
  assert.equal(findCriticalLine("ok\r\n  panic: nil map  \r\nmore", DEFAULT_LOG_PATTERNS), "panic: nil map");
  assert.equal(
    findCriticalLine("x\nUnhandledPromiseRejection: boom\n", DEFAULT_LOG_PATTERNS),
    "UnhandledPromiseRejection: boom",
  );
  assert.equal(findCriticalLine("UnhandledRejection\n", DEFAULT_LOG_PATTERNS), "UnhandledRejection");
  assert.equal(findCriticalLine("[critical] disk full\n", DEFAULT_LOG_PATTERNS), "[critical] disk full");
  assert.equal(findCriticalLine("fatal error\n", DEFAULT_LOG_PATTERNS), "fatal error");
  assert.equal(findCriticalLine("panicky\ncriticality\n", DEFAULT_LOG_PATTERNS), null);
  assert.equal(
    findCriticalLine(`FATAL ${"x".repeat(300)}`, DEFAULT_LOG_PATTERNS),
    `FATAL ${"x".repeat(194)}`,
  );
  assert.equal(findCriticalLine("first FATAL\nsecond FATAL\n", DEFAULT_LOG_PATTERNS), "first FATAL");
});
