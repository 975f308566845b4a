// Issue 22: the retry loop and the deadline as a user reads them in the results and the log: what each
// kind of failure says, when retrying stops, and what a notifier cut by the deadline reports. The
// channels here are scripted notifiers (the `Notifier` port), so each case takes milliseconds.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createLogger } from "../../../src/core/log/logger";
import {
  DEFAULT_RETRY,
  notifyAll,
  sendWithRetry,
  PermanentNotifyError,
  type NotificationEvent,
  type Notifier,
} from "../../../src/core/notify";

const event: NotificationEvent = {
  type: "ERROR",
  message: "deploy failed",
  stack: "production",
  time: new Date(0),
};
const quick = { attempts: 3, timeoutMs: 5000, baseDelayMs: 1, maxDelayMs: 1 };

/** A channel that runs `script(n)` on attempt n (1-based) and counts the attempts. */
function scripted(
  name: string,
  script: (n: number, signal: AbortSignal) => Promise<void>,
  secrets: string[] = [],
) {
  let n = 0;
  const notifier: Notifier = { name, secrets, send: (_e, signal) => script(++n, signal) };
  return { notifier, calls: () => n };
}

test("the defaults: 3 attempts of at most 10 s, 1 s then 2 s apart, capped at 8 s", () => {
  assert.deepEqual(DEFAULT_RETRY, { attempts: 3, timeoutMs: 10_000, baseDelayMs: 1000, maxDelayMs: 8000 });
});

test("what a failure says: an Error's message and its cause, a thrown string, a permanent error is not retried", async () => {
  const withCause = scripted("a", async () => {
    throw new Error("fetch failed", { cause: new Error("connect ECONNREFUSED 127.0.0.1:9") });
  });
  const plainCause = scripted("b", async () => {
    throw Object.assign(new Error("socket hang up"), { cause: "not an Error" });
  });
  const str = scripted("c", () => Promise.reject("a bare string"));
  const permanent = scripted("d", async () => {
    throw new PermanentNotifyError("HTTP 404: no such hook");
  });
  const later = scripted("e", async (n) => {
    if (n < 3) throw new Error(`HTTP 503 (${n})`);
  });
  const results = await notifyAll(
    [withCause.notifier, plainCause.notifier, str.notifier, permanent.notifier, later.notifier],
    event,
    { retry: quick },
  );
  assert.deepEqual(results, [
    { name: "a", ok: false, attempts: 3, error: "fetch failed: connect ECONNREFUSED 127.0.0.1:9" },
    { name: "b", ok: false, attempts: 3, error: "socket hang up" },
    { name: "c", ok: false, attempts: 3, error: "a bare string" },
    { name: "d", ok: false, attempts: 1, error: "HTTP 404: no such hook" },
    { name: "e", ok: true, attempts: 3 },
  ]);
  assert.deepEqual([withCause.calls(), str.calls(), permanent.calls(), later.calls()], [3, 3, 1, 3]);
});

test("retry.attempts 1 (or 0) means one attempt; only the given retry keys override the defaults", async () => {
  for (const attempts of [1, 0]) {
    const s = scripted("x", async () => {
      throw new Error("down");
    });
    const [r] = await notifyAll([s.notifier], event, { retry: { ...quick, attempts } });
    assert.deepEqual(r, { name: "x", ok: false, attempts: 1, error: "down" });
  }
  // Only the delays given: the default 3 attempts remain.
  const s = scripted("x", async () => {
    throw new Error("down");
  });
  const [r] = await notifyAll([s.notifier], event, { retry: { baseDelayMs: 1, maxDelayMs: 1 } });
  assert.equal(r.attempts, 3);
});

test("an attempt over its time limit is reported with that limit; the channel's signal is aborted", async () => {
  let aborted = 0;
  const slow = scripted("slow", (_n, signal) => {
    signal.addEventListener("abort", () => aborted++);
    return new Promise(() => {});
  });
  const [r] = await notifyAll([slow.notifier], event, { retry: { ...quick, attempts: 2, timeoutMs: 30 } });
  assert.deepEqual(r, { name: "slow", ok: false, attempts: 2, error: "timed out after 30 ms" });
  assert.equal(aborted, 2);
});

