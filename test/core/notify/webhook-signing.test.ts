// Issue 15 C: the webhook signature covers time and body; a replay outside the window is refused, and
// no notification goes over plain http:// to another machine.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHmac, timingSafeEqual } from "node:crypto";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import {
  notifyAll,
  slackNotifier,
  verifySignature,
  webhookNotifier,
  type NotificationEvent,
} from "../../../src/core/notify";
import { secretValueProblems } from "../../../src/config/secrets";

const SECRET = "whsec-0123456789";
const event: NotificationEvent = {
  type: "SUCCESS",
  message: "deployed r-7",
  stack: "production",
  time: new Date(0),
};
const fast = { attempts: 1, timeoutMs: 5000, baseDelayMs: 1, maxDelayMs: 1 };

/**
 * A receiver written from the README's recipe alone (not with `verifySignature`): parse `t` and `v1`,
 * HMAC `"<t>.<body>"`, compare in constant time, refuse `t` more than 300 s from its own clock.
 */
async function startVerifyingReceiver(clock: () => number) {
  const seen: Array<{ headers: http.IncomingHttpHeaders; body: string; status: number }> = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks).toString("utf8");
      const header = String(req.headers["x-safe-deploy-signature"] ?? "");
      const f = Object.fromEntries(header.split(",").map((kv) => kv.split("=", 2)));
      const want = createHmac("sha256", SECRET).update(`${f.t}.${body}`).digest();
      const got = Buffer.from(String(f.v1 ?? ""), "hex");
      const fresh = /^\d+$/.test(f.t ?? "") && Math.abs(clock() - Number(f.t)) <= 300;
      const status = fresh && got.length === want.length && timingSafeEqual(got, want) ? 200 : 401;
      seen.push({ headers: req.headers, body, status });
      res.writeHead(status).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as AddressInfo).port;
  return {
    seen,
    url: `http://127.0.0.1:${port}/hook`,
    /** Sends a captured request again, byte for byte (what an eavesdropper would do). */
    replay: (headers: Record<string, string>, body: string) =>
      new Promise<number>((resolve, reject) => {
        const req = http.request(`http://127.0.0.1:${port}/hook`, { method: "POST", headers }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.on("error", reject);
        req.end(body);
      }),
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

test("the signature covers the timestamp: a fresh delivery passes, its replay outside the window and a re-dated copy fail", async () => {
  let receiverNow = 1_800_000_000;
  const rx = await startVerifyingReceiver(() => receiverNow);
  try {
    const sender = webhookNotifier(rx.url, SECRET, () => new Date(1_800_000_000 * 1000));
    const [r] = await notifyAll([sender], event, { retry: fast });
    assert.equal(r.ok, true, r.error);
    const first = rx.seen[0];
    assert.equal(first.status, 200);
    assert.match(String(first.headers["x-safe-deploy-signature"]), /^t=1800000000,v1=[0-9a-f]{64}$/);
    const captured = {
      "content-type": "application/json",
      "x-safe-deploy-signature": String(first.headers["x-safe-deploy-signature"]),
    };
    // Within the window a replay is indistinguishable (receivers dedupe by body if they must)...
    receiverNow += 60;
    assert.equal(await rx.replay(captured, first.body), 200);
    // ...ten minutes later it is refused,
    receiverNow += 600;
    assert.equal(await rx.replay(captured, first.body), 401);
    // and moving `t` forward without the secret breaks the MAC.
    const redated = captured["x-safe-deploy-signature"].replace(/^t=\d+/, `t=${receiverNow}`);
    assert.equal(await rx.replay({ ...captured, "x-safe-deploy-signature": redated }, first.body), 401);

    // verifySignature (for Node receivers) agrees with the recipe.
    const h = captured["x-safe-deploy-signature"];
    assert.ok(verifySignature(SECRET, first.body, h, { now: new Date(1_800_000_100 * 1000) }));
    assert.ok(!verifySignature(SECRET, first.body, h, { now: new Date(1_800_000_660 * 1000) }));
    assert.ok(!verifySignature(SECRET, first.body, redated, { now: new Date(receiverNow * 1000) }));
    assert.ok(!verifySignature("another", first.body, h, { now: new Date(1_800_000_000 * 1000) }));
    assert.ok(!verifySignature(SECRET, first.body + " ", h, { now: new Date(1_800_000_000 * 1000) }));
  } finally {
    await rx.close();
  }
});

test("http:// to another machine is refused at send time (nothing sent, not retried); loopback http:// is allowed", async () => {
  for (const n of [
    webhookNotifier("http://hooks.example.invalid/deploy", SECRET),
    slackNotifier("http://hooks.example.invalid/services/T0/B0/xyz0123456789"),
  ]) {
    const [r] = await notifyAll([n], event, { retry: { ...fast, attempts: 3 } });
    assert.equal(r.ok, false);
    assert.equal(r.attempts, 1, "not retried");
    assert.match(r.error!, /refusing to send: the URL is plain http:\/\/ to another machine.*use https:\/\//);
  }
});

test("config validation refuses http:// webhook URLs except on loopback, naming the key", () => {
  const problems = secretValueProblems({
    webhookUrl: "http://hooks.example.com/deploy",
    slackWebhookUrl: "http://hooks.slack.com/services/T0/B0/x",
  });
  assert.equal(problems.length, 2);
  assert.match(
    problems.join("\n"),
    /^webhookUrl: is plain http:\/\/ to another machine.*pulumi config set --secret webhookUrl/m,
  );
  assert.match(problems.join("\n"), /^slackWebhookUrl: is plain http:\/\//m);
  assert.ok(!problems.join("\n").includes("hooks.example.com"), "the URL (a credential) is not quoted");
  for (const ok of [
    "https://hooks.example.com/d",
    "http://127.0.0.1:9000/d",
    "http://localhost/d",
    "http://[::1]:8/d",
  ])
    assert.deepEqual(secretValueProblems({ webhookUrl: ok }), [], ok);
});

test('the MAC is over the UTF-8 bytes sent: a receiver hashing the raw body verifies a message with "café" (issue 22)', async () => {
  // Receivers in other languages hash the bytes they got, not a decoded string: this one never decodes.
  const got: Array<{ raw: Buffer; header: string; ok: boolean }> = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const raw = Buffer.concat(chunks);
      const header = String(req.headers["x-safe-deploy-signature"] ?? "");
      const f = Object.fromEntries(header.split(",").map((kv) => kv.split("=", 2)));
      const want = createHmac("sha256", SECRET)
        .update(Buffer.concat([Buffer.from(`${f.t}.`, "ascii"), raw]))
        .digest();
      const mac = Buffer.from(String(f.v1 ?? ""), "hex");
      const ok = mac.length === want.length && timingSafeEqual(mac, want);
      got.push({ raw, header, ok });
      res.writeHead(ok ? 200 : 401).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  try {
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
    const sender = webhookNotifier(url, SECRET, () => new Date(1_800_000_000 * 1000));
    const message = "la migración falló en «café» ☕";
    const [r] = await notifyAll([sender], { ...event, type: "ERROR", message }, { retry: fast });
    assert.equal(got.length, 1);
    assert.ok(got[0].raw.includes(Buffer.from(message, "utf8")), "the body goes out as UTF-8");
    assert.equal(got[0].ok, true, "the receiver's HMAC of the raw bytes matches the header");
    assert.equal(r.ok, true, r.error);
    // verifySignature, given the body decoded as UTF-8, agrees.
    assert.ok(
      verifySignature(SECRET, got[0].raw.toString("utf8"), got[0].header, {
        now: new Date(1_800_000_000 * 1000),
      }),
    );
  } finally {
    await new Promise<void>((r) => server.close(() => r()));
  }
});
