// Issue 22 part C: what the PostgreSQL probe reports without a real server: one that never answers,
// one that answers the startup with an error (a SQLSTATE, so its message is shown, masked), and a URL
// pg cannot parse (it threw out of the probe, which must never throw).
import assert from "node:assert/strict";
import { once } from "node:events";
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

/** One protocol message: its type byte, then its length and body. */
function message(type: string, body: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head.write(type, 0);
  head.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([head, body]);
}
const authOk = () => message("R", Buffer.from([0, 0, 0, 0]));
const ready = () => message("Z", Buffer.from("I"));
/** `SELECT 1 AS ok` answered with one int4 row, or with none (a pooler in a bad state). */
function selectAnswer(rows: number): Buffer {
  const field = Buffer.alloc(18);
  field.writeInt32BE(0, 0);
  field.writeInt16BE(0, 4);
  field.writeInt32BE(23, 6);
  field.writeInt16BE(4, 10);
  field.writeInt32BE(-1, 12);
  field.writeInt16BE(0, 16);
  const desc = message("T", Buffer.concat([Buffer.from([0, 1]), Buffer.from("ok\0"), field]));
  const row = message("D", Buffer.concat([Buffer.from([0, 1, 0, 0, 0, 1]), Buffer.from("1")]));
  const done = message("C", Buffer.from(`SELECT ${rows}\0`));
  return Buffer.concat([desc, ...(rows ? [row] : []), done, ready()]);
}

/**
 * A fake server speaking just enough of the protocol: trust auth (then `afterStartup`), and `onQuery`
 * answering each query; `onSocket` sees each connection.
 */
function fakeServer(
  onQuery: (c: net.Socket) => void,
  afterStartup: Buffer[] = [],
  onSocket = (_c: net.Socket) => {},
) {
  return serve((c) => {
    onSocket(c);
    let started = false;
    c.on("data", (d) => {
      if (!started) {
        started = true;
        c.write(Buffer.concat([authOk(), ready(), ...afterStartup]));
      } else if (d[0] === "Q".charCodeAt(0)) onQuery(c);
    });
  });
}

test("SELECT 1 answered with no row fails the attempt, saying so", { timeout: 20_000 }, async () => {
  const port = await fakeServer((c) => c.write(selectAnswer(0)));
  assert.deepEqual(await postgresProbe(`postgres://app:pw@127.0.0.1:${port}/app`, 5000), {
    ok: false,
    detail: "postgres: SELECT 1 returned no row",
  });
});

test(
  "the probe's connection is closed when it is done (one left open per attempt would pile up)",
  { timeout: 20_000 },
  async () => {
    let closed: Promise<unknown> = Promise.resolve();
    const port = await fakeServer(
      (c) => c.write(selectAnswer(1)),
      [],
      (c) => {
        closed = once(c, "close");
      },
    );
    assert.deepEqual(await postgresProbe(`postgres://app:pw@127.0.0.1:${port}/app`, 5000), { ok: true });
    await closed;
  },
);

test(
  "an error the server sends between queries (an admin shutdown) fails the attempt, never the process",
  { timeout: 20_000 },
  async () => {
    const port = await fakeServer(
      (c) => c.destroy(),
      [errorResponse("57P01", "terminating connection due to administrator command")],
    );
    const r = await postgresProbe(`postgres://app:pw@127.0.0.1:${port}/app`, 5000);
    assert.equal(r.ok, false);
    assert.match(r.detail ?? "", /^postgres: /);
  },
);

test(
  "a server error whose SQLSTATE starts with a letter (XX000) shows its message too",
  { timeout: 20_000 },
  async () => {
    const port = await fakeServer((c) =>
      c.write(Buffer.concat([errorResponse("XX000", "could not read block 7"), ready()])),
    );
    assert.deepEqual(await postgresProbe(`postgres://app:pw@127.0.0.1:${port}/app`, 5000), {
      ok: false,
      detail: "postgres: could not read block 7",
    });
  },
);