test("a channel that throws its own TimeoutError or AbortError reads as such", async () => {
  const t = scripted("t", async () => {
    throw new DOMException("The operation was aborted due to timeout", "TimeoutError");
  });
  const a = scripted("a", async () => {
    throw new DOMException("This operation was aborted", "AbortError");
  });
  const [rt, ra] = await notifyAll([t.notifier, a.notifier], event, {
    retry: { ...quick, attempts: 1, timeoutMs: 1234 },
  });
  assert.equal(rt.error, "timed out after 1234 ms");
  assert.equal(ra.error, "aborted at the notification deadline");
});

test("the deadline: a notifier still sending is reported as given up, its secrets never shown", async () => {
  const hung = scripted("hung", () => new Promise(() => {}));
  const fine = scripted("fine", async () => {});
  const dir = mkdtempSync(join(tmpdir(), "sd-notify-retry-"));
  try {
    const logger = createLogger({ file: join(dir, "update.log") });
    const results = await notifyAll([hung.notifier, fine.notifier], event, {
      retry: { ...quick, timeoutMs: 600_000 },
      deadlineMs: 100,
      logger,
    });
    assert.deepEqual(results, [
      { name: "hung", ok: false, attempts: 0, error: "gave up at the notification deadline (100 ms)" },
      { name: "fine", ok: true, attempts: 1 },
    ]);
    const log = readFileSync(join(dir, "update.log"), "utf8");
    assert.match(
      log,
      /WARNING: notification ERROR via hung failed after 0 attempt\(s\): gave up at the notification deadline \(100 ms\)\n/,
    );
    assert.doesNotMatch(log, /via fine/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("without deadlineMs, a notifier that takes a while still finishes (the default is 30 s)", async () => {
  const s = scripted("s", () => new Promise((r) => setTimeout(r, 200)));
  const [r] = await notifyAll([s.notifier], event, { retry: quick });
  assert.deepEqual(r, { name: "s", ok: true, attempts: 1 });
});

test("sendWithRetry: the deadline during an attempt or during the pause is named, the secret masked", async () => {
  const secret = "https://hooks.example.com/s3cr3t-path";
  // Aborted while sending.
  const ctl = new AbortController();
  const hung = scripted("w", () => new Promise(() => {}), [secret]);
  const p = sendWithRetry(hung.notifier, event, quick, ctl.signal);
  setTimeout(() => ctl.abort(), 20);
  assert.deepEqual(await p, {
    name: "w",
    ok: false,
    attempts: 1,
    error: "aborted at the notification deadline (notification deadline reached)",
  });
  // Aborted while pausing before attempt 2.
  const ctl2 = new AbortController();
  const failing = scripted(
    "w",
    async () => {
      throw new Error(`HTTP 503 from ${secret}`);
    },
    [secret],
  );
  const p2 = sendWithRetry(
    failing.notifier,
    event,
    { ...quick, baseDelayMs: 600_000, maxDelayMs: 600_000 },
    ctl2.signal,
  );
  setTimeout(() => ctl2.abort(), 20);
  assert.deepEqual(await p2, {
    name: "w",
    ok: false,
    attempts: 1,
    error: "HTTP 503 from *** (notification deadline reached)",
  });
  assert.equal(failing.calls(), 1);
});

test("sendWithRetry with a signal aborted already: one attempt, cut at once even if the channel ignores it", async () => {
  // Before, the attempt's own stop listener was added after the abort had fired, so a channel that
  // ignores its signal held the attempt forever (e.g. the deadline firing as a pause ended).
  const ctl = new AbortController();
  ctl.abort();
  const never = scripted("w", () => new Promise(() => {}));
  const r = await sendWithRetry(never.notifier, event, quick, ctl.signal);
  assert.deepEqual(r, {
    name: "w",
    ok: false,
    attempts: 1,
    error: "aborted at the notification deadline (notification deadline reached)",
  });
});

test("a notifier that throws outside its promise is still reported, not thrown", async () => {
  const bad: Notifier = {
    name: "bad",
    secrets: ["tok-123456789"],
    send: () => {
      throw new Error("sync failure tok-123456789");
    },
  };
  const [r] = await notifyAll([bad], event, { retry: { ...quick, attempts: 1 } });
  assert.equal(r.ok, false);
  assert.equal(r.error, "sync failure ***");
});
