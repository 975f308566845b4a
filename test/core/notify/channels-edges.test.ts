// The channels' edges the other notify files do not reach in process (issue 22, channels.ts survivors):
// an https webhook (a TLS receiver on loopback, its self-signed certificate made by openssl here), a
// response cut mid-body, a whitespace-only error body, and email: the default SMTP timeouts, the
// deadline ending the SMTP connection, and the refusals that are not retried (EAUTH, EENVELOPE, ETLS).
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { once } from "node:events";
import * as http from "node:http";
import * as https from "node:https";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import * as net from "node:net";
import type { AddressInfo } from "node:net";
import { networkInterfaces, tmpdir } from "node:os";
import { join } from "node:path";
import {
  PermanentNotifyError,
  emailNotifier,
  webhookNotifier,
  type NotificationEvent,
} from "../../../src/core/notify";
import { within } from "../../helpers/bounded";
import { startSmtpReceiver } from "../../helpers/receivers";

const event: NotificationEvent = {
  type: "WARNING",
  message: "soak check slow",
  stack: "staging",
  release: "r-9",
  time: new Date(0),
};
const email = { from: "deploy@example.com", to: ["ops@example.com"] };
const dir = mkdtempSync(join(tmpdir(), "sd-channels-"));
const closers: Array<() => Promise<unknown>> = [];
after(async () => {
  for (const c of closers.reverse()) await c();
  rmSync(dir, { recursive: true, force: true });
});

/** Listens on 127.0.0.1 (or `host`), closes it after the file; returns the port. */
async function listen(server: net.Server, host = "127.0.0.1"): Promise<number> {
  server.listen(0, host);
  await once(server, "listening");
  closers.push(async () => {
    if ("closeAllConnections" in server) (server as http.Server).closeAllConnections();
    await new Promise((r) => server.close(r));
  });
  return (server.address() as AddressInfo).port;
}

/** A signal for one send: aborted after `ms` (only a mutant or a bug ever waits that long). */
const deadline = (ms = 20_000) => AbortSignal.timeout(ms);

let cert: Buffer;
let key: Buffer;
before(() => {
  execFileSync(
    "openssl",
    ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1"]
      .concat(["-addext", "subjectAltName=IP:127.0.0.1", "-keyout", join(dir, "key.pem")])
      .concat(["-out", join(dir, "cert.pem")]),
    { stdio: "ignore" },
  );
  cert = readFileSync(join(dir, "cert.pem"));
  key = readFileSync(join(dir, "key.pem"));
});

test("an https:// webhook is sent over TLS: the receiver gets the JSON body", async () => {
  const bodies: string[] = [];
  const server = https.createServer({ cert, key }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      bodies.push(Buffer.concat(chunks).toString());
      res.writeHead(200).end("ok");
    });
  });
  const port = await listen(server);
  // The receiver's own certificate is trusted for this send (node's global agent passes `ca` on).
  const ca = https.globalAgent.options.ca;
  https.globalAgent.options.ca = cert;
  try {
    await webhookNotifier(`https://127.0.0.1:${port}/hook`).send(event, deadline());
  } finally {
    https.globalAgent.options.ca = ca;
  }
  assert.equal(bodies.length, 1);
  assert.equal(JSON.parse(bodies[0]).message, "soak check slow");
});

test("a webhook answer cut off mid-body fails the send at once with the connection's error", async () => {
  const server = http.createServer((req, res) => {
    req.resume();
    req.on("end", () => {
      res.writeHead(200, { "content-length": "100" });
      res.write("only ten b", () => res.socket?.destroy());
    });
  });
  const port = await listen(server);
  await assert.rejects(
    within("the send to fail", webhookNotifier(`http://127.0.0.1:${port}/hook`).send(event, deadline())),
    (e: Error & { code?: string }) => e.message === "aborted" && e.code === "ECONNRESET",
  );
});

test("a webhook error whose body is only blanks: the message is the status alone", async () => {
  const server = http.createServer((req, res) => {
    req.resume();
    req.on("end", () => res.writeHead(400).end(" \n\t \n"));
  });
  const port = await listen(server);
  await assert.rejects(webhookNotifier(`http://127.0.0.1:${port}/hook`).send(event, deadline()), {
    name: "Error",
    message: "HTTP 400",
  });
});

