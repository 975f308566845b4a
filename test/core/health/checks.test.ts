import { after, before, test } from "node:test";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import * as http from "node:http";
import * as https from "node:https";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import assert from "node:assert/strict";
import { runGate, type GateSpec } from "../../../src/core/health/run";
import { httpProbe } from "../../../src/core/health/http";
import { tcpProbe } from "../../../src/core/health/tcp";
import { postgresProbe } from "../../../src/core/health/postgres";
import { startTarget, type Target } from "../../helpers/http-targets";
import { freePort, startPostgres, type TestPostgres } from "../../helpers/postgres";

const fast = { delaySeconds: 0.05, timeoutSeconds: 1 };
const started: Target[] = [];
const target = async (...a: Parameters<typeof startTarget>) => {
  const t = await startTarget(...a);
  started.push(t);
  return t;
};
let pg: TestPostgres;

before(async () => {
  pg = await startPostgres();
});
after(async () => {
  await Promise.all(started.map((t) => t.close()));
  await pg.close();
});

const failed = async (spec: GateSpec) => {
  const r = await runGate(spec);
  assert.equal(r.ok, false, "the gate should have failed");
  return r.ok ? "" : r.message;
};

test("503 then 200: passes on the second attempt", { timeout: 30_000 }, async () => {
  const t = await target((n) => (n === 1 ? [503] : [200]));
  const r = await runGate({ url: t.url, retries: 3, ...fast });
  assert.equal(r.ok, true);
  assert.deepEqual(
    r.attempts.map((a) => a.status),
    [503, 200],
  );
});

