import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { setupMocks, type RecordedResource } from "../helpers/mocks";
import { startPostgres, type TestPostgres } from "../helpers/postgres";

// Issue 14, item 8: @pulumi/command puts a failed command's whole output in its error text, whatever
// `logging` says. The migration command the program declares is run here for real (real PostgreSQL,
// the demo app's node-pg-migrate) as the command provider would: `sh -c create` in `dir` with `environment`.
const root = resolve(__dirname, "..", "..");
const PASSWORD = "Leak-Pa55word-77";
let pg: TestPostgres;
let data: string;
let byName: (n: string) => RecordedResource;

before(async () => {
  pg = await startPostgres({ password: PASSWORD });
  data = await mkdtemp(join(tmpdir(), "sd-migration-log-"));
  ({ byName } = await setupMocks({ stack: "staging" }));
  const { Migration } = await import("../../src/components/migration");
  const base = {
    dir: "migrations",
    runIn: "local" as const,
    migrationsChecksum: "c".repeat(64),
    backupId: "b1",
    timeoutSeconds: 120,
    projectDir: root,
    stack: "staging",
  };
  new Migration("ok", {
    ...base,
    tool: "node-pg-migrate",
    workDir: join(root, "examples/app"),
    databaseUrl: pulumi.secret(await pg.createDatabase("ok")),
  });
  new Migration("leak", {
    ...base,
    tool: "command",
    command: 'echo "connecting to $DATABASE_URL"; echo "boom" >&2; exit 3',
    workDir: join(root, "examples/app"),
    databaseUrl: pulumi.secret(await pg.createDatabase("leak")),
  });
  await new Promise((r) => setTimeout(r, 500));
});
after(async () => {
  await pg?.close();
  await rm(data, { recursive: true, force: true });
});

async function runDeclared(name: string) {
  const c = byName(`${name}-migrate`).inputs;
  const child = spawn("/bin/sh", ["-c", c.create], {
    cwd: resolve(root, c.dir ?? "."),
    env: { ...process.env, ...c.environment, SAFE_DEPLOY_DATA_DIR: data },
  });
  let out = "";
  child.stdout.on("data", (d) => (out += d));
  child.stderr.on("data", (d) => (out += d));
  const code: number = await new Promise((r) => child.on("close", r));
  const logPath = join(data, "logs/migrations/staging.log");
  return { code, out, logPath, inputs: c };
}

test("a failing migration tool that prints the database URL: the engine sees one line naming the 0600 log", async () => {
  const r = await runDeclared("leak");
  assert.notEqual(r.code, 0);
  assert.ok(!r.out.includes(PASSWORD), `the command's own output carries the password: ${r.out}`);
  assert.ok(!r.out.includes("boom"), "the tool's output stays in the log");
  assert.match(r.out, new RegExp(`migration failed \\(exit code \\d+\\); its output is in ${r.logPath}`));
  assert.equal((await stat(r.logPath)).mode & 0o777, 0o600);
  assert.match(await readFile(r.logPath, "utf8"), /boom/);
});

test("a real node-pg-migrate run applies the migrations; only the ok line reaches the engine", async () => {
  const r = await runDeclared("ok");
  assert.equal(r.code, 0, r.out);
  assert.equal(r.out, `migration: ok; output in ${r.logPath}\n`);
  assert.equal((await stat(r.logPath)).mode & 0o777, 0o600);
  const rows = await pg.query(
    "SELECT count(*)::int AS n FROM information_schema.tables WHERE table_name = 'notes'",
    [],
    "ok",
  );
  assert.equal(rows[0].n, 1);
});

test("no migration command hands its previous (secret) stdout to the next run", () => {
  for (const n of ["ok", "leak"]) assert.equal(byName(`${n}-migrate`).inputs.addPreviousOutputInEnv, false);
});
