// Issue 22: what each channel says, field by field, and the SMTP settings a URL means: pure functions,
// table-tested, so a mutation run reaches them in a second instead of through real receivers.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  emailText,
  notifiersFrom,
  slackPayload,
  smtpTransportOptions,
  smtpUrlProblem,
  summaryLine,
  verifySignature,
  webhookPayload,
  webhookSecrets,
  PermanentNotifyError,
  type NotificationEvent,
} from "../../../src/core/notify";
import { signBody } from "../../../src/core/notify/channels";

const bare: NotificationEvent = {
  type: "ERROR",
  message: "migration failed\nat step 3",
  stack: "staging",
  time: new Date("2026-11-23T03:00:07.900Z"),
};
const full: NotificationEvent = {
  ...bare,
  commit: "abc1234",
  release: "r-9",
  details: { "Next step": "safe-deploy rollback", Log: "logs/update.log" },
};

test("summaryLine: type, stack and the message's first line only", () => {
  assert.equal(summaryLine(bare), "[safe-deploy] ERROR staging: migration failed");
});

test("slackPayload: a missing commit or release shows '-', the time is whole seconds, details follow", () => {
  assert.deepEqual(slackPayload(bare), {
    text: "[safe-deploy] ERROR staging: migration failed",
    attachments: [
      {
        color: "#e01e5a",
        fallback: "[safe-deploy] ERROR staging: migration failed",
        title: "ERROR: staging",
        text: "migration failed\nat step 3",
        fields: [
          { title: "Stack", value: "staging", short: true },
          { title: "Commit", value: "-", short: true },
          { title: "Release", value: "-", short: true },
          { title: "Time", value: "2026-11-23T03:00:07.900Z", short: true },
        ],
        ts: 1795402807,
      },
    ],
  });
  const fields = (slackPayload(full) as { attachments: Array<{ fields: unknown[] }> }).attachments[0].fields;
  assert.deepEqual(fields.slice(1, 3), [
    { title: "Commit", value: "abc1234", short: true },
    { title: "Release", value: "r-9", short: true },
  ]);
  assert.deepEqual(fields.slice(4), [
    { title: "Next step", value: "safe-deploy rollback", short: false },
    { title: "Log", value: "logs/update.log", short: false },
  ]);
});

test("webhookPayload: absent commit and release are null, absent details an empty object", () => {
  assert.deepEqual(webhookPayload(bare), {
    type: "ERROR",
    message: "migration failed\nat step 3",
    stack: "staging",
    commit: null,
    release: null,
    time: "2026-11-23T03:00:07.900Z",
    details: {},
  });
});

test("emailText: the message, a blank line, then only the fields that are set", () => {
  assert.equal(
    emailText(bare),
    "migration failed\nat step 3\n\nType: ERROR\nStack: staging\nTime: 2026-11-23T03:00:07.900Z\n",
  );
  assert.equal(
    emailText(full),
    "migration failed\nat step 3\n\nType: ERROR\nStack: staging\nCommit: abc1234\nRelease: r-9\n" +
      "Time: 2026-11-23T03:00:07.900Z\nNext step: safe-deploy rollback\nLog: logs/update.log\n",
  );
});

test("webhookSecrets: the path is a secret of its own from 12 characters; a short or unparsable URL is one secret", () => {
  assert.deepEqual(webhookSecrets("https://hooks.slack.com/services/T0/B0/xyz"), [
    "https://hooks.slack.com/services/T0/B0/xyz",
    "/services/T0/B0/xyz",
  ]);
  assert.deepEqual(webhookSecrets("https://h.example/abcdefghijk"), [
    "https://h.example/abcdefghijk",
    "/abcdefghijk",
  ]);
  assert.deepEqual(webhookSecrets("https://h.example/abcdefghij"), ["https://h.example/abcdefghij"]);
  assert.deepEqual(webhookSecrets("not a url /with/a/long/path"), ["not a url /with/a/long/path"]);
});

