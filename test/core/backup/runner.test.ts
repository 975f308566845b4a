// The client tools' runner (issue 22, mutation testing): where pg_dump/pg_restore/psql run, the libpq
// settings a URL becomes, and what a tool's failure tells the user. In this process, no server: the
// tools are stand-in scripts that print what they were given.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { spawn } from "node:child_process";
import {
  dockerArgs,
  dockerEnv,
  localPgBin,
  parseDatabaseUrl,
  pgFailure,
  spawnPg,
  watch,
  withDatabase,
  type Conn,
  type RunTarget,
} from "../../../src/core/backup/runner";
import { CannotRunError, ConfigError } from "../../../src/core/errors";
import { withEnv } from "../../helpers/env";

const dir = mkdtempSync(join(tmpdir(), "sd-runner-"));
after(() => rmSync(dir, { recursive: true, force: true }));

/** A stand-in tool that prints its arguments, the libpq settings it got and whether stdbuf wraps it. */
function fakeTool(path: string): void {
  writeFileSync(
    path,
    '#!/bin/sh\necho "ARGS:$*"\necho "HOST:$PGHOST DB:$PGDATABASE PW:$PGPASSWORD STDBUF:$_STDBUF_O DH:$DOCKER_HOST"\n',
  );
  chmodSync(path, 0o755);
}

/** Runs `child` to its end; its stdout and exit code. */
async function output(child: ReturnType<typeof spawn>): Promise<{ out: string; code: number }> {
  let out = "";
  child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  child.stdin?.end();
  const code = await watch(child).done;
  return { out, code };
}

test("parseDatabaseUrl: libpq settings from every part of the URL, decoded", () => {
  const c = parseDatabaseUrl("postgresql://us%40er:p%23ss@db.example:6543/my%20db?sslmode=require");
  assert.deepEqual(c, {
    database: "my db",
    user: "us@er",
    password: "p#ss",
    host: "db.example",
    env: {
      PGHOST: "db.example",
      PGPORT: "6543",
      PGUSER: "us@er",
      PGDATABASE: "my db",
      PGCONNECT_TIMEOUT: "10",
      PGAPPNAME: "safe-deploy-backup",
      PGPASSWORD: "p#ss",
      PGSSLMODE: "require",
    },
  });
});

test("parseDatabaseUrl: the defaults (postgres user and database, port 5432), no password, an IPv6 host unbracketed", () => {
  assert.equal(parseDatabaseUrl("postgres://[::1]:5432").host, "::1");
  assert.equal(parseDatabaseUrl("postgres://[::1]:5432").env.PGHOST, "::1");
  const c = parseDatabaseUrl("postgres://h");
  assert.deepEqual(c, {
    database: "postgres",
    user: "postgres",
    password: "",
    host: "h",
    env: {
      PGHOST: "h",
      PGPORT: "5432",
      PGUSER: "postgres",
      PGDATABASE: "postgres",
      PGCONNECT_TIMEOUT: "10",
      PGAPPNAME: "safe-deploy-backup",
    },
  });
  // A socket-only URL (no host) goes to the loopback address, never to an empty PGHOST.
  assert.equal(parseDatabaseUrl("postgres:///app").host, "127.0.0.1");
  assert.equal(parseDatabaseUrl("postgres:///app").env.PGHOST, "127.0.0.1");
});

