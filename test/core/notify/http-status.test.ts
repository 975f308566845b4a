// Issue 22: what a webhook delivery makes of each HTTP answer (retried or not, the text a user reads),
// the request it sends, and the log line of an event without release or commit. Loopback receivers.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import * as http from "node:http";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  fileNotifier,
  notifyAll,
  verifySignature,
  webhookNotifier,
  type NotificationEvent,
} from "../../../src/core/notify";

const event: NotificationEvent = {
  type: "INFO",
  message: "deployed",
  stack: "production",
  time: new Date(0),
};
const retry = { attempts: 2, timeoutMs: 5000, baseDelayMs: 1, maxDelayMs: 1 };
const servers: http.Server[] = [];
after(async () => {
  for (const s of servers) {
    s.closeAllConnections();
    await new Promise((r) => s.close(r));
  }
});

/** A receiver answering every request with `answer`; returns its URL and what it received. */
async function receiver(answer: (res: http.ServerResponse) => void) {
  const seen: Array<{ method?: string; headers: http.IncomingHttpHeaders; body: string }> = [];
  const s = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      seen.push({ method: req.method, headers: req.headers, body: Buffer.concat(chunks).toString() });
      answer(res);
    });
  });
  servers.push(s);
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  return { url: `http://127.0.0.1:${(s.address() as AddressInfo).port}/hook`, seen };
}

test("each status: 2xx delivered; 408, 429 and 5xx retried; other 3xx/4xx not, with the receiver's text", async () => {
  const cases: Array<[number, string, { ok: boolean; attempts: number; error?: string }, string?]> = [
    [200, "", { ok: true, attempts: 1 }],
    [204, "", { ok: true, attempts: 1 }],
    [299, "", { ok: true, attempts: 1 }],
    [
      300,
      "",
      { ok: false, attempts: 1, error: "HTTP 300 (redirected to /e): configure that URL instead" },
      "/e",
    ],
    [
      302,
      "",
      { ok: false, attempts: 1, error: "HTTP 302 (redirected to /new): configure that URL instead" },
      "/new",
    ],
    [
      399,
      "",
      { ok: false, attempts: 1, error: "HTTP 399 (redirected to /n): configure that URL instead" },
      "/n",
    ],
    [301, "  moved  ", { ok: false, attempts: 1, error: "HTTP 301: moved" }],
    [400, "  bad payload \n", { ok: false, attempts: 1, error: "HTTP 400: bad payload" }, "/ignored"],
    [408, "", { ok: false, attempts: 2, error: "HTTP 408" }],
    [429, "slow down", { ok: false, attempts: 2, error: "HTTP 429: slow down" }],
    [500, "", { ok: false, attempts: 2, error: "HTTP 500" }],
    [599, "", { ok: false, attempts: 2, error: "HTTP 599" }],
    [499, "", { ok: false, attempts: 1, error: "HTTP 499" }],
  ];
  for (const [status, text, want, location] of cases) {
    const rx = await receiver((res) => {
      res.writeHead(status, location ? { location } : {}).end(text);
    });
    const [r] = await notifyAll([webhookNotifier(rx.url)], event, { retry });
    assert.deepEqual(
      { ok: r.ok, attempts: r.attempts, error: r.error },
      { ...want, error: want.error },
      `${status}`,
    );
  }
});

test("the receiver's text: chunks joined, trimmed, the first 200 characters", async () => {
  const rx = await receiver((res) => {
    res.writeHead(400);
    res.write("first ");
    setTimeout(() => res.end(`second ${"x".repeat(300)}`), 10);
  });
  const [r] = await notifyAll([webhookNotifier(rx.url)], event, { retry });
  assert.equal(r.error, `HTTP 400: ${`first second ${"x".repeat(300)}`.slice(0, 200)}`);
  const utf = await receiver((res) => {
    res.writeHead(400);
    const b = Buffer.from("café", "utf8");
    res.write(b.subarray(0, 4)); // cut inside the é: decoded as UTF-8 across chunks
    setTimeout(() => res.end(b.subarray(4)), 10);
  });
  const [u] = await notifyAll([webhookNotifier(utf.url)], event, { retry });
  assert.equal(u.error, "HTTP 400: café");
});

test("the request: POST, JSON, user-agent safe-deploy, event type header, signature over the exact body", async () => {
  const rx = await receiver((res) => res.writeHead(200).end());
  const [r] = await notifyAll([webhookNotifier(rx.url, "k3y")], event, { retry });
  assert.ok(r.ok);
  const got = rx.seen[0];
  assert.equal(got.method, "POST");
  assert.equal(got.headers["user-agent"], "safe-deploy");
  assert.equal(got.headers["content-type"], "application/json");
  assert.equal(got.headers["x-safe-deploy-event"], "INFO");
  assert.equal(Number(got.headers["content-length"]), Buffer.byteLength(got.body));
  assert.ok(verifySignature("k3y", got.body, String(got.headers["x-safe-deploy-signature"])));
});

test("verifySignature refuses a t that is not all digits even when the MAC over it is right", () => {
  const body = "{}";
  const now = { now: new Date(1_800_000_000 * 1000) };
  for (const t of ["1800000000.0", "18e8", " 1800000000", "1800000000 ", "+1800000000"]) {
    const mac = createHmac("sha256", "k").update(`${t}.${body}`).digest("hex");
    assert.equal(verifySignature("k", body, `t=${t},v1=${mac}`, now), false, JSON.stringify(t));
  }
  const mac = createHmac("sha256", "k").update(`1800000000.${body}`).digest("hex");
  assert.equal(verifySignature("k", body, `t=1800000000,v1=${mac}`, now), true);
});

test("the log line of an event without release or commit names only the stack", async () => {
  const dir = mkdtempSync(join(tmpdir(), "sd-notify-log-"));
  try {
    const [r] = await notifyAll([fileNotifier(join(dir, "n.log"))], event);
    assert.ok(r.ok);
    assert.match(readFileSync(join(dir, "n.log"), "utf8"), /\] INFO: deployed \(stack=production\)\n$/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
