import { test, after } from "node:test";
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { createLogger } from "../../../src/core/log/logger";
import {
  colorFor,
  emailNotifier,
  fileNotifier,
  notifiersFrom,
  notifyAll,
  retryDelays,
  slackNotifier,
  verifySignature,
  webhookNotifier,
  NOTIFICATION_TYPES,
  type NotificationEvent,
} from "../../../src/core/notify";
import { until } from "../../helpers/bounded";
import { startHttpReceiver, startSmtpReceiver, unusedPort } from "../../helpers/receivers";

setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;

const dir = mkdtempSync(join(tmpdir(), "sd-notify-"));
after(() => rmSync(dir, { recursive: true, force: true }));

const event = (over: Partial<NotificationEvent> = {}): NotificationEvent => ({
  type: "ROLLBACK_SUCCESS",
  message: "Health check failed after the update; rolled back to r-41",
  stack: "production",
  commit: "abc1234",
  release: "r-42",
  time: new Date("2026-11-23T03:00:00Z"),
  details: { "Failed stage": "health" },
  ...over,
});
// Only a hanging receiver may reach the per-attempt timeout: a 2 s one was also reached by receivers that
// answer, at load 10-16 (nodemailer's first load, a delivery slowed by the other processes), which then
// counted a second attempt or a failure (session 12). The tests of the timeout set their own.
const fast = { attempts: 3, timeoutMs: 20_000, baseDelayMs: 10, maxDelayMs: 20 };

/** Fails the test instead of hanging if `p` does not settle: notifyAll must never block a deploy. */
function bounded<T>(p: Promise<T>, ms = 20_000): Promise<T> {
  let t: NodeJS.Timeout;
  const guard = new Promise<never>((_, reject) => {
    t = setTimeout(() => reject(new Error(`did not resolve within ${ms} ms`)), ms);
  });
  return Promise.race([p, guard]).finally(() => clearTimeout(t));
}

test("retryDelays: exponential, capped, one fewer than attempts", () => {
  const cases: Array<[number, number, number, number[]]> = [
    [1, 1000, 8000, []],
    [0, 1000, 8000, []],
    [2, 1000, 8000, [1000]],
    [3, 1000, 8000, [1000, 2000]],
    [6, 1000, 8000, [1000, 2000, 4000, 8000, 8000]],
    [4, 500, 1200, [500, 1000, 1200]],
  ];
  for (const [attempts, baseDelayMs, maxDelayMs, want] of cases) {
    assert.deepEqual(retryDelays({ attempts, baseDelayMs, maxDelayMs }), want, `attempts=${attempts}`);
  }
});

test("colorFor: green for good news, yellow for recovered/warnings, red when a person must act", () => {
  const want = {
    INFO: "#2eb67d",
    SUCCESS: "#2eb67d",
    WARNING: "#ecb22e",
    ROLLBACK_SUCCESS: "#ecb22e",
    ERROR: "#e01e5a",
    ROLLBACK_FAILED: "#e01e5a",
  };
  for (const t of NOTIFICATION_TYPES) assert.equal(colorFor(t), want[t], t);
});