test("parseDatabaseUrl: each wrong URL is a ConfigError naming the flag and the fix, never the password", () => {
  const cases: Array<[string, RegExp]> = [
    [
      "postgres://u:secretpw@h:99999/db",
      /^`--database-url` \/ DATABASE_URL has port 99999, out of range \(1-65535\): use the server's port, 5432 by default$/,
    ],
    [
      "host=h password=secretpw",
      /^`--database-url` \/ DATABASE_URL is not a URL: it is a libpq key=value string, not a URL; write it as postgres:\/\/USER@HOST:PORT\/DATABASE with `:PASSWORD` after USER, percent-encoding `@ : \/ \? # %` in the password \(`#` as %23\)$/,
    ],
    [
      "mysql://u:secretpw@h/db",
      /^`--database-url` \/ DATABASE_URL must start with postgres:\/\/ \(got mysql:\/\/\)$/,
    ],
    [
      "xpostgres://u:secretpw@h/db",
      /^`--database-url` \/ DATABASE_URL must start with postgres:\/\/ \(got xpostgres:\/\/\)$/,
    ],
    [
      "postgres://u:secret%zzpw@h/db",
      /^`--database-url` \/ DATABASE_URL has a `%` that is not followed by two hex digits in its user, password or database name \(postgres:\/\/u:\*\*\*@h\/db\): percent-encode those characters, `%` as %25, `@` as %40, `\/` as %2F$/,
    ],
  ];
  for (const [url, msg] of cases) {
    assert.throws(
      () => parseDatabaseUrl(url),
      (e: Error) => e instanceof ConfigError && msg.test(e.message) && !e.message.includes("secret"),
      url,
    );
  }
  assert.throws(
    () => parseDatabaseUrl("nope", "`--target-url`"),
    (e: Error) => e instanceof ConfigError && e.message.startsWith("`--target-url` is not a URL"),
  );
  assert.equal(parseDatabaseUrl("postgres://h/%E2%82%AC").database, "€");
});

test("withDatabase: the same server and role, another database, the original untouched", () => {
  const c = parseDatabaseUrl("postgres://u:pw@h:5433/app");
  const o = withDatabase(c, "postgres");
  assert.equal(o.database, "postgres");
  assert.equal(o.env.PGDATABASE, "postgres");
  assert.equal(o.env.PGPORT, "5433");
  assert.equal(o.env.PGPASSWORD, "pw");
  assert.equal(c.env.PGDATABASE, "app");
});

test("dockerArgs and dockerEnv: exec in the container, or a throwaway run of the image; a container target needs one", () => {
  assert.deepEqual(
    dockerArgs({ runIn: "container", container: "db" }, ["PGHOST", "PGUSER"], "psql", ["-X"]),
    ["exec", "-i", "-e", "PGHOST", "-e", "PGUSER", "db", "psql", "-X"],
  );
  assert.deepEqual(dockerArgs({ runIn: "container", image: "postgres:16" }, ["PGHOST"], "pg_dump", ["-Fc"]), [
    "run",
    "--rm",
    "-i",
    "--network",
    "host",
    "-e",
    "PGHOST",
    "--entrypoint",
    "pg_dump",
    "postgres:16",
    "-Fc",
  ]);
  assert.deepEqual(
    dockerArgs({ runIn: "container", image: "postgres:16", network: "net1" }, [], "pg_dump", []).slice(3, 5),
    ["--network", "net1"],
  );
  assert.throws(
    () => dockerArgs({ runIn: "container" }, [], "psql", []),
    (e: Error) =>
      e instanceof ConfigError &&
      e.message ===
        '`container` (or `image` for an external database) is required when `runIn` is "container"',
  );
  const env = dockerEnv({ runIn: "container", container: "db", dockerHost: "ssh://u@h" }, { PGHOST: "x" });
  assert.equal(env.DOCKER_HOST, "ssh://u@h");
  assert.equal(env.PGHOST, "x");
  assert.equal(env.PATH, process.env.PATH);
  const saved = process.env.DOCKER_HOST;
  delete process.env.DOCKER_HOST;
  try {
    assert.equal(dockerEnv({ runIn: "container", container: "db" }).DOCKER_HOST, undefined);
    // No host in the target: the one the user's shell points docker at is kept.
    process.env.DOCKER_HOST = "unix:///run/user/docker.sock";
    assert.equal(
      dockerEnv({ runIn: "container", container: "db" }).DOCKER_HOST,
      "unix:///run/user/docker.sock",
    );
  } finally {
    if (saved !== undefined) process.env.DOCKER_HOST = saved;
    else delete process.env.DOCKER_HOST;
  }
});

test("localPgBin: PG_BIN wins; else the newest installed version's bin", async () => {
  await withEnv({ PG_BIN: "/opt/pg/bin" }, async () => assert.equal(localPgBin(), "/opt/pg/bin"));
  await withEnv({ PG_BIN: undefined }, async () =>
    assert.equal(localPgBin(), "/usr/lib/postgresql/15/bin", "this machine has PostgreSQL 15's tools"),
  );
});

