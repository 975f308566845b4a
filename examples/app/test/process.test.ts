import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { connect } from "node:net";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { freePort, startPostgres, type TestPostgres } from "../../../test/helpers/postgres";
import { APP_DIR, migrate } from "./support";

// `npm start` as Docker runs it: `node src/server.js`, configured only through the environment.

let pg: TestPostgres;
const children: ChildProcess[] = [];

before(async () => {
  pg = await startPostgres();
  await migrate(await pg.createDatabase("proc"), "up");
});
after(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  await pg?.close();
});

interface Running {
  child: ChildProcess;
  out: () => string;
  exited: Promise<number | null>;
}

/** Exit code of the Docker HEALTHCHECK probe pointed at `port`. */
async function probe(port: number): Promise<number | null> {
  const child = spawn(process.execPath, [join(APP_DIR, "src", "healthcheck.js")], {
    env: { PATH: process.env.PATH ?? "", PORT: String(port) },
    stdio: "ignore",
  });
  children.push(child);
  return new Promise((resolve) => child.on("exit", (code) => resolve(code)));
}

function startApp(env: Record<string, string>): Running {
  const child = spawn(process.execPath, [join(APP_DIR, "src", "server.js")], {
    cwd: APP_DIR,
    env: { PATH: process.env.PATH ?? "", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.push(child);
  let out = "";
  child.stdout?.on("data", (d) => (out += d));
  child.stderr?.on("data", (d) => (out += d));
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  return { child, out: () => out, exited };
}

async function listening(app: Running): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const check = () => {
      if (app.out().includes('"msg":"listening"')) return resolve();
      if (app.child.exitCode !== null) return reject(new Error(`app exited early:\n${app.out()}`));
      setTimeout(check, 50);
    };
    check();
  });
}

test("runs from the environment, reports APP_VERSION, and exits 0 on SIGTERM after closing", async () => {
  const port = await freePort();
  const app = startApp({
    DATABASE_URL: pg.url("proc"),
    PORT: String(port),
    HOST: "127.0.0.1",
    APP_VERSION: "r-7",
  });
  await listening(app);
  const res = await fetch(`http://127.0.0.1:${port}/health`);
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), { status: "ok", database: "up", version: "r-7" });
  const created = await fetch(`http://127.0.0.1:${port}/notes`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ body: "from a real process" }),
  });
  assert.equal(created.status, 201);
  assert.equal(await probe(port), 0, "HEALTHCHECK probe on a healthy app");

  app.child.kill("SIGTERM");
  assert.equal(await app.exited, 0);
  const msgs = app
    .out()
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l).msg);
  assert.deepEqual(msgs, [
    "listening",
    "database up",
    "request",
    "request",
    "request",
    "shutting down",
    "stopped",
  ]);
  assert.ok(!app.out().includes(pg.password), "the password reached stdout");
  await assert.rejects(fetch(`http://127.0.0.1:${port}/health`));
  assert.equal(await probe(port), 1, "HEALTHCHECK probe with nothing listening");
});

test("a missing DATABASE_URL or a bad PORT exits 2 with a message naming the variable", async () => {
  const missing = startApp({});
  assert.equal(await missing.exited, 2);
  assert.match(missing.out(), /DATABASE_URL is not set/);

  const badPort = startApp({ DATABASE_URL: pg.url("proc"), PORT: "eighty" });
  assert.equal(await badPort.exited, 2);
  assert.match(badPort.out(), /PORT must be a whole number/);
  assert.ok(!badPort.out().includes(pg.password));
});

test("with a wrong password it still starts, answers 503, and never prints the password", async () => {
  const port = await freePort();
  const secret = "n0t-the-Right-one";
  const app = startApp({
    DATABASE_URL: `postgres://${pg.user}:${secret}@127.0.0.1:${pg.port}/proc`,
    PORT: String(port),
    HOST: "127.0.0.1",
  });
  await listening(app);
  const res = await fetch(`http://127.0.0.1:${port}/health`);
  assert.equal(res.status, 503);
  const body = await res.text();
  assert.equal(await probe(port), 1, "HEALTHCHECK probe on a 503 app");
  app.child.kill("SIGTERM");
  assert.equal(await app.exited, 0);
  assert.match(app.out(), /password authentication failed/);
  assert.ok(!body.includes(secret) && !app.out().includes(secret), app.out());
});

test("SIGTERM during a request on a keep-alive connection: the request completes, its answer closes the connection", async () => {
  const port = await freePort();
  const app = startApp({ DATABASE_URL: pg.url("proc"), PORT: String(port), HOST: "127.0.0.1" });
  await listening(app);
  const body = JSON.stringify({ body: "sent across SIGTERM" });
  const sock = connect(port, "127.0.0.1");
  let reply = "";
  sock.on("data", (d) => (reply += d));
  const ended = new Promise<void>((resolve) => sock.on("end", resolve));
  // Headers and half the body now: the request is in flight when the signal arrives.
  await new Promise<void>((resolve) =>
    sock.write(
      "POST /notes HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n" +
        `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n` +
        body.slice(0, 10),
      () => resolve(),
    ),
  );
  app.child.kill("SIGTERM");
  await new Promise<void>((resolve) => {
    const check = () => (app.out().includes('"msg":"shutting down"') ? resolve() : setTimeout(check, 20));
    check();
  });
  sock.write(body.slice(10));
  await ended;
  sock.destroy();
  assert.match(reply, /^HTTP\/1\.1 201 /);
  // Without `Connection: close` the client reuses the socket until the 8 s cut drops a request on it.
  assert.match(reply, /\r\nconnection: close\r\n/i);
  assert.equal(await app.exited, 0);
  const rows = await pg.query("SELECT 1 FROM notes WHERE body = 'sent across SIGTERM'", [], "proc");
  assert.equal(rows.length, 1);
});

test("SIGTERM/SIGINT with an idle keep-alive connection: the next request on it is answered (with connection: close), not cut", async () => {
  // Issue 18: pm2 reload sends SIGINT to the old worker; a keep-alive client (autocannon, a proxy)
  // sends its next request on the connection it has. Closing idle connections at the signal raced that
  // request: it was lost.
  const port = await freePort();
  const app = startApp({ DATABASE_URL: pg.url("proc"), PORT: String(port), HOST: "127.0.0.1" });
  await listening(app);
  const sock = connect(port, "127.0.0.1");
  let reply = "";
  sock.on("data", (d) => (reply += d));
  const ended = new Promise<void>((resolve) => sock.on("close", () => resolve()));
  const get = "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n\r\n";
  sock.write(get);
  await new Promise<void>((resolve) => {
    const check = () => (/"version"/.test(reply) ? resolve() : setTimeout(check, 20));
    check();
  });
  app.child.kill("SIGINT");
  await new Promise<void>((resolve) => {
    const check = () => (app.out().includes('"msg":"shutting down"') ? resolve() : setTimeout(check, 20));
    check();
  });
  sock.on("error", () => undefined); // a reset is what the assertion below reports
  sock.write(get);
  await ended;
  const answers = reply.split(/(?=HTTP\/1\.1 )/);
  assert.equal(answers.length, 2, `the second request got no answer:\n${reply}`);
  assert.match(answers[1], /^HTTP\/1\.1 200 /);
  assert.match(answers[1], /\r\nconnection: close\r\n/i);
  assert.equal(await app.exited, 0);
});