test("every channel delivers to a real receiver: log file, Slack, signed webhook, SMTP email", async () => {
  const http = await startHttpReceiver();
  const smtp = await startSmtpReceiver("deploy", "smtp-pa55word");
  try {
    const logsDir = join(dir, "all", "logs");
    const notifiers = notifiersFrom({
      logsDir,
      slackWebhookUrl: http.url("/services/T000/B000/slacktoken123"),
      webhookUrl: http.url("/hooks/custom"),
      webhookSecret: "whsec-0123456789",
      smtpUrl: `smtp://deploy:smtp-pa55word@127.0.0.1:${smtp.port}`,
      email: { from: "deploy@example.com", to: ["admin@example.com", "ops@example.com"] },
    });
    const results = await bounded(notifyAll(notifiers, event(), { retry: fast }));
    assert.deepEqual(
      results.map((r) => [r.name, r.ok, r.attempts]),
      [
        ["log", true, 1],
        ["slack", true, 1],
        ["webhook", true, 1],
        ["email", true, 1],
      ],
    );

    const log = readFileSync(join(logsDir, "notifications.log"), "utf8");
    assert.equal(statSync(logsDir).mode & 0o777, 0o700);
    assert.equal(statSync(join(logsDir, "notifications.log")).mode & 0o777, 0o600);
    const stamp = /^\[\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\] ROLLBACK_SUCCESS: /;
    const lines = log.trim().split("\n");
    assert.equal(lines.length, 2);
    assert.match(lines[0], stamp);
    assert.match(lines[0], /rolled back to r-41 \(stack=production release=r-42 commit=abc1234\)$/);
    assert.match(lines[1], /ROLLBACK_SUCCESS: Failed stage: health$/);

    const slack = http.received.find((r) => r.path.startsWith("/services/"))!;
    const sb = JSON.parse(slack.body);
    assert.equal(sb.attachments[0].color, "#ecb22e");
    assert.match(sb.text, /ROLLBACK_SUCCESS production/);
    const fields = Object.fromEntries(
      sb.attachments[0].fields.map((f: { title: string; value: string }) => [f.title, f.value]),
    );
    assert.deepEqual(fields, {
      Stack: "production",
      Commit: "abc1234",
      Release: "r-42",
      Time: "2026-11-23T03:00:00.000Z",
      "Failed stage": "health",
    });

    const hook = http.received.find((r) => r.path === "/hooks/custom")!;
    const t = String(hook.headers["x-safe-deploy-timestamp"]);
    const expected =
      `t=${t},v1=` + createHmac("sha256", "whsec-0123456789").update(`${t}.${hook.body}`).digest("hex");
    assert.equal(hook.headers["x-safe-deploy-signature"], expected);
    assert.ok(
      verifySignature("whsec-0123456789", hook.body, String(hook.headers["x-safe-deploy-signature"])),
    );
    assert.ok(!verifySignature("another-secret", hook.body, String(hook.headers["x-safe-deploy-signature"])));
    assert.match(String(hook.headers["x-safe-deploy-timestamp"]), /^\d{10}$/);
    assert.equal(hook.headers["content-type"], "application/json");
    assert.deepEqual(JSON.parse(hook.body), {
      type: "ROLLBACK_SUCCESS",
      message: "Health check failed after the update; rolled back to r-41",
      stack: "production",
      commit: "abc1234",
      release: "r-42",
      time: "2026-11-23T03:00:00.000Z",
      details: { "Failed stage": "health" },
    });

    assert.equal(smtp.mails.length, 1);
    const mail = smtp.mails[0];
    assert.equal(mail.user, "deploy");
    assert.equal(mail.from, "deploy@example.com");
    assert.deepEqual(mail.to, ["admin@example.com", "ops@example.com"]);
    assert.match(mail.raw, /Subject: \[safe-deploy\] ROLLBACK_SUCCESS production: Health check failed/);
    assert.match(mail.raw, /Release: r-42/);
    assert.match(mail.raw, /Failed stage: health/);
  } finally {
    await http.close();
    await smtp.close();
  }
});

test("without a secret the webhook sends no signature header", async () => {
  const http = await startHttpReceiver();
  try {
    const [r] = await notifyAll([webhookNotifier(http.url("/h"))], event({ type: "INFO" }), { retry: fast });
    assert.equal(r.ok, true);
    assert.equal(http.received[0].headers["x-safe-deploy-signature"], undefined);
    assert.equal(JSON.parse(http.received[0].body).type, "INFO");
  } finally {
    await http.close();
  }
});

test("a receiver answering 500 then 200 gets the notification on the second attempt", async () => {
  const http = await startHttpReceiver((n) => (n === 1 ? 500 : 200));
  try {
    const [r] = await bounded(notifyAll([slackNotifier(http.url("/s"))], event(), { retry: fast }));
    assert.deepEqual(r, { name: "slack", ok: true, attempts: 2 });
    assert.equal(http.received.length, 2);
    assert.equal(http.received[0].body, http.received[1].body);
  } finally {
    await http.close();
  }
});

test("a 404 is not retried; a receiver always failing stops after the configured attempts", async () => {
  const notFound = await startHttpReceiver(() => 404);
  const broken = await startHttpReceiver(() => 503);
  try {
    const [a, b] = await bounded(
      notifyAll([slackNotifier(notFound.url("/s")), webhookNotifier(broken.url("/w"))], event(), {
        retry: fast,
      }),
    );
    assert.deepEqual([a.ok, a.attempts, notFound.received.length], [false, 1, 1]);
    assert.match(a.error!, /HTTP 404/);
    assert.deepEqual([b.ok, b.attempts, broken.received.length], [false, 3, 3]);
    assert.match(b.error!, /HTTP 503/);
  } finally {
    await notFound.close();
    await broken.close();
  }
});