test("signBody: whole seconds; verifySignature: tolerance edges, spaces, several v1, malformed parts", () => {
  const body = '{"a":1}';
  assert.match(signBody("k", body, 1_800_000_000.9), /^t=1800000000,v1=[0-9a-f]{64}$/);
  const h = signBody("k", body, 1_800_000_000);
  const at = (s: number) => ({ now: new Date(s * 1000) });
  assert.ok(verifySignature("k", body, h, at(1_800_000_300)), "300 s late: inside the default window");
  assert.ok(verifySignature("k", body, h, at(1_799_999_700)), "300 s early: inside");
  assert.ok(!verifySignature("k", body, h, at(1_800_000_301)), "301 s late: outside");
  assert.ok(!verifySignature("k", body, h, at(1_799_999_699)), "301 s early: outside");
  assert.ok(verifySignature("k", body, h, { ...at(1_800_000_010), toleranceSeconds: 10 }));
  assert.ok(!verifySignature("k", body, h, { ...at(1_800_000_011), toleranceSeconds: 10 }));
  const v1 = h.split("v1=")[1];
  const now = at(1_800_000_000);
  assert.ok(
    verifySignature("k", body, `t=1800000000, v1=${"0".repeat(64)}, v1=${v1}`, now),
    "any v1 may match",
  );
  assert.ok(verifySignature("k", body, ` v1=${v1} ,t=1800000000`, now), "order and spaces do not matter");
  for (const bad of [
    undefined,
    "",
    `v1=${v1}`,
    `t=,v1=${v1}`,
    `t=18e8,v1=${v1}`,
    `t=1800000000x,v1=${v1}`,
    `t=x1800000000,v1=${v1}`,
    "t=1800000000",
    "t=1800000000,v1=",
    `t=1800000000,v0=${v1}`,
    `t=1800000000,v1=${v1.toUpperCase()}`,
    `t=1800000000,v1=${v1}00`,
    `t=1800000000,v1=x${v1}`,
    `t=1800000000,v1=${v1.slice(0, 62)}`,
  ]) {
    assert.equal(verifySignature("k", body, bad, now), false, String(bad));
  }
  // Without `now`, the clock is the machine's: a header signed now passes, one from 2027 does not.
  assert.ok(verifySignature("k", body, signBody("k", body, Date.now() / 1000)));
  assert.ok(!verifySignature("k", body, signBody("k", body, Date.now() / 1000 + 3600)));
});

test("smtpUrlProblem names what is wrong without quoting the URL", () => {
  const cases: Array<[string, string | undefined]> = [
    ["smtp://u:p@mail.example.com:587", undefined],
    ["smtps://mail.example.com", undefined],
    ["//mail.example.com:587", "is not a URL"],
    ["https://u:p@mail.example.com", "is not an smtp:// or smtps:// URL"],
    ["smtp://", "has no host"],
    ["smtp://u:p@mail.example.com?ignoreTLS=true", "has query options"],
  ];
  for (const [url, want] of cases) {
    const got = smtpUrlProblem(url);
    if (want === undefined) assert.equal(got, undefined, url);
    else assert.ok(got?.startsWith(want), `${url}: ${got}`);
  }
});

test("smtpTransportOptions: port, IPv6 host, TLS required off loopback only, login decoded", () => {
  assert.deepEqual(smtpTransportOptions("smtp://de%3Aploy:p%25w@[2001:db8::1]:2525"), {
    host: "2001:db8::1",
    port: 2525,
    secure: false,
    requireTLS: true,
    auth: { user: "de:ploy", pass: "p%w" },
  });
  assert.deepEqual(smtpTransportOptions("smtp://127.0.0.1:25"), {
    host: "127.0.0.1",
    port: 25,
    secure: false,
    requireTLS: false,
  });
  assert.deepEqual(smtpTransportOptions("smtp://localhost").requireTLS, false);
  // A password that is no valid escape is kept as written rather than refused.
  assert.deepEqual(smtpTransportOptions("smtps://u:100%25%E0@mail.example.com").auth, {
    user: "u",
    pass: "100%25%E0",
  });
  assert.deepEqual(smtpTransportOptions("smtps://:only-pass@mail.example.com").auth, {
    user: "",
    pass: "only-pass",
  });
  assert.throws(
    () => smtpTransportOptions("smtp://u:p@mail.example.com?secure=false"),
    (e: Error) => e instanceof PermanentNotifyError && /^smtpUrl has query options/.test(e.message),
  );
});

test("notifiersFrom: the log always; each other channel only when configured; email needs both URL and addresses", () => {
  const names = (s: Parameters<typeof notifiersFrom>[0]) => notifiersFrom(s).map((n) => n.name);
  assert.deepEqual(names({ logsDir: "/tmp/x" }), ["log"]);
  assert.deepEqual(names({ logsDir: "/tmp/x", smtpUrl: "smtp://127.0.0.1" }), ["log"]);
  assert.deepEqual(names({ logsDir: "/tmp/x", email: { from: "a@x", to: ["b@x"] } }), ["log"]);
  const all = notifiersFrom({
    logsDir: "/tmp/x",
    slackWebhookUrl: "https://hooks.slack.com/services/T0/B0/xyz",
    webhookUrl: "https://h.example/hook",
    webhookSecret: "whsec-1",
    smtpUrl: "smtp://u:p%40ss@127.0.0.1:25",
    email: { from: "a@x", to: ["b@x"] },
  });
  assert.deepEqual(
    all.map((n) => [n.name, n.secrets]),
    [
      ["log", []],
      ["slack", ["https://hooks.slack.com/services/T0/B0/xyz", "/services/T0/B0/xyz"]],
      ["webhook", ["https://h.example/hook", "whsec-1"]],
      ["email", ["smtp://u:p%40ss@127.0.0.1:25", "p@ss"]],
    ],
  );
  assert.deepEqual(notifiersFrom({ logsDir: "/tmp/x", webhookUrl: "https://h.example/hook" })[1].secrets, [
    "https://h.example/hook",
  ]);
});