test(
  "slow to start: connection refused until the server listens, then passes",
  { timeout: 30_000 },
  async () => {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}/health`;
    const later = new Promise<void>((resolve) =>
      setTimeout(() => target(() => [200], port).then(() => resolve()), 400),
    );
    const r = await runGate({ url, retries: 40, delaySeconds: 0.05, timeoutSeconds: 1 });
    await later;
    assert.equal(r.ok, true);
    assert.match(r.attempts[0].detail ?? "", /ECONNREFUSED/);
    assert.equal(r.attempts.at(-1)?.status, 200);
  },
);

test(
  "flapping: one pass is enough by default, a steady streak is not reached",
  { timeout: 30_000 },
  async () => {
    const t = await target((n) => (n % 2 === 1 ? [200] : [503]));
    assert.equal((await runGate({ url: t.url, retries: 4, ...fast })).ok, true);
    const again = await target((n) => (n % 2 === 1 ? [200] : [503]));
    const msg = await failed({ url: again.url, retries: 6, successThreshold: 2, ...fast });
    assert.match(msg, /2 consecutive healthy answers are out of reach with 0 attempt/);
    assert.equal(msg.match(/ ok status 200/g)?.length, 3);
  },
);

test("hang: each attempt times out and the summary says so", { timeout: 30_000 }, async () => {
  const t = await target(() => "hang");
  const msg = await failed({ url: t.url, retries: 2, delaySeconds: 0.05, timeoutSeconds: 0.3 });
  assert.equal(msg.match(/timed out after 300 ms/g)?.length, 2);
  assert.equal(t.hits(), 2);
});

test("connection reset is reported as ECONNRESET", { timeout: 30_000 }, async () => {
  const t = await target(() => "reset");
  const msg = await failed({ url: t.url, retries: 2, ...fast });
  assert.match(msg, /FAILED ECONNRESET/);
});

test("200 with a bad body fails the JSON assertion; a good body passes", { timeout: 30_000 }, async () => {
  const bad = await target(() => [200, JSON.stringify({ status: "ok", checks: { db: "down" } })]);
  const msg = await failed({ url: bad.url, retries: 2, json: { path: "checks.db", equals: "ok" }, ...fast });
  assert.match(msg, /status 200, body checks\.db is "down", expected "ok"/);
  const html = await target(() => [200, "<html>maintenance</html>"]);
  assert.match(
    await failed({ url: html.url, retries: 1, json: { path: "status", equals: "ok" }, ...fast }),
    /body is not JSON/,
  );
  const good = await target(() => [200, JSON.stringify({ status: "ok", checks: { db: "ok" } })]);
  assert.equal(
    (await runGate({ url: good.url, retries: 1, json: { path: "checks.db", equals: "ok" }, ...fast })).ok,
    true,
  );
});

test("expected status set: 204 accepted when listed, refused otherwise", { timeout: 30_000 }, async () => {
  const t = await target(() => [204, ""]);
  assert.equal((await httpProbe({ url: t.url, expectStatus: [200, 204] }, 1000)).ok, true);
  assert.match((await httpProbe({ url: t.url }, 1000)).detail ?? "", /status 204, expected 200/);
});

test("overall deadline stops retries early", { timeout: 30_000 }, async () => {
  const t = await target(() => [503]);
  const msg = await failed({
    url: t.url,
    retries: 100,
    delaySeconds: 0.2,
    timeoutSeconds: 1,
    deadlineSeconds: 0.5,
  });
  assert.match(msg, /overall deadline of 500 ms/);
  // Attempts start at >= 0, 200 and 400 ms; no fourth can start before the 500 ms deadline.
  assert.ok(t.hits() >= 1 && t.hits() <= 3, `${t.hits()} attempts`);
});

test("TCP: open port passes, closed port is refused", { timeout: 30_000 }, async () => {
  assert.equal((await tcpProbe({ host: "127.0.0.1", port: pg.port }, 1000)).ok, true);
  const closed = await freePort();
  assert.match((await tcpProbe({ host: "127.0.0.1", port: closed }, 1000)).detail ?? "", /ECONNREFUSED/);
});

test(
  "PostgreSQL: SELECT 1 passes; a wrong password fails without showing it; down fails the gate",
  { timeout: 30_000 },
  async () => {
    assert.deepEqual(await postgresProbe(pg.url(), 2000), { ok: true });
    const wrong = pg.url().replace(`:${pg.password}@`, ":not-the-password@");
    const r = await postgresProbe(wrong, 2000);
    assert.equal(r.ok, false);
    assert.ok(!(r.detail ?? "").includes("not-the-password"));
    const app = await target(() => [200]);
    assert.equal((await runGate({ url: app.url, postgresUrl: pg.url(), retries: 1, ...fast })).ok, true);
    await pg.stop();
    try {
      const msg = await failed({ url: app.url, postgresUrl: pg.url(), retries: 2, ...fast });
      assert.match(msg, /FAILED status 200, postgres: ECONNREFUSED/);
      assert.ok(!msg.includes(pg.password), "the password never reaches the message");
    } finally {
      await pg.start();
    }
  },
);

test("HTTPS: a self-signed certificate is refused unless its CA is given", { timeout: 30_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), "sd-health-tls-"));
  try {
    execFileSync(
      "openssl",
      [
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=127.0.0.1",
        "-addext",
        "subjectAltName=IP:127.0.0.1",
        "-keyout",
        join(dir, "key.pem"),
        "-out",
        join(dir, "cert.pem"),
      ],
      { stdio: "ignore" },
    );
    const cert = readFileSync(join(dir, "cert.pem"), "utf8");
    const server = https.createServer({ key: readFileSync(join(dir, "key.pem")), cert }, (_req, res) => {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ status: "ok" }));
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const url = `https://127.0.0.1:${(server.address() as AddressInfo).port}/health`;
    try {
      const refused = await httpProbe({ url }, 2000);
      assert.equal(refused.ok, false);
      assert.match(refused.detail ?? "", /SELF_SIGNED/);
      assert.deepEqual(await httpProbe({ url, ca: cert, json: { path: "status", equals: "ok" } }, 2000), {
        ok: true,
        status: 200,
      });
      // The deploy's gate (no --ca there): the advice is about the certificate, not logs and retries.
      const msg = await failed({ url, retries: 1, ...fast });
      assert.match(msg, /FAILED DEPTH_ZERO_SELF_SIGNED_CERT/);
      assert.match(
        msg,
        /not trusted here .*`--ca FILE` on the CLI; for `safe-deploy up` and `pulumi up`, set NODE_EXTRA_CA_CERTS=FILE/,
      );
      assert.doesNotMatch(msg, /raise retries/);
    } finally {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test(
  "a redirect is not followed: the failure says where it points and how to fix it, not to raise retries",
  { timeout: 30_000 },
  async () => {
    const server = http.createServer((_req, res) => {
      res.writeHead(301, { location: "https://app.example.com/health?token=s3cret-token" });
      res.end();
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/health`;
      const r = await httpProbe({ url }, 1000);
      assert.equal(r.ok, false);
      assert.match(
        r.detail ?? "",
        /^status 301, expected 200; redirects to https:\/\/app\.example\.com\/health\?token=s3cret-token$/,
      );
      const msg = await failed({ url, retries: 1, ...fast });
      assert.match(
        msg,
        /FAILED status 301, expected 200; redirects to https:\/\/app\.example\.com\/health\?token=\*\*\* \(\d+ ms\)/,
      );
      assert.match(
        msg,
        /redirect, which the check does not follow: poll the URL it redirects to \(`health\.url`/,
      );
      assert.doesNotMatch(msg, /raise retries/);
      assert.ok(!msg.includes("s3cret-token"), "a token in the Location is masked");
    } finally {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  },
);
