// Issue 22 part C: what the PostgreSQL probe reports without a real server: one that never answers,
// one that answers the startup with an error (a SQLSTATE, so its message is shown, masked), and a URL
// pg cannot parse (it threw out of the probe, which must never throw).
import assert from "node:assert/strict";
import * as net from "node:net";
import { after, test } from "node:test";
import { postgresProbe } from "../../../src/core/health/postgres";

const servers: net.Server[] = [];
const sockets: net.Socket[] = [];
after(() => {
  for (const c of sockets) c.destroy();
  for (const s of servers) s.close();
});

/** A loopback server running `onConnection` for each client; returns its port. */
async function serve(onConnection: (c: net.Socket) => void): Promise<number> {
  const s = net.createServer((c) => {
    sockets.push(c);
    onConnection(c);
  });
  servers.push(s);
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  return (s.address() as net.AddressInfo).port;
}

/** A protocol ErrorResponse ('E') with the given SQLSTATE and message. */
function errorResponse(code: string, message: string): Buffer {
  const body = Buffer.concat([
    ...[`SFATAL`, `C${code}`, `M${message}`].map((f) => Buffer.from(`${f}\0`)),
    Buffer.from([0]),
  ]);
  const head = Buffer.alloc(5);
  head.write("E", 0);
  head.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([head, body]);
}

test(
  "a server that accepts the connection and never answers: the probe gives up after its timeout",
  { timeout: 20_000 },
  async () => {
    const port = await serve(() => {});
    assert.deepEqual(await postgresProbe(`postgres://app:pw-hang@127.0.0.1:${port}/app`, 300), {
      ok: false,
      detail: "postgres: timeout expired",
    });
  },
);

test(
  "a server error (a SQLSTATE) shows its message, not the code, with the URL's password masked",
  { timeout: 20_000 },
  async () => {
    const port = await serve((c) =>
      c.once("data", () =>
        c.end(errorResponse("28P01", 'password authentication failed for user "app" (tried pw-echoed-42)')),
      ),
    );
    const r = await postgresProbe(`postgres://app:pw-echoed-42@127.0.0.1:${port}/app`, 5000);
    assert.deepEqual(r, {
      ok: false,
      detail: 'postgres: password authentication failed for user "app" (tried ***)',
    });
  },
);

test(
  "a URL pg cannot parse is reported, not thrown, and its password not shown",
  { timeout: 20_000 },
  async () => {
    const r = await postgresProbe("postgres://app:pw-bad-port@127.0.0.1:99999/app", 1000);
    assert.deepEqual(r, { ok: false, detail: "postgres: ERR_INVALID_URL" });
  },
);
