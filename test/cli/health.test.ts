import { after, test } from "node:test";
import assert from "node:assert/strict";
import { execFile, execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import https from "node:https";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runHealth, DEFAULT_SOAK } from "../../src/cli/commands/health";
import { CheckFailedError, ConfigError } from "../../src/core/errors";
import { startTarget, type Target } from "../helpers/http-targets";

const started: Target[] = [];
const target = async (...a: Parameters<typeof startTarget>) => {
  const t = await startTarget(...a);
  started.push(t);
  return t;
};
after(async () => {
  await Promise.all(started.map((t) => t.close()));
});
const lines: string[] = [];
const out = (l: string) => lines.push(l);
const fast = { delay: "0.02", soakDelay: "0.02", timeout: "1" };

test("passes on a healthy URL and reports the attempts", async () => {
  const t = await target((n) => (n === 1 ? [503] : [200]));
  const r = await runHealth({ url: t.url, retries: "3", ...fast }, out);
  assert.deepEqual(r, { attempts: 2, soaked: 0 });
  assert.match(lines.join("\n"), /attempt 1: failed \(503\)/);
});

test("an unhealthy URL is a CheckFailedError (exit 1) listing every attempt", async () => {
  const t = await target(() => [500]);
  await assert.rejects(runHealth({ url: t.url, retries: "2", ...fast }, out), (e: Error) => {
    assert.ok(e instanceof CheckFailedError);
    assert.equal((e as CheckFailedError).exitCode, 1);
    assert.equal(e.message.match(/FAILED status 500/g)?.length, 2);
    return true;
  });
});

test("bad flags are ConfigErrors (exit 2) naming the flag", async () => {
  const cases: [Parameters<typeof runHealth>[0], RegExp][] = [
    [{}, /`--url` is required/],
    [{ url: "ftp://x" }, /`--url` must be an http/],
    [{ url: "http://127.0.0.1:1/", retries: "0" }, /`--retries` must be an integer >= 1/],
    [{ url: "http://127.0.0.1:1/", delay: "soon" }, /`--delay` must be a number/],
    [{ url: "http://127.0.0.1:1/", expectStatus: ["200,abc"] }, /`--expect-status` takes HTTP status codes/],
    [{ url: "http://127.0.0.1:1/", soak: "-1" }, /`--soak` must be an integer >= 1/],
    [{ url: "http://127.0.0.1:1/", expectJson: "nothing" }, /`--expect-json` takes PATH=VALUE/],
    [
      { url: "https://127.0.0.1:1/", ca: "/nonexistent/ca.pem" },
      /`--ca` file \/nonexistent\/ca.pem cannot be read/,
    ],
  ];
  for (const [opts, msg] of cases) {
    await assert.rejects(runHealth(opts, out), (e: Error) => e instanceof ConfigError && msg.test(e.message));
  }
});

test("expected statuses and JSON body flags", async () => {
  const t = await target(() => [204, ""]);
  await assert.rejects(runHealth({ url: t.url, retries: "1", ...fast }, out), CheckFailedError);
  assert.equal(
    (await runHealth({ url: t.url, retries: "1", expectStatus: ["200,204"], ...fast }, out)).attempts,
    1,
  );
  const j = await target(() => [200, JSON.stringify({ db: { ok: true } })]);
  assert.equal(
    (await runHealth({ url: j.url, retries: "1", expectJson: "db.ok=true", ...fast }, out)).attempts,
    1,
  );
  await assert.rejects(
    runHealth({ url: j.url, retries: "1", expectJson: "db.ok=false", ...fast }, out),
    /body db\.ok is true, expected false/,
  );
});