test("spawnPg locally: the tool from PG_BIN with the URL's settings in its environment; pg_dump alone under stdbuf", async () => {
  const bin = join(dir, "bin");
  rmSync(bin, { recursive: true, force: true });
  mkdirSync(bin);
  for (const t of ["pg_dump", "psql"]) fakeTool(join(bin, t));
  const conn = parseDatabaseUrl("postgres://u:pw@h:5433/app");
  await withEnv({ PG_BIN: bin }, async () => {
    const d = await output(spawnPg({ runIn: "local" }, "pg_dump", ["-Fc", "--no-sync"], conn));
    assert.equal(d.code, 0);
    assert.match(d.out, /^ARGS:-Fc --no-sync\nHOST:h DB:app PW:pw STDBUF:1048576 DH:/);
    const p = await output(spawnPg({ runIn: "local" }, "psql", ["-X"], conn));
    assert.match(p.out, /^ARGS:-X\nHOST:h DB:app PW:pw STDBUF: DH:/);
  });
});

test("spawnPg in a container: docker with the settings passed by name, DOCKER_HOST set, no secret on the command line", async () => {
  const bin = join(dir, "dockerbin");
  mkdirSync(bin, { recursive: true });
  fakeTool(join(bin, "docker"));
  const conn = parseDatabaseUrl("postgres://u:pw@h:5433/app");
  await withEnv({ PATH: `${bin}:${process.env.PATH}` }, async () => {
    const target: RunTarget = { runIn: "container", container: "db1", dockerHost: "unix:///x.sock" };
    const r = await output(spawnPg(target, "pg_restore", ["-l"], conn));
    assert.equal(r.code, 0);
    assert.equal(
      r.out,
      "ARGS:exec -i -e PGHOST -e PGPORT -e PGUSER -e PGDATABASE -e PGCONNECT_TIMEOUT -e PGAPPNAME -e PGPASSWORD db1 pg_restore -l\n" +
        "HOST:h DB:app PW:pw STDBUF: DH:unix:///x.sock\n",
    );
  });
});

test("watch: the exit code, 128 for a signal, 127 and the error for a tool that cannot start; stderr kept, capped", async () => {
  const ok = spawn("sh", ["-c", "echo oops >&2; exit 3"]);
  const w = watch(ok);
  assert.equal(await w.done, 3);
  assert.equal(w.stderr(), "oops\n");
  const killed = spawn("sh", ["-c", "kill -TERM $$"]);
  assert.equal(await watch(killed).done, 128);
  const missing = spawn(join(dir, "no-such-tool"));
  const m = watch(missing);
  assert.equal(await m.done, 127);
  assert.match(m.stderr(), /ENOENT/);
  // A child without a stderr pipe is watched as well.
  assert.equal(await watch(spawn("sh", ["-c", "exit 0"], { stdio: "ignore" })).done, 0);
  // Kept up to 64,000 characters; what comes after is dropped.
  const capped = spawn("sh", ["-c", "head -c 64000 /dev/zero | tr '\\0' y >&2; sleep 0.3; echo more >&2"]);
  const c = watch(capped);
  assert.equal(await c.done, 0);
  assert.equal(c.stderr(), "y".repeat(64_000));
  const loud = spawn("sh", ["-c", "head -c 200000 /dev/zero | tr '\\0' x >&2"]);
  const l = watch(loud);
  assert.equal(await l.done, 0);
  assert.ok(l.stderr().length >= 64_000 && l.stderr().length < 64_000 + 70_000, String(l.stderr().length));
  assert.ok(l.stderr().length < 200_000);
});

const conn: Conn = parseDatabaseUrl("postgres://app:s3cretpw@db.local:5433/shop");
const local: RunTarget = { runIn: "local" };

