// Issue 22: what one attempt leaves behind once it is over, as a user feels it: a process that exits when
// the deploy is done, a channel whose signal stays quiet after its send succeeded, and a failure that
// is reported however odd the value a channel rejects with. Scripted channels (the `Notifier` port).
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { within } from "../../helpers/bounded";
import { createLogger } from "../../../src/core/log/logger";
import { notifyAll, sendWithRetry, type NotificationEvent, type Notifier } from "../../../src/core/notify";

const event: NotificationEvent = {
  type: "SUCCESS",
  message: "deployed r-2",
  stack: "production",
  time: new Date(0),
};
const quick = { attempts: 2, timeoutMs: 5000, baseDelayMs: 1, maxDelayMs: 1 };

test("once the notification is sent, the process exits at once: an attempt's time limit does not hold it", async () => {
  // A child process: a timer left running would keep it alive for the attempt's whole limit (10 min).
  const script = `
    const { notifyAll } = require(${JSON.stringify(join(__dirname, "../../../src/core/notify"))});
    const ok = { name: "ok", secrets: [], send: async () => {} };
    notifyAll([ok], { type: "SUCCESS", message: "m", stack: "s", time: new Date(0) }, {
      retry: { attempts: 1, timeoutMs: 600000 },
      deadlineMs: 600000,
    }).then((r) => console.log(JSON.stringify(r)));
  `;
  const child = spawn(process.execPath, ["--import", "tsx", "-e", script], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  let out = "";
  child.stdout.on("data", (c: Buffer) => (out += c.toString()));
  try {
    const code = await within(
      "the process to exit after its notification",
      new Promise<number | null>((resolve) => child.on("exit", resolve)),
    );
    assert.equal(code, 0);
    assert.deepEqual(JSON.parse(out), [{ name: "ok", ok: true, attempts: 1 }]);
  } finally {
    child.kill("SIGKILL");
  }
});

test("a channel's signal is not aborted after its send succeeded, though the deadline's stop comes later", async () => {
  const signals: AbortSignal[] = [];
  const ok: Notifier = {
    name: "ok",
    secrets: [],
    send: async (_e, signal) => {
      signals.push(signal);
    },
  };
  const [r] = await notifyAll([ok], event, { retry: quick });
  assert.deepEqual(r, { name: "ok", ok: true, attempts: 1 });
  // notifyAll has stopped everything still running (its deadline's abort) by the time it returns.
  assert.equal(signals.length, 1);
  assert.equal(signals[0].aborted, false);

  // The same through sendWithRetry with the caller's signal aborted afterwards.
  const ctl = new AbortController();
  assert.equal((await sendWithRetry(ok, event, quick, ctl.signal)).ok, true);
  ctl.abort();
  assert.equal(signals[1].aborted, false);
});

test("a channel that throws at once after the deadline passed: reported as cut, nothing left unhandled", async () => {
  const unhandled: unknown[] = [];
  const onUnhandled = (e: unknown) => unhandled.push(e);
  process.on("unhandledRejection", onUnhandled);
  try {
    const ctl = new AbortController();
    ctl.abort();
    const bad: Notifier = {
      name: "bad",
      secrets: [],
      send: () => {
        throw new Error("sync failure");
      },
    };
    const r = await sendWithRetry(bad, event, quick, ctl.signal);
    assert.deepEqual(r, {
      name: "bad",
      ok: false,
      attempts: 1,
      error: "aborted at the notification deadline (notification deadline reached)",
    });
    // An unhandled rejection is reported on a later turn of the event loop.
    await new Promise((resolve) => setImmediate(resolve));
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(unhandled, []);
  } finally {
    process.off("unhandledRejection", onUnhandled);
  }
});

test("a channel that rejects with a value that cannot be made text: reported with why and warned, never thrown", async () => {
  const dir = mkdtempSync(join(tmpdir(), "sd-notify-attempt-"));
  try {
    const logger = createLogger({ file: join(dir, "update.log") });
    const odd: Notifier = { name: "odd", secrets: [], send: () => Promise.reject(Object.create(null)) };
    const [r] = await notifyAll([odd], event, { retry: quick, logger });
    assert.deepEqual(r, {
      name: "odd",
      ok: false,
      attempts: 1,
      error: "Cannot convert object to primitive value",
    });
    assert.match(
      readFileSync(join(dir, "update.log"), "utf8"),
      /WARNING: notification SUCCESS via odd failed after 1 attempt\(s\): Cannot convert object to primitive value\n/,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
