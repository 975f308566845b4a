import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { chmod, mkdtemp, rm, writeFile } from "node:fs/promises";
import { readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client } from "pg";
import {
  appRoleCommand,
  appRoleName,
  appRoleSql,
  derivedAppPassword,
  scramVerifier,
} from "../../../src/core/database/roles";
import { PG_BIN, startPostgres, type TestPostgres } from "../../helpers/postgres";

const OWNER = "shop";
const DB = "shopdb";
const ROLE = appRoleName(OWNER);
let pg: TestPostgres;
let shimDir: string;

before(async () => {
  pg = await startPostgres({ user: OWNER });
  await pg.createDatabase(DB);
  // `docker exec -i -e PGPASSWORD <container> psql ...` with the container being this machine: the shim
  // checks the exact `docker exec` form and runs the rest (the real psql) here.
  shimDir = await mkdtemp(join(tmpdir(), "sd-docker-shim-"));
  await writeFile(
    join(shimDir, "docker"),
    `#!/bin/sh
[ "$1 $2 $3 $4 $5" = "exec -i -e PGPASSWORD db-container" ] || { echo "unexpected docker args: $*" >&2; exit 99; }
shift 5
exec "$@"
`,
  );
  await chmod(join(shimDir, "docker"), 0o755);
});
after(async () => {
  await pg?.close();
  if (shimDir) await rm(shimDir, { recursive: true, force: true });
});

/** Runs the component's exact command string with its environment, the SQL on stdin, as the engine would. */
function setUp(password: string, extraSql = ""): Promise<{ code: number | null; out: string }> {
  const sql =
    appRoleSql({ owner: OWNER, role: ROLE, database: DB, verifier: scramVerifier(password, ROLE) }) +
    extraSql;
  return new Promise((resolve, reject) => {
    const child = spawn("/bin/sh", ["-c", appRoleCommand(OWNER, DB)], {
      env: {
        PATH: `${shimDir}:${PG_BIN}:${process.env.PATH}`,
        SAFE_DEPLOY_DB_CONTAINER: "db-container",
        PGPASSWORD: pg.password,
        PGPORT: String(pg.port), // inside the real container psql reaches 5432, the default
      },
    });
    let out = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (out += d));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, out }));
    child.stdin.end(sql);
  });
}

async function asApp<T>(password: string, fn: (c: Client) => Promise<T>): Promise<T> {
  const c = new Client({ host: "127.0.0.1", port: pg.port, user: ROLE, password, database: DB });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}
const owner = (sql: string) => pg.query(sql, [], DB);
const PW = "app-pw-0123456789abcdef";

test("pure parts: role name, derived password, verifier shape, identifier checks", () => {
  assert.equal(appRoleName("app"), "app_rw");
  assert.equal(appRoleName("x".repeat(63)).length, 63);
  assert.equal(derivedAppPassword("a"), derivedAppPassword("a"));
  assert.notEqual(derivedAppPassword("a"), derivedAppPassword("b"));
  assert.ok(!derivedAppPassword("owner-pw").includes("owner-pw"));
  assert.match(
    scramVerifier("pw", "r"),
    /^SCRAM-SHA-256\$4096:[A-Za-z0-9+/=]{24}\$[A-Za-z0-9+/=]{44}:[A-Za-z0-9+/=]{44}$/,
  );
  assert.equal(scramVerifier("pw", "r"), scramVerifier("pw", "r"));
  assert.notEqual(scramVerifier("pw", "r"), scramVerifier("pw2", "r"));
  const sql = appRoleSql({ owner: "o", role: "o_rw", database: "d", verifier: scramVerifier(PW, "o_rw") });
  assert.ok(!sql.includes(PW));
  for (const [spec, rule] of [
    [{ owner: "o; DROP", role: "r", database: "d" }, /database.user/],
    [{ owner: "o", role: "r", database: 'd"' }, /database.name/],
    [{ owner: "o", role: "o", database: "d" }, /must differ/],
  ] as const) {
    assert.throws(() => appRoleSql({ ...spec, verifier: scramVerifier("x", "r") }), rule);
  }
  assert.throws(
    () => appRoleSql({ owner: "o", role: "r", database: "d", verifier: "plain-password" }),
    /SCRAM/,
  );
  assert.throws(() => appRoleCommand("o", "d; rm -rf /"), /database.name/);
  assert.ok(!appRoleCommand("o", "d").includes("PGPASSWORD="));
});

test("the set-up runs through the component's command; the app role gets DML on old and later tables", async () => {
  await owner("CREATE TABLE existing (id int PRIMARY KEY, v text); INSERT INTO existing VALUES (1, 'a')");
  const r = await setUp(PW);
  assert.equal(r.code, 0, r.out);
  // Created by a later migration (as the owner), after the set-up: covered by default privileges.
  await owner("CREATE TABLE later (id serial PRIMARY KEY, v text)");
  await owner("CREATE SCHEMA billing; CREATE TABLE billing.invoices (id bigserial PRIMARY KEY, total int)");
  await asApp(PW, async (c) => {
    assert.deepEqual((await c.query("SELECT v FROM existing")).rows, [{ v: "a" }]);
    await c.query("INSERT INTO later (v) VALUES ('x'), ('y')");
    await c.query("UPDATE later SET v = 'z' WHERE v = 'x'");
    await c.query("DELETE FROM later WHERE v = 'y'");
    assert.deepEqual((await c.query("SELECT v FROM later")).rows, [{ v: "z" }]);
    await c.query("INSERT INTO billing.invoices (total) VALUES (5)");
    assert.equal((await c.query("SELECT count(*)::int AS n FROM billing.invoices")).rows[0].n, 1);
  });
});

