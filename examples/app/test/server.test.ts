import assert from "node:assert/strict";
import { connect, createServer as createTcpServer, type Socket } from "node:net";
import { after, before, test } from "node:test";
import { startPostgres, type TestPostgres } from "../../../test/helpers/postgres";
import { createServer } from "../src/server.js";
import { migrate } from "./support";

let pg: TestPostgres;
let app: ReturnType<typeof createServer>;
let base: string;
const logs: string[] = [];

before(async () => {
  pg = await startPostgres();
  const db = await pg.createDatabase("notes");
  await migrate(db, "up");
  app = createServer({ databaseUrl: db, version: "test-1", write: (line) => logs.push(line) });
  base = (await app.listen(0, "127.0.0.1")).url;
});
after(async () => {
  await app?.close();
  await pg?.close();
});

async function call(method: string, path: string, body?: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(base + path, {
    method,
    headers: body === undefined ? headers : { "content-type": "application/json", ...headers },
    body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, text, json: text ? JSON.parse(text) : undefined };
}

test("/health answers 200 with the version when SELECT 1 succeeds", async () => {
  const res = await call("GET", "/health");
  assert.equal(res.status, 200);
  assert.deepEqual(res.json, { status: "ok", database: "up", version: "test-1" });
});

test("POST /notes stores a note, deriving the title from the body's first line", async () => {
  const res = await call("POST", "/notes", { body: "  Buy milk \nand eggs" });
  assert.equal(res.status, 201);
  assert.equal(res.json.title, "Buy milk");
  assert.equal(res.json.body, "  Buy milk \nand eggs");
  assert.equal(typeof res.json.id, "number");
  assert.equal(res.headers.get("location"), `/notes/${res.json.id}`);
  assert.ok(!Number.isNaN(Date.parse(res.json.createdAt)));

  const got = await call("GET", `/notes/${res.json.id}`);
  assert.equal(got.status, 200);
  assert.deepEqual(got.json, res.json);
  const [row] = await pg.query("SELECT title, body FROM notes WHERE id = $1", [res.json.id], "notes");
  assert.deepEqual(row, { title: "Buy milk", body: "  Buy milk \nand eggs" });
});

test("POST /notes keeps an explicit title, trimmed", async () => {
  const res = await call("POST", "/notes", { title: "  Chosen  ", body: "whatever" });
  assert.equal(res.status, 201);
  assert.equal(res.json.title, "Chosen");
});

test("GET /notes lists newest first and honours ?limit", async () => {
  const ids: number[] = [];
  for (const body of ["one", "two", "three"]) ids.push((await call("POST", "/notes", { body })).json.id);
  const all = await call("GET", "/notes");
  assert.equal(all.status, 200);
  const listed = all.json.notes.map((n: { id: number }) => n.id);
  assert.deepEqual(listed.slice(0, 3), ids.reverse());
  const two = await call("GET", "/notes?limit=2");
  assert.deepEqual(
    two.json.notes.map((n: { id: number }) => n.id),
    listed.slice(0, 2),
  );
});

test("bad input is refused with 4xx and a message naming the problem; nothing is stored", async () => {
  const before = await pg.query<{ n: string }>("SELECT count(*) AS n FROM notes", [], "notes");
  const cases: [string, string, unknown, Record<string, string>, number, RegExp][] = [
    ["POST", "/notes", "{not json", {}, 400, /not valid JSON/],
    ["POST", "/notes", { title: "no body" }, {}, 400, /`body` is required/],
    ["POST", "/notes", { body: "" }, {}, 400, /`body` must not be blank/],
    ["POST", "/notes", { body: "   \n " }, {}, 400, /`body` must not be blank/],
    ["POST", "/notes", { body: 42 }, {}, 400, /`body` is required and must be a string/],
    ["POST", "/notes", { body: "x".repeat(10001) }, {}, 400, /at most 10000 characters/],
    ["POST", "/notes", { body: "ok", title: "" }, {}, 400, /`title` must not be blank/],
    ["POST", "/notes", { body: "ok", title: "t".repeat(201) }, {}, 400, /`title` must be at most 200/],
    ["POST", "/notes", { body: "ok", author: "me" }, {}, 400, /`author` is not a known field/],
    ["POST", "/notes", [{ body: "ok" }], {}, 400, /must be a JSON object/],
    ["POST", "/notes", "null", {}, 400, /must be a JSON object/],
    ["POST", "/notes", { body: "y".repeat(70 * 1024) }, {}, 413, /at most 65536 bytes/],
    [
      "POST",
      "/notes",
      "body=x",
      { "content-type": "application/x-www-form-urlencoded" },
      415,
      /application\/json/,
    ],
    ["GET", "/notes/abc", undefined, {}, 400, /positive whole number/],
    ["GET", "/notes/0", undefined, {}, 400, /positive whole number/],
    ["GET", "/notes?limit=0", undefined, {}, 400, /`limit`/],
    ["GET", "/notes?limit=1000", undefined, {}, 400, /`limit`/],
    ["GET", "/notes/987654", undefined, {}, 404, /note 987654 does not exist/],
    ["GET", "/nothing-here", undefined, {}, 404, /no route for GET \/nothing-here/],
    ["DELETE", "/notes/1", undefined, {}, 405, /use GET/],
    ["PUT", "/notes", { body: "x" }, {}, 405, /use GET or POST/],
    ["POST", "/health", undefined, {}, 405, /use GET/],
  ];
  for (const [method, path, body, headers, status, message] of cases) {
    const res = await call(method, path, body, headers);
    assert.equal(res.status, status, `${method} ${path} ${JSON.stringify(body)?.slice(0, 40)}: ${res.text}`);
    assert.match(res.json.error + " " + (res.json.details ?? []).join(" "), message);
  }
  assert.equal((await call("PUT", "/notes", { body: "x" })).headers.get("allow"), "GET, POST");
  assert.equal((await call("DELETE", "/notes/1")).headers.get("allow"), "GET");
  const afterCount = await pg.query<{ n: string }>("SELECT count(*) AS n FROM notes", [], "notes");
  assert.deepEqual(afterCount, before);
});

test("each request is logged as one JSON line with method, path and status, without the query string", async () => {
  logs.length = 0;
  await call("GET", "/notes?limit=1&token=abc123");
  await call("GET", "/notes/abc");
  const requests = logs.map((l) => JSON.parse(l)).filter((l) => l.msg === "request");
  assert.deepEqual(
    requests.map(({ method, path, status }) => ({ method, path, status })),
    [
      { method: "GET", path: "/notes", status: 200 },
      { method: "GET", path: "/notes/abc", status: 400 },
    ],
  );
  assert.ok(!logs.join("\n").includes("abc123"));
});

test("/health is 503 while PostgreSQL is down and 200 again once it is back", async () => {
  await pg.stop();
  try {
    const down = await call("GET", "/health");
    assert.equal(down.status, 503);
    assert.deepEqual(down.json, { status: "unavailable", database: "down", version: "test-1" });
    const route = await call("GET", "/notes");
    assert.equal(route.status, 503);
    assert.deepEqual(route.json, { error: "the database is unavailable, try again shortly" });
    const posted = await call("POST", "/notes", { body: "while down" });
    assert.equal(posted.status, 503);
  } finally {
    await pg.start();
  }
  const up = await call("GET", "/health");
  assert.equal(up.status, 200);
  assert.equal(up.json.database, "up");
  assert.equal((await call("GET", "/notes?limit=1")).status, 200);
  const states = logs.map((l) => JSON.parse(l)).filter((l) => /^database (up|down)$/.test(l.msg));
  assert.deepEqual(
    states.slice(-2).map((l) => l.msg),
    ["database down", "database up"],
  );
  assert.ok(!logs.join("\n").includes(pg.password), "the password reached the logs");
});

test("a wrong password in DATABASE_URL gives 503 and never appears in a response or a log line", async () => {
  const secret = "Wr0ng-s3cret/pa%ss";
  const badUrl = `postgres://${pg.user}:${encodeURIComponent(secret)}@127.0.0.1:${pg.port}/notes`;
  const lines: string[] = [];
  const bad = createServer({ databaseUrl: badUrl, version: "bad-1", write: (l) => lines.push(l) });
  const { url } = await bad.listen(0, "127.0.0.1");
  try {
    const bodies: string[] = [];
    const health = await fetch(url + "/health");
    bodies.push(await health.text());
    assert.equal(health.status, 503);
    assert.deepEqual(JSON.parse(bodies[0]), { status: "unavailable", database: "down", version: "bad-1" });
    const post = await fetch(url + "/notes", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ body: "x" }),
    });
    bodies.push(await post.text());
    assert.equal(post.status, 503);
    const list = await fetch(url + "/notes");
    bodies.push(await list.text());
    assert.equal(list.status, 503);

    const all = bodies.join("\n") + "\n" + lines.join("\n");
    // The failure and the target database are logged (so operators can see why), password masked.
    assert.match(lines.join("\n"), /password authentication failed/);
    assert.match(
      lines.join("\n"),
      new RegExp(`"database":"postgres://${pg.user}:\\*\\*\\*@127\\.0\\.0\\.1:${pg.port}/notes"`),
    );
    for (const form of [secret, encodeURIComponent(secret), "Wr0ng-s3cret"]) {
      assert.ok(!all.includes(form), `found ${form} in:\n${all}`);
    }
  } finally {
    await bad.close();
  }
});

