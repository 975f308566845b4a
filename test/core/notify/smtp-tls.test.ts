// Issue 15 B: a network attacker who strips STARTTLS must not receive the SMTP login.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { createNetwork, docker, removeNetwork } from "../../helpers/docker";
import { startSmtpReceiver } from "../../helpers/receivers";
import {
  emailNotifier,
  notifyAll,
  smtpTransportOptions,
  type NotificationEvent,
} from "../../../src/core/notify";
import { secretValueProblems } from "../../../src/config/secrets";

const event: NotificationEvent = {
  type: "SUCCESS",
  message: "deployed r-7",
  stack: "production",
  time: new Date(0),
};
const fast = { attempts: 2, timeoutMs: 10_000, baseDelayMs: 1, maxDelayMs: 1 };
const email = { from: "deploy@example.com", to: ["ops@example.com"] };
let network: string;
let gateway: string;

before(async () => {
  // A host address that is not loopback: the gateway of a Docker network of our own, on this machine.
  network = await createNetwork("smtp");
  gateway = (
    await docker(["network", "inspect", "-f", "{{(index .IPAM.Config 0).Gateway}}", network])
  ).trim();
  assert.match(gateway, /^\d+\.\d+\.\d+\.\d+$/);
});
after(async () => {
  if (network) await removeNetwork(network);
});

test("smtp:// to a server that offers no STARTTLS (stripped): no login is sent, the failure says why and is not retried", async () => {
  const smtp = await startSmtpReceiver("deploy", "smtp-pa55word", gateway);
  try {
    const n = emailNotifier({ smtpUrl: `smtp://deploy:smtp-pa55word@${gateway}:${smtp.port}`, ...email });
    const [r] = await notifyAll([n], event, { retry: fast });
    assert.deepEqual(smtp.logins, [], "the server saw no AUTH");
    assert.equal(smtp.mails.length, 0);
    assert.equal(r.ok, false);
    assert.equal(r.attempts, 1);
    assert.match(r.error!, /did not start TLS.*login and mail were not sent: use smtps:\/\//);
    assert.ok(!r.error!.includes("smtp-pa55word"));
  } finally {
    await smtp.close();
  }
});

test("plain SMTP to loopback still works (a local relay); smtps:// is TLS from the start", async () => {
  const smtp = await startSmtpReceiver("deploy", "smtp-pa55word");
  try {
    const n = emailNotifier({ smtpUrl: `smtp://deploy:smtp-pa55word@127.0.0.1:${smtp.port}`, ...email });
    const [r] = await notifyAll([n], event, { retry: fast });
    assert.equal(r.ok, true, r.error);
    assert.equal(smtp.mails.length, 1);
  } finally {
    await smtp.close();
  }
  assert.deepEqual(smtpTransportOptions("smtps://u:p%40ss@mail.example.com"), {
    host: "mail.example.com",
    secure: true,
    requireTLS: false,
    auth: { user: "u", pass: "p@ss" },
  });
  assert.equal(smtpTransportOptions("smtp://u:p@mail.example.com:587").requireTLS, true);
  assert.equal(smtpTransportOptions("smtp://u:p@[::1]:25").requireTLS, false);
});

test("config: query options that could turn TLS off are refused, naming the key, never quoting the URL", () => {
  for (const q of ["ignoreTLS=true", "requireTLS=false", "tls.rejectUnauthorized=false", "secure=false"]) {
    const [p] = secretValueProblems({ smtpUrl: `smtps://u:s3cr3t@mail.example.com:465?${q}` });
    assert.match(p, /^smtpUrl: has query options .*not supported/);
    assert.ok(!p.includes("s3cr3t") && !p.includes("mail.example.com"), p);
  }
  assert.deepEqual(secretValueProblems({ smtpUrl: "smtp://u:p@mail.example.com:587" }), []);
  assert.match(secretValueProblems({ smtpUrl: "https://mail.example.com" })[0], /^smtpUrl: is not an smtp/);
});