test("the app role is no superuser: no COPY TO PROGRAM, no CREATE, no DROP, no ALTER SYSTEM, no C functions", async () => {
  assert.equal((await setUp(PW)).code, 0);
  const [attrs] = await owner(
    `SELECT rolsuper, rolcreatedb, rolcreaterole, rolreplication, rolbypassrls FROM pg_roles WHERE rolname = '${ROLE}'`,
  );
  assert.deepEqual(attrs, {
    rolsuper: false,
    rolcreatedb: false,
    rolcreaterole: false,
    rolreplication: false,
    rolbypassrls: false,
  });
  await asApp(PW, async (c) => {
    const denied = async (sql: string, why: RegExp) => {
      await assert.rejects(c.query(sql), why, sql);
    };
    await denied("COPY (SELECT 1) TO PROGRAM 'id'", /permission denied|pg_execute_server_program/);
    await denied("CREATE TABLE evil (x int)", /permission denied for schema public/);
    await denied("CREATE TABLE billing.evil (x int)", /permission denied for schema billing/);
    await denied("DROP TABLE later", /must be owner/);
    await denied("ALTER SYSTEM SET work_mem = '1MB'", /permission denied/);
    await denied(
      "CREATE FUNCTION pg_temp.f() RETURNS int AS 'libc.so.6', 'getpid' LANGUAGE c",
      /permission denied for language c/,
    );
    await denied("CREATE ROLE sneaky", /permission denied/);
  });
});

test("re-running is idempotent and takes back a dangerous membership granted by hand", async () => {
  await owner(`GRANT pg_execute_server_program TO ${ROLE}`);
  const first = await setUp(PW);
  const second = await setUp(PW);
  assert.equal(first.code, 0, first.out);
  assert.equal(second.code, 0, second.out);
  const grants = await owner(
    `SELECT table_name, string_agg(privilege_type, ',' ORDER BY privilege_type) AS p
       FROM information_schema.role_table_grants WHERE grantee = '${ROLE}' GROUP BY table_name ORDER BY table_name`,
  );
  assert.deepEqual(grants, [
    { table_name: "existing", p: "DELETE,INSERT,SELECT,UPDATE" },
    { table_name: "invoices", p: "DELETE,INSERT,SELECT,UPDATE" },
    { table_name: "later", p: "DELETE,INSERT,SELECT,UPDATE" },
  ]);
  const members = await owner(
    `SELECT count(*)::int AS n FROM pg_auth_members WHERE member = (SELECT oid FROM pg_roles WHERE rolname = '${ROLE}')`,
  );
  assert.deepEqual(members, [{ n: 0 }]);
  await asApp(PW, (c) =>
    assert.rejects(c.query("COPY (SELECT 1) TO PROGRAM 'id'"), /permission denied|pg_execute_server_program/),
  );
});

test("a password change is applied: the old one stops working, the new one logs in", async () => {
  const NEW = "rotated-pw-9876543210";
  assert.equal((await setUp(NEW)).code, 0);
  await assert.rejects(
    asApp(PW, async () => {}),
    /password authentication failed/,
  );
  assert.equal(await asApp(NEW, async (c) => (await c.query("SELECT current_user AS u")).rows[0].u), ROLE);
});

test("a set-up that fails half-way changes nothing (one transaction) and its output holds no password", async () => {
  const r = await setUp("never-applied-pw-123", "SELECT 1/0;\n");
  assert.notEqual(r.code, 0);
  assert.match(r.out, /division by zero/);
  assert.ok(!r.out.includes("never-applied-pw-123") && !r.out.includes(pg.password), r.out);
  await assert.rejects(
    asApp("never-applied-pw-123", async () => {}),
    /password authentication failed/,
  );
  await asApp("rotated-pw-9876543210", async () => {});
});

test("docs/configuration.md's snippet for external databases gives app_rw the same rights (run as the owner)", async () => {
  const readme = readFileSync(join(__dirname, "..", "..", "..", "docs", "configuration.md"), "utf8");
  const snippet = /\*\*External databases\*\*[\s\S]*?```sql\n([\s\S]*?)```/.exec(readme)?.[1];
  assert.ok(snippet, "docs/configuration.md has the SQL snippet");
  await pg.query(snippet.replace("PASSWORD '...'", "PASSWORD 'ext-app-pw-123'"));
  await pg.query("CREATE TABLE later_ext (id serial PRIMARY KEY, v text)");
  const c = new Client({
    host: "127.0.0.1",
    port: pg.port,
    user: "app_rw",
    password: "ext-app-pw-123",
    database: "postgres",
  });
  await c.connect();
  try {
    await c.query("INSERT INTO later_ext (v) VALUES ('x')");
    assert.equal((await c.query("UPDATE later_ext SET v = 'y'")).rowCount, 1);
    await assert.rejects(
      c.query("COPY (SELECT 1) TO PROGRAM 'id'"),
      /permission denied|pg_execute_server_program/,
    );
    await assert.rejects(c.query("CREATE TABLE evil (x int)"), /permission denied for schema public/);
    await assert.rejects(c.query("DROP TABLE later_ext"), /must be owner/);
  } finally {
    await c.end();
  }
});
