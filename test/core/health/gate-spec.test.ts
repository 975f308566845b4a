// Issue 22 part C: every check a gate spec names reaches each attempt (runGate -> probeOf), and the
// attempt's time and duration are the probe's own. Loopback only: the Docker checks point at a socket
// that does not exist, so they fail the same way on every machine.
import assert from "node:assert/strict";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import { after, test } from "node:test";
import { runGate } from "../../../src/core/health/run";
import { freePort } from "../../helpers/postgres";

const server = http.createServer((_q, r) => r.writeHead(200).end());
after(() => {
  server.closeAllConnections();
  server.close();
});

async function url(): Promise<string> {
  if (!server.listening) await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/health`;
}

const noDocker = "unix:///nonexistent/safe-deploy-test/docker.sock";

test(
  "each check of the spec runs in the attempt: tcp, postgres, container and service failures all listed",
  { timeout: 30_000 },
  async () => {
    const port = await freePort();
    const r = await runGate({
      url: await url(),
      retries: 1,
      timeoutSeconds: 2,
      tcp: [{ host: "127.0.0.1", port }],
      postgresUrl: `postgres://app:pw-gate-spec@127.0.0.1:${port}/app`,
      container: { name: "app-1", dockerHost: noDocker },
      service: { service: "app_web", release: "r-1", replicas: 1, dockerHost: noDocker },
    });
    assert.equal(r.ok, false);
    const detail = r.attempts[0].detail ?? "";
    assert.equal(r.attempts[0].status, 200);
    assert.match(detail, new RegExp(`^tcp 127\\.0\\.0\\.1:${port} ECONNREFUSED; postgres: ECONNREFUSED; `));
    assert.match(detail, /; container app-1: .*(Cannot connect|docker daemon)/i);
    assert.match(detail, /; service app_web: .*(Cannot connect|docker daemon)/i);
    if (!r.ok) assert.ok(!r.message.includes("pw-gate-spec"));
  },
);

test(
  "a spec with only a URL runs only the HTTP check; its attempt's time and duration are its own",
  { timeout: 30_000 },
  async () => {
    const before = Date.now();
    const r = await runGate({ url: await url(), retries: 1 });
    const afterMs = Date.now();
    assert.equal(r.ok, true);
    assert.deepEqual(
      r.attempts.map(({ ok, status, detail }) => ({ ok, status, detail })),
      [{ ok: true, status: 200, detail: undefined }],
    );
    const a = r.attempts[0];
    assert.ok(Date.parse(a.at) >= before && Date.parse(a.at) <= afterMs, `${a.at} within the call`);
    assert.ok(
      a.ms >= 0 && a.ms <= afterMs - before,
      `${a.ms} ms within the ${afterMs - before} ms of the call`,
    );
  },
);