test("a redirecting webhook is not retried and names the address to configure", async () => {
  let hits = 0;
  const server = createServer((_req, res) => {
    hits++;
    res.writeHead(301, { location: "https://hooks.example.com/new" }).end();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  try {
    const { port } = server.address() as AddressInfo;
    const [r] = await bounded(
      notifyAll([webhookNotifier(`http://127.0.0.1:${port}/old`)], event(), { retry: fast }),
    );
    assert.deepEqual([r.ok, r.attempts, hits], [false, 1, 1]);
    assert.match(
      r.error!,
      /HTTP 301 \(redirected to https:\/\/hooks\.example\.com\/new\): configure that URL/,
    );
  } finally {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});

test("a hanging receiver is cut by the per-attempt timeout; the others still deliver", async () => {
  const hang = await startHttpReceiver(() => "hang");
  const ok = await startHttpReceiver();
  // Garbage collections during the send: on Node 20 they made fetch lose its timeout signal, and the
  // attempt then hung until the notification deadline (a CI flake; certain with this).
  const collecting = setInterval(gc, 20);
  try {
    // The timeout is shared by both channels: 3 s, not 300 ms, so that the receiver that answers is
    // never cut by it under load (a 300 ms one was, at load 10-16).
    const results = await bounded(
      notifyAll([webhookNotifier(hang.url("/w")), slackNotifier(ok.url("/s"))], event(), {
        retry: { attempts: 2, timeoutMs: 3000, baseDelayMs: 10, maxDelayMs: 10 },
        deadlineMs: 40_000,
      }),
      60_000,
    );
    assert.deepEqual(
      results.map((r) => [r.name, r.ok, r.attempts]),
      [
        ["webhook", false, 2],
        ["slack", true, 1],
      ],
    );
    assert.match(results[0].error!, /timed out after 3000 ms/);
    assert.equal(hang.received.length, 2);
    // Each timed-out attempt closed its connection (nothing left open to hold the process).
    await until("both timed-out connections to be closed", () => hang.abandoned() >= 2);
    assert.equal(hang.abandoned(), 2);
  } finally {
    clearInterval(collecting);
    await hang.close();
    await ok.close();
  }
});

test("the overall deadline returns even when a notifier's own timeout is far longer", async () => {
  const hang = await startHttpReceiver(() => "hang");
  const smtpHang = await startHttpReceiver(() => "hang"); // speaks no SMTP: the client waits for a greeting
  try {
    const notifiers = [
      webhookNotifier(hang.url("/w")),
      emailNotifier({
        smtpUrl: smtpHang.url("/").replace("http:", "smtp:"),
        from: "a@example.com",
        to: ["b@example.com"],
        timeoutMs: 600_000,
      }),
    ];
    const results = await bounded(
      notifyAll(notifiers, event(), {
        retry: { attempts: 5, timeoutMs: 600_000, baseDelayMs: 10, maxDelayMs: 10 },
        deadlineMs: 500,
      }),
    );
    assert.deepEqual(
      results.map((r) => [r.name, r.ok]),
      [
        ["webhook", false],
        ["email", false],
      ],
    );
    for (const r of results) assert.match(r.error!, /deadline/);
  } finally {
    await hang.close();
    await smtpHang.close();
  }
});

test("an unreachable port fails fast with the cause, retried, and never throws", async () => {
  const port = await unusedPort();
  const [r] = await bounded(
    notifyAll([webhookNotifier(`http://127.0.0.1:${port}/x`)], event(), { retry: fast }),
  );
  assert.equal(r.ok, false);
  assert.equal(r.attempts, 3);
  assert.match(r.error!, /ECONNREFUSED/);
});

test("secrets (webhook URLs, HMAC secret, SMTP password) never reach the log file or the results", async () => {
  const port = await unusedPort();
  const smtp = await startSmtpReceiver("deploy", "right-password");
  const notFound = await startHttpReceiver(() => 404);
  try {
    const logFile = join(dir, "secrets", "update.log");
    const logger = createLogger({ file: logFile });
    const slackUrl = `http://127.0.0.1:${port}/services/T111/B222/sl4cks3cr3tt0k3n`;
    const hookUrl = notFound.url("/hooks/h00ks3cr3tpath");
    const smtpUrl = `smtp://deploy:wr0ng-p4ssw0rd@127.0.0.1:${smtp.port}`;
    const notifiers = [
      fileNotifier(join(dir, "secrets", "notifications.log")),
      slackNotifier(slackUrl),
      webhookNotifier(hookUrl, "hm4c-s3cr3t-value"),
      emailNotifier({ smtpUrl, from: "a@example.com", to: ["b@example.com"] }),
    ];
    const results = await bounded(notifyAll(notifiers, event(), { retry: fast, logger }));
    // notifyAll registered the channels' secrets with the logger: later lines quoting them are masked.
    logger.error(`could not reach ${slackUrl} nor ${smtpUrl}`);
    assert.deepEqual(
      results.map((r) => [r.name, r.ok]),
      [
        ["log", true],
        ["slack", false],
        ["webhook", false],
        ["email", false],
      ],
    );
    const text = readFileSync(logFile, "utf8");
    assert.match(text, /WARNING: notification ROLLBACK_SUCCESS via slack failed after 3 attempt\(s\)/);
    assert.match(text, /via email failed after 1 attempt\(s\): .*(auth|Invalid)/i);
    const everything = text + JSON.stringify(results);
    for (const s of ["sl4cks3cr3tt0k3n", "h00ks3cr3tpath", "wr0ng-p4ssw0rd", "hm4c-s3cr3t-value"]) {
      assert.ok(!everything.includes(s), `${s} leaked:\n${everything}`);
    }
    assert.match(text, /ERROR: could not reach \*\*\* nor smtp:\/\/deploy:\*\*\*@127\.0\.0\.1:\d+\n/);
  } finally {
    await smtp.close();
    await notFound.close();
  }
});

test("a database URL or registered secret inside the message never reaches any channel", async () => {
  const http = await startHttpReceiver();
  const smtp = await startSmtpReceiver("u", "smtp-secret-pw");
  try {
    const logsDir = join(dir, "masked");
    const logger = createLogger({ secrets: ["app-api-key-123"] });
    const notifiers = notifiersFrom({
      logsDir,
      slackWebhookUrl: http.url("/services/T1/B2/tokentokentoken"),
      webhookUrl: http.url("/w"),
      smtpUrl: `smtp://u:smtp-secret-pw@127.0.0.1:${smtp.port}`,
      email: { from: "a@example.com", to: ["b@example.com"] },
    });
    const e = event({
      type: "ROLLBACK_FAILED",
      message: "migration failed: could not connect to postgres://app:db-pa55@db:5432/shop",
      details: { "Next step": "curl -H 'key: app-api-key-123' http://x", smtp: "smtp-secret-pw" },
    });
    const results = await bounded(notifyAll(notifiers, e, { retry: fast, logger }));
    assert.ok(
      results.every((r) => r.ok),
      JSON.stringify(results),
    );
    const seen = [
      readFileSync(join(logsDir, "notifications.log"), "utf8"),
      ...http.received.map((r) => r.body),
      ...smtp.mails.map((m) => m.raw),
    ];
    assert.equal(seen.length, 4);
    for (const text of seen) {
      assert.match(text, /postgres:\/\/app:\*\*\*@db:5432\/shop/);
      for (const s of ["db-pa55", "app-api-key-123", "smtp-secret-pw"])
        assert.ok(!text.includes(s), `${s} in ${text}`);
    }
  } finally {
    await http.close();
    await smtp.close();
  }
});

test("notifications.log is rotated at 10 MiB like the other logs", async () => {
  const file = join(dir, "rotating", "notifications.log");
  mkdirSync(join(dir, "rotating"));
  writeFileSync(file, "x".repeat(10 << 20));
  const [r] = await notifyAll([fileNotifier(file)], event());
  assert.ok(r.ok, r.error);
  assert.equal(statSync(file + ".1").size, 10 << 20);
  assert.match(readFileSync(file, "utf8"), /^\[[^\]]+\] ROLLBACK_SUCCESS: Health check failed/);
});
