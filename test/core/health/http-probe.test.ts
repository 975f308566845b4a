// Issue 22: what the HTTP and TCP probes report, exactly, against loopback servers: the status list,
// redirects (3xx only), headers sent, an oversized JSON body, a bad URL, a refused port.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import * as http from "node:http";
import * as net from "node:net";
import type { AddressInfo } from "node:net";
import { httpProbe } from "../../../src/core/health/http";
import { tcpProbe } from "../../../src/core/health/tcp";
import { freePort } from "../../helpers/postgres";

const servers: http.Server[] = [];
after(async () => {
  for (const s of servers) {
    s.closeAllConnections();
    await new Promise((r) => s.close(r));
  }
});

/** A loopback server answering every request with `handler`; returns its URL. */
async function serve(handler: http.RequestListener): Promise<string> {
  const s = http.createServer(handler);
  servers.push(s);
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  return `http://127.0.0.1:${(s.address() as AddressInfo).port}/health`;
}

test("status: an empty expectStatus means 200; the expected list is named; a Location is shown for 3xx only", async () => {
  const ok = await serve((_q, r) => r.writeHead(200).end());
  assert.deepEqual(await httpProbe({ url: ok, expectStatus: [] }, 2000), { ok: true, status: 200 });
  const s503 = await serve((_q, r) => r.writeHead(503, { location: "https://elsewhere/x" }).end());
  assert.deepEqual(await httpProbe({ url: s503, expectStatus: [200, 204] }, 2000), {
    ok: false,
    status: 503,
    detail: "status 503, expected 200|204",
  });
  const s308 = await serve((_q, r) => r.writeHead(308).end());
  assert.deepEqual(await httpProbe({ url: s308 }, 2000), {
    ok: false,
    status: 308,
    detail: "status 308, expected 200",
  });
  const long = `https://elsewhere/${"a".repeat(300)}`;
  const s302 = await serve((_q, r) => r.writeHead(302, { location: long }).end());
  assert.deepEqual(await httpProbe({ url: s302 }, 2000), {
    ok: false,
    status: 302,
    detail: `status 302, expected 200; redirects to ${long.slice(0, 200)}`,
  });
  const s399 = await serve((_q, r) => r.writeHead(399, { location: "/x" }).end());
  assert.match((await httpProbe({ url: s399 }, 2000)).detail ?? "", /; redirects to \/x$/);
  const s300 = await serve((_q, r) => r.writeHead(300, { location: "/y" }).end());
  assert.match((await httpProbe({ url: s300 }, 2000)).detail ?? "", /; redirects to \/y$/);
  // A 201 Created carries a Location too: no redirect, so no redirect advice.
  const s201 = await serve((_q, r) => r.writeHead(201, { location: "/created/1" }).end());
  assert.equal((await httpProbe({ url: s201 }, 2000)).detail, "status 201, expected 200");
  const s400 = await serve((_q, r) => r.writeHead(400, { location: "/z" }).end());
  assert.equal((await httpProbe({ url: s400 }, 2000)).detail, "status 400, expected 200");
});

test("the request: a GET with the given headers and Connection: close", async () => {
  let seen: http.IncomingHttpHeaders = {};
  let method = "";
  const url = await serve((q, r) => {
    seen = q.headers;
    method = q.method ?? "";
    r.writeHead(200).end();
  });
  assert.equal(
    (await httpProbe({ url, headers: { "x-probe": "gate", connection: "keep-alive" } }, 2000)).ok,
    true,
  );
  assert.equal(method, "GET");
  assert.equal(seen["x-probe"], "gate");
  assert.equal(seen.connection, "close");
});

test("a JSON body over 256 KiB is cut, so it fails the assertion rather than filling memory; just under passes", async () => {
  const doc = (n: number) => JSON.stringify({ status: "ok", pad: "x".repeat(n) });
  const big = await serve((_q, r) => r.writeHead(200).end(doc(300 * 1024)));
  const r = await httpProbe({ url: big, json: { path: "status", equals: "ok" } }, 5000);
  assert.equal(r.ok, false);
  assert.match(r.detail ?? "", /^body is not JSON/);
  const fits = await serve((_q, r) => r.writeHead(200).end(doc(200 * 1024)));
  assert.deepEqual(await httpProbe({ url: fits, json: { path: "status", equals: "ok" } }, 5000), {
    ok: true,
    status: 200,
  });
});