/** An SMTP "server" that accepts connections and never says a word; resolves each connection's end. */
async function silentSmtp() {
  const ended: Array<Promise<unknown>> = [];
  const sockets: net.Socket[] = [];
  const server = net.createServer((socket) => {
    sockets.push(socket);
    ended.push(once(socket, "close"));
    socket.on("error", () => {});
  });
  const port = await listen(server);
  // A connection left open (the bug this file guards against) must not keep the file from ending.
  closers.push(async () => sockets.forEach((s) => s.destroy()));
  return { port, ended, connected: () => ended.length };
}

test("email without timeoutMs gives up on a server that never greets after the default 10 s, inside a 20 s deadline", async () => {
  const smtp = await silentSmtp();
  const n = emailNotifier({ smtpUrl: `smtp://127.0.0.1:${smtp.port}`, ...email });
  await assert.rejects(n.send(event, deadline(20_000)), /Greeting never received/);
});

test("the deadline ends the SMTP connection: the server sees it close, not after the SMTP timeouts", async () => {
  const smtp = await silentSmtp();
  const n = emailNotifier({ smtpUrl: `smtp://127.0.0.1:${smtp.port}`, ...email, timeoutMs: 120_000 });
  const ac = new AbortController();
  const sending = n.send(event, ac.signal);
  sending.catch(() => {});
  // Wait for the connection, bounded.
  for (let i = 0; i < 400 && !smtp.connected(); i++) await new Promise((r) => setTimeout(r, 50));
  assert.equal(smtp.connected(), 1, "the notifier connected");
  ac.abort(new Error("the notify deadline"));
  await assert.rejects(within("the send to stop", sending), { name: "AbortError" });
  await within("the SMTP connection to be closed", smtp.ended[0]);
});

test("a refused login and a mail without recipients fail for good (not retried), with the server's words", async () => {
  const smtp = await startSmtpReceiver("deploy", "right-pw");
  closers.push(smtp.close);
  const url = `smtp://deploy:wrong-pw@127.0.0.1:${smtp.port}`;
  await assert.rejects(emailNotifier({ smtpUrl: url, ...email }).send(event, deadline()), (e: Error) => {
    assert.ok(e instanceof PermanentNotifyError, `${e.name}: ${e.message}`);
    assert.match(e.message, /Invalid login: 535 .*Invalid username or password/);
    return true;
  });
  const good = `smtp://deploy:right-pw@127.0.0.1:${smtp.port}`;
  await assert.rejects(
    emailNotifier({ smtpUrl: good, from: email.from, to: [] }).send(event, deadline()),
    (e: Error) => {
      assert.ok(e instanceof PermanentNotifyError, `${e.name}: ${e.message}`);
      assert.match(e.message, /No recipients defined/);
      return true;
    },
  );
  assert.equal(smtp.mails.length, 0);
});

/** An address of this machine that is not loopback (smtp:// must upgrade to TLS there). */
const outward = Object.values(networkInterfaces())
  .flat()
  .find((a) => a && a.family === "IPv4" && !a.internal)?.address;

test(
  "smtp:// to a non-loopback server without STARTTLS fails for good, saying TLS did not start",
  { skip: outward ? false : "no non-loopback IPv4 address on this machine" },
  async () => {
    const smtp = await startSmtpReceiver("deploy", "pw", outward);
    closers.push(smtp.close);
    const n = emailNotifier({ smtpUrl: `smtp://deploy:pw@${outward}:${smtp.port}`, ...email });
    await assert.rejects(n.send(event, deadline()), (e: Error) => {
      assert.ok(e instanceof PermanentNotifyError, `${e.name}: ${e.message}`);
      assert.match(
        e.message,
        /^the SMTP server did not start TLS \(.+\), so the login and mail were not sent: use smtps:\/\/ \(port 465\)/,
      );
      return true;
    });
    assert.deepEqual(smtp.logins, [], "no login was sent");
  },
);