test("close() stops accepting connections and ends the pool", async () => {
  const other = createServer({ databaseUrl: pg.url("notes"), write: () => {} });
  const { url } = await other.listen(0, "127.0.0.1");
  assert.equal((await fetch(url + "/health", { headers: { connection: "keep-alive" } })).status, 200);
  await other.close();
  assert.equal(other.server.listening, false);
  assert.equal(other.pool.totalCount, 0);
  await assert.rejects(fetch(url + "/health"));
});

test("/health answers 503 instead of hanging when the database accepts connections but never replies", async () => {
  const sockets: Socket[] = [];
  const silent = createTcpServer((s) => sockets.push(s));
  await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
  const port = (silent.address() as { port: number }).port;
  const app2 = createServer({
    databaseUrl: `postgres://u:pw@127.0.0.1:${port}/db`,
    healthTimeoutMs: 300,
    write: () => {},
  });
  const { url } = await app2.listen(0, "127.0.0.1");
  try {
    const res = await fetch(url + "/health");
    assert.equal(res.status, 503);
    assert.equal(((await res.json()) as { database: string }).database, "down");
    assert.ok(sockets.length >= 1, "the app never tried the silent server");
  } finally {
    for (const s of sockets) s.destroy();
    await app2.close();
    await new Promise((resolve) => silent.close(resolve));
  }
});

test("a request target that is not a valid URL gets 400, not a crash", async () => {
  const { port } = app.server.address() as { port: number };
  const reply = await new Promise<string>((resolve, reject) => {
    const sock = connect(port, "127.0.0.1", () => {
      sock.end("GET http://example.invalid:99999/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    });
    let data = "";
    sock.on("data", (d) => (data += d));
    sock.on("end", () => resolve(data));
    sock.on("error", reject);
  });
  assert.match(reply, /^HTTP\/1\.1 400 /);
  assert.equal((await call("GET", "/health")).status, 200);
});