test("an invalid URL and a refused port are reported, not thrown", async () => {
  assert.deepEqual(await httpProbe({ url: "not a url" }, 1000), { ok: false, detail: "invalid URL" });
  const port = await freePort();
  assert.deepEqual(await httpProbe({ url: `http://127.0.0.1:${port}/health` }, 1000), {
    ok: false,
    detail: "ECONNREFUSED",
  });
  assert.deepEqual(await tcpProbe({ host: "127.0.0.1", port }, 1000), {
    ok: false,
    detail: `tcp 127.0.0.1:${port} ECONNREFUSED`,
  });
});

test("a server that accepts the connection but never answers: the timeout names its length", async () => {
  const url = await serve(() => {});
  assert.deepEqual(await httpProbe({ url }, 200), { ok: false, detail: "timed out after 200 ms" });
});

/** A loopback port whose accept queue is full (backlog 0, one connection never accepted): a connect hangs. */
async function fullPort(): Promise<{ port: number; close: () => void }> {
  const perl = spawn(
    "perl",
    [
      "-MSocket",
      "-e",
      'socket(S, PF_INET, SOCK_STREAM, 0) or die; bind(S, pack_sockaddr_in(0, inet_aton("127.0.0.1"))) or die; ' +
        'listen(S, 0) or die; my ($p) = unpack_sockaddr_in(getsockname(S)); $| = 1; print "$p\\n"; <STDIN>',
    ],
    { stdio: ["pipe", "pipe", "inherit"] },
  );
  const [line] = (await once(perl.stdout, "data")) as [Buffer];
  const port = Number(String(line).trim());
  const filler = net.connect({ host: "127.0.0.1", port });
  await once(filler, "connect");
  return {
    port,
    close: () => {
      filler.destroy();
      perl.stdin.end();
    },
  };
}

test(
  "tcp: a port that never completes the handshake fails after the timeout, naming the target and the length",
  { timeout: 20_000 },
  async () => {
    const full = await fullPort();
    try {
      assert.deepEqual(await tcpProbe({ host: "127.0.0.1", port: full.port }, 300), {
        ok: false,
        detail: `tcp 127.0.0.1:${full.port} timed out after 300 ms`,
      });
    } finally {
      full.close();
    }
  },
);

test("a JSON body of exactly 256 KiB is read whole", { timeout: 20_000 }, async () => {
  const head = '{"status":"ok","pad":"';
  const body = `${head}${"x".repeat(256 * 1024 - head.length - 2)}"}`;
  assert.equal(body.length, 256 * 1024);
  const url = await serve((_q, r) => r.writeHead(200).end(body));
  assert.deepEqual(await httpProbe({ url, json: { path: "status", equals: "ok" } }, 5000), {
    ok: true,
    status: 200,
  });
});

test(
  "a body cut off by the server fails the attempt with the error, not a hang until the timeout",
  { timeout: 20_000 },
  async () => {
    const url = await serve((_q, r) => {
      r.writeHead(200, { "content-length": "100" });
      r.write('{"status":', () => r.socket?.destroy());
    });
    assert.deepEqual(await httpProbe({ url, json: { path: "status", equals: "ok" } }, 10 * 60_000), {
      ok: false,
      status: 200,
      detail: "ECONNRESET",
    });
  },
);

test(
  "a timed-out attempt closes its connection; a finished one leaves no timer behind",
  { timeout: 20_000 },
  async () => {
    let closed: Promise<unknown> = Promise.resolve();
    const hang = await serve((q) => {
      closed = once(q.socket, "close");
    });
    assert.equal((await httpProbe({ url: hang }, 200)).detail, "timed out after 200 ms");
    // The server side sees the probe's socket close (an attempt left open per retry would pile up).
    await closed;
    // A finished probe clears its timer: a dynamic provider's host would otherwise wait out the timeout.
    const timers = () => process.getActiveResourcesInfo().filter((r) => r === "Timeout").length;
    const ok = await serve((_q, r) => r.writeHead(200).end());
    const before = timers();
    assert.equal((await httpProbe({ url: ok }, 10 * 60_000)).ok, true);
    assert.equal(timers(), before);
    const tcpBefore = timers();
    const port = Number(new URL(ok).port);
    assert.deepEqual(await tcpProbe({ host: "127.0.0.1", port }, 10 * 60_000), { ok: true });
    assert.equal(timers(), tcpBefore);
  },
);