test("soak: default 15 healthy answers in a row; one failure during the soak fails", async () => {
  const steady = await target(() => [200]);
  const r = await runHealth({ url: steady.url, soak: true, ...fast }, out);
  assert.deepEqual(r, { attempts: 1, soaked: DEFAULT_SOAK });
  assert.equal(steady.hits(), 1 + DEFAULT_SOAK);
  const dips = await target((n) => (n === 5 ? [502] : [200]));
  await assert.rejects(runHealth({ url: dips.url, soak: "10", ...fast }, out), (e: Error) => {
    assert.ok(e instanceof CheckFailedError);
    assert.match(e.message, /^soak after cutover failed: .*10 consecutive healthy answers are out of reach/);
    assert.match(e.message, /#4 \S+ FAILED status 502/);
    return true;
  });
  assert.equal(dips.hits(), 5, "the soak stops at the first failure");
});

test("--soak is paced by the stack's soak gap (2 s, health.soakDelaySeconds), not --delay's 10 s", async () => {
  const steady = await target(() => [200]);
  const seen: string[] = [];
  const r = await runHealth({ url: steady.url, soak: "2", timeout: "1" }, (l) => seen.push(l));
  assert.deepEqual(r, { attempts: 1, soaked: 2 });
  assert.ok(
    seen.includes("health: healthy; soaking 2 attempt(s), 2 s apart, every one must pass"),
    seen.join("\n"),
  );
});

test("bin/safe-deploy health --json: the result on stdout, healthy or not (exit 1), URL credentials masked", async () => {
  const ok = await target(() => [200]);
  const bad = await target(() => [503]);
  const bin = join(__dirname, "..", "..", "bin", "safe-deploy");
  const run = (args: string[]) =>
    new Promise<{ code: number; stdout: string }>((resolve) =>
      execFile(bin, ["health", "--json", "--timeout", "1", "--delay", "0.05", ...args], (e, stdout) =>
        resolve({ code: e ? ((e as { code?: number }).code ?? -1) : 0, stdout }),
      ),
    );
  const good = await run(["--url", ok.url, "--retries", "1"]);
  assert.equal(good.code, 0);
  assert.deepEqual(JSON.parse(good.stdout), { url: ok.url, healthy: true, attempts: 1, soaked: 0 });
  const withPass = bad.url.replace("http://", "http://u:hunter2@");
  const failed = await run(["--url", withPass, "--retries", "2"]);
  assert.equal(failed.code, 1);
  const j = JSON.parse(failed.stdout);
  assert.equal(j.healthy, false);
  assert.match(j.error, /failed/);
  assert.ok(!failed.stdout.includes("hunter2"), failed.stdout);
});

test("bin/safe-deploy health exits 0 when healthy, 1 when not, 2 on a bad flag", async () => {
  const ok = await target(() => [200]);
  const bad = await target(() => [503]);
  const bin = join(__dirname, "..", "..", "bin", "safe-deploy");
  const run = (args: string[]) =>
    new Promise<{ code: number; stderr: string }>((resolve) =>
      execFile(bin, ["health", ...args], (e, _o, stderr) =>
        resolve({ code: e ? ((e as { code?: number }).code ?? -1) : 0, stderr }),
      ),
    );
  assert.equal((await run(["--url", ok.url, "--retries", "1"])).code, 0);
  const failed = await run(["--url", bad.url, "--retries", "2", "--delay", "0.05", "--timeout", "1"]);
  assert.equal(failed.code, 1);
  assert.match(failed.stderr, /safe-deploy: health check of .* failed/);
  const usage = await run(["--url", ok.url, "--retries", "zero"]);
  assert.equal(usage.code, 2);
  assert.match(usage.stderr, /--retries/);
});

test("a certificate this machine does not trust: the failure says to pass `--ca`, and `--ca` passes", async () => {
  const dir = mkdtempSync(join(tmpdir(), "sd-health-tls-"));
  try {
    execFileSync(
      "openssl",
      ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1"]
        .concat(["-addext", "subjectAltName=IP:127.0.0.1"])
        .concat(["-keyout", join(dir, "key.pem"), "-out", join(dir, "cert.pem")]),
      { stdio: "ignore" },
    );
    const cert = readFileSync(join(dir, "cert.pem"), "utf8");
    const server = https.createServer({ key: readFileSync(join(dir, "key.pem")), cert }, (_req, res) =>
      res.end("ok"),
    );
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const url = `https://127.0.0.1:${(server.address() as AddressInfo).port}/health`;
    try {
      await assert.rejects(runHealth({ url, retries: "1", ...fast }, out), (e: Error) => {
        assert.ok(e instanceof CheckFailedError);
        assert.match(e.message, /SELF_SIGNED/);
        assert.match(e.message, /certificate is not trusted here .*: pass its CA .* with `--ca FILE`/);
        return true;
      });
      const r = await runHealth({ url, retries: "1", ...fast, ca: join(dir, "cert.pem") }, out);
      assert.equal(r.attempts, 1);
      // A --ca that holds no certificate (the key by mistake, a DER file) was silently ignored, and the
      // failure then told the user to pass the --ca they had passed.
      writeFileSync(
        join(dir, "garbage.pem"),
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
      );
      for (const file of ["key.pem", "garbage.pem"]) {
        await assert.rejects(
          runHealth({ url, retries: "1", ...fast, ca: join(dir, file) }, out),
          (e: Error) => {
            assert.ok(e instanceof ConfigError, e.message);
            assert.equal((e as ConfigError).exitCode, 2);
            assert.match(e.message, new RegExp(`^\`--ca\` file .*${file} holds no PEM certificate`));
            return true;
          },
        );
      }
      // A real certificate, but not the one that signed the server's: the hint names the --ca file.
      execFileSync(
        "openssl",
        ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=other"].concat([
          "-keyout",
          join(dir, "other-key.pem"),
          "-out",
          join(dir, "other.pem"),
        ]),
        { stdio: "ignore" },
      );
      await assert.rejects(
        runHealth({ url, retries: "1", ...fast, ca: join(dir, "other.pem") }, out),
        (e: Error) => {
          assert.ok(e instanceof CheckFailedError);
          assert.match(e.message, /not signed by the CA given for this check/);
          assert.doesNotMatch(e.message, /pass its CA .* with `--ca FILE`/);
          return true;
        },
      );
    } finally {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a redirect: the progress lines and the failure name its target with a token masked", async () => {
  const server = http.createServer((_req, res) => {
    res.writeHead(302, { location: "/login?next=/health&token=s3cret-token" });
    res.end();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  try {
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/health`;
    const seen: string[] = [];
    await assert.rejects(
      runHealth({ url, retries: "1", ...fast }, (l) => seen.push(l)),
      (e: Error) => {
        assert.ok(e instanceof CheckFailedError);
        assert.match(e.message, /does not follow: poll the URL it redirects to/);
        return true;
      },
    );
    assert.match(
      seen.join("\n"),
      /attempt 1: failed \(302\) status 302, expected 200; redirects to \/login\?next=\/health&token=\*\*\*/,
    );
    assert.ok(!seen.join("\n").includes("s3cret-token"));
  } finally {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  }
});