test("pgFailure: each kind of failure says what to do, with exit 3, never the password", () => {
  const cases: Array<[string, RunTarget, string]> = [
    [
      'pg_dump: error: connection to server failed: FATAL:  password authentication failed for user "app"',
      local,
      'pg_dump: could not log in to database "shop" on db.local:5433 as "app": password authentication failed. Check the user and password in `--database-url` / DATABASE_URL.',
    ],
    [
      "fe_sendauth: no password supplied",
      local,
      'pg_dump: could not log in to database "shop" on db.local:5433 as "app": password authentication failed. Check the user and password in `--database-url` / DATABASE_URL.',
    ],
    [
      "ERROR:  permission denied to create database",
      local,
      'pg_dump: role "app" may not create databases, and a restore or restore test first restores into a new one: grant it with `ALTER ROLE "app" CREATEDB` or use an admin\'s `--database-url`',
    ],
    [
      "pg_dump: error: query failed: ERROR:  permission denied for table orders",
      local,
      'pg_dump: role "app" may not read table "orders" of database "shop": use the URL of the role that owns the tables (or a superuser), or grant it, e.g. `GRANT SELECT ON ALL TABLES IN SCHEMA public TO "app"`',
    ],
    [
      'FATAL:  database "shop" does not exist',
      local,
      'pg_dump: database "shop" on db.local:5433 as "app" does not exist. Check the database name in `--database-url`.',
    ],
    [
      'pg_dump: error: connection to server at "db.local", port 5433 failed: Connection refused\n\tIs the server running on that host?',
      local,
      'pg_dump: cannot reach database "shop" on db.local:5433 as "app": pg_dump: error: connection to server at "db.local", port 5433 failed: Connection refused\n\tIs the server running on that host. Is the server running and the host/port in `--database-url` right?',
    ],
    [
      "Error response from daemon: No such container: db1",
      { runIn: "container", container: "db1" },
      'pg_dump: docker exec in container "db1" failed: Error response from daemon: No such container: db1',
    ],
    [
      "spawn /usr/lib/postgresql/15/bin/pg_dump ENOENT",
      local,
      "pg_dump: PostgreSQL client tools not found (spawn /usr/lib/postgresql/15/bin/pg_dump ENOENT); install them or set PG_BIN",
    ],
    ["spawn docker ENOENT", { runIn: "container", container: "db1" }, "pg_dump failed: spawn docker ENOENT"],
    [
      "Error response from daemon: No such container: db1",
      local,
      "pg_dump failed: Error response from daemon: No such container: db1",
    ],
    [
      "l1\nl2\nl3\nl4\nl5\nl6\nl7\nERROR:  something else with s3cretpw and postgres://app:s3cretpw@db.local/shop  ",
      local,
      "pg_dump failed: l3\nl4\nl5\nl6\nl7\nERROR:  something else with *** and postgres://app:***@db.local/shop",
    ],
  ];
  for (const [stderr, target, msg] of cases) {
    const e = pgFailure("pg_dump", stderr, conn, target);
    assert.ok(e instanceof CannotRunError, stderr);
    assert.equal(e.message, msg);
    assert.ok(!e.message.includes("s3cretpw"));
  }
  assert.equal(
    pgFailure("psql", "connection refused. Is the server running?.", conn, local).message,
    'psql: cannot reach database "shop" on db.local:5433 as "app": connection refused. Is the server running. Is the server running and the host/port in `--database-url` right?',
  );
  for (const s of ["could not translate host name", "timeout expired", "Connection timed out"]) {
    assert.match(pgFailure("psql", s, conn, local).message, /^psql: cannot reach /, s);
  }
  for (const s of ["Cannot connect to the Docker daemon at unix:///x", "error during connect: x"]) {
    assert.match(
      pgFailure("psql", s, conn, { runIn: "container", container: "c" }).message,
      /^psql: docker exec in container "c" failed: /,
      s,
    );
  }
  assert.match(pgFailure("psql", "psql: not found", conn, local).message, /client tools not found/);
  assert.match(pgFailure("psql", "FATAL: Authentication failed", conn, local).message, /could not log in/);
  for (const kind of ["sequence", "schema", "large object", "function"]) {
    assert.match(
      pgFailure("pg_dump", `permission denied for ${kind} x1`, conn, local).message,
      new RegExp(`may not read ${kind} "x1"`),
    );
  }
});
