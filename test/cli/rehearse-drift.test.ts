// Issue 16: rehearse names the locks each statement takes, drift/rehearse read the stack's migrations,
// give the CREATEDB advice, and print JSON. Real PostgreSQL, real node-pg-migrate.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFile, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { runRehearse } from "../../src/cli/commands/rehearse";
import { runDrift } from "../../src/cli/commands/drift";
import { splitPassword } from "../../src/core/migrations/rehearsal";
import { startPostgres, type TestPostgres } from "../helpers/postgres";

const root = resolve(__dirname, "..", "..");
const BIN = join(root, "bin", "safe-deploy");
let pg: TestPostgres;
let tmp: string;
let backup: string;
let project: string;
const migrations = () => join(project, "app", "db");

const up = (sql: string) => `-- Up Migration\n${sql}\n\n-- Down Migration\nSELECT 1;\n`;

before(async () => {
  pg = await startPostgres();
  tmp = mkdtempSync(join(tmpdir(), "sd-rehearse-locks-"));
  const url = await pg.createDatabase("prod");
  await pg.query(
    "CREATE TABLE orders (id int PRIMARY KEY, email text); INSERT INTO orders SELECT g, g || '@x' FROM generate_series(1, 200) g",
    [],
    "prod",
  );
  backup = join(tmp, "prod.dump");
  const { url: bare, env } = splitPassword(url);
  await promisify(execFile)("/usr/lib/postgresql/15/bin/pg_dump", ["-Fc", "-f", backup, bare], {
    env: { ...process.env, ...env },
  });
  // A project whose stack config puts the migrations where no command's own default looks.
  project = join(tmp, "project");
  mkdirSync(migrations(), { recursive: true });
  // Production's table predates the migrations; a database built from them (drift) needs it too.
  writeFileSync(
    join(migrations(), "1700000000000_orders.sql"),
    up("CREATE TABLE IF NOT EXISTS orders (id int PRIMARY KEY, email text);"),
  );
  writeFileSync(
    join(migrations(), "1700000001000_add-note.sql"),
    up("ALTER TABLE orders ADD COLUMN note text;"),
  );
  writeFileSync(
    join(migrations(), "1700000002000_email-index.sql"),
    up(
      "-- safe-deploy: allow create-index-without-concurrently\nCREATE INDEX orders_email_idx ON orders (email);",
    ),
  );
  // The tool is found in the work dir's node_modules, as in a real app.
  symlinkSync(join(root, "node_modules"), join(project, "app", "node_modules"));
  writeFileSync(join(project, "Pulumi.yaml"), "name: safe-deploy\nruntime: nodejs\n");
  writeFileSync(
    join(project, "Pulumi.staging.yaml"),
    "config:\n  safe-deploy:migrations:\n    tool: node-pg-migrate\n    workDir: app\n    dir: db\n",
  );
  await pg.query("CREATE ROLE nocreate LOGIN PASSWORD 'pw-nocreate' NOCREATEDB");
});
after(async () => {
  await pg?.close();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

const cli = (args: string[]) => {
  const r = spawnSync(BIN, args, {
    encoding: "utf8",
    env: { ...process.env, DATABASE_URL: "", SAFE_DEPLOY_NO_BUNDLE: "1" },
    timeout: 180_000,
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
};

test("rehearse names the relation and lock mode each statement takes (ADD COLUMN, CREATE INDEX), never 'none seen'", async () => {
  const lines: string[] = [];
  await runRehearse({
    backup,
    migrations: "db",
    workDir: join(project, "app"),
    databaseUrl: pg.url("postgres"),
    out: (t) => lines.push(t),
  });
  const text = lines.join("\n");
  assert.doesNotMatch(text, /none seen/, text);
  assert.match(text, /^ {4}ALTER TABLE public\.orders: AccessExclusiveLock on public\.orders$/m, text);
  assert.match(text, /^ {4}CREATE INDEX public\.orders_email_idx: ShareLock on public\.orders$/m, text);
  assert.doesNotMatch(text, / on \d+\b/, "relations by name, not OID");
});

test("rehearse --json: the report as JSON, each step's statements and locks", () => {
  const r = cli([
    "rehearse",
    "--backup",
    backup,
    "--stack",
    "staging",
    "--project-dir",
    project,
    "--database-url",
    pg.url("postgres"),
    "--json",
  ]);
  assert.equal(r.code, 0, r.err);
  const j = JSON.parse(r.out);
  assert.equal(j.passed, true);
  assert.deepEqual(
    j.steps.map((s: { to: string }) => s.to),
    ["1700000000000_orders", "1700000001000_add-note", "1700000002000_email-index"],
    "the stack config's app/db, not ./migrations",
  );
  assert.ok(j.steps[2].locksHeld.includes("ShareLock on public.orders"), r.out);
});

test("without CREATEDB, drift and rehearse give verify --restore-test's advice, with --scratch-url", async () => {
  const url = pg.url("prod").replace(/\/\/[^@]+@/, "//nocreate:pw-nocreate@");
  const advice =
    /role "nocreate" may not create databases, and .* grant it with `ALTER ROLE "nocreate" CREATEDB` or use an admin's `--database-url`, or pass `--scratch-url`/;
  await assert.rejects(
    runRehearse({ backup, migrations: "db", workDir: join(project, "app"), databaseUrl: url, out: () => {} }),
    (e: Error & { exitCode?: number }) => (
      assert.match(e.message, advice),
      assert.equal(e.exitCode, 3),
      true
    ),
  );
  await assert.rejects(
    runDrift({ migrations: "db", workDir: join(project, "app"), databaseUrl: url, out: () => {} }),
    (e: Error) => (assert.match(e.message, advice), true),
  );
});

test("rehearse --scratch-url restores into the given empty database and empties it after; a non-empty one is refused", async () => {
  const scratch = await pg.createDatabase("given_scratch");
  const lines: string[] = [];
  await runRehearse({
    backup,
    migrations: "db",
    workDir: join(project, "app"),
    scratchUrl: scratch,
    out: (t) => lines.push(t),
  });
  assert.match(lines.join("\n"), /1700000002000_email-index/);
  const left = await pg.query(
    "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'",
    [],
    "given_scratch",
  );
  assert.deepEqual(left, [], "emptied after");
  await assert.rejects(
    runRehearse({
      backup,
      migrations: "db",
      workDir: join(project, "app"),
      scratchUrl: pg.url("prod"),
      out: () => {},
    }),
    /`--scratch-url` database "prod" is not empty \(public\.orders/,
  );
});

test("migrate and drift --stack read the stack's migrations; drift --json says drift or not", async () => {
  const live = await pg.createDatabase("live");
  const stack = ["--stack", "staging", "--project-dir", project, "--database-url", live];
  const m = cli(["migrate", "up", ...stack]);
  assert.equal(m.code, 0, m.err);
  assert.match(m.out, /schema version: \(none\) -> 1700000002000_email-index/);
  const clean = cli(["drift", ...stack, "--json"]);
  assert.equal(clean.code, 0, clean.err);
  assert.equal(JSON.parse(clean.out).drift, false);
  await pg.query("ALTER TABLE orders ADD COLUMN by_hand int", [], "live");
  const drifted = cli(["drift", ...stack, "--json"]);
  assert.equal(drifted.code, 1, drifted.err);
  const j = JSON.parse(drifted.out);
  assert.equal(j.drift, true);
  assert.match(JSON.stringify(j.items), /by_hand/);
});

test("rehearse shows its steps as they finish on a terminal, none in a pipe", () => {
  const args = [
    "rehearse",
    "--backup",
    backup,
    "--stack",
    "staging",
    "--project-dir",
    project,
    "--database-url",
    pg.url("postgres"),
  ];
  const q = (s: string) => `'${s.replace(/'/g, "'\\''")}'`;
  const tty = spawnSync("script", ["-qfec", [BIN, ...args].map(q).join(" "), "/dev/null"], {
    encoding: "utf8",
    env: { ...process.env, CI: "", DATABASE_URL: "" },
    timeout: 180_000,
  });
  assert.equal(tty.status, 0, tty.stdout);
  assert.match(tty.stdout, /rehearsal: restored in \d+\.\d s; applying migrations/);
  assert.match(tty.stdout, /rehearsal: 1700000002000_email-index in \d+\.\d\d s/);
  const piped = cli(args);
  assert.equal(piped.code, 0, piped.err);
  assert.doesNotMatch(piped.out + piped.err, /rehearsal: restored in/);
});
