import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readFileSync, readdirSync } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough, Writable } from "node:stream";
import { promisify } from "node:util";
import { runRollback } from "../../src/cli/commands/rollback";
import { runStatus } from "../../src/cli/commands/status";
import type { CommandDeps } from "../../src/cli/shared";
import type { StackOptions } from "../../src/cli/stack";
import type { ConfigMap, StackAccess, UpOptions } from "../../src/core/release/stack-port";
import { createBackup } from "../../src/core/backup";
import { Ledger, type ReleaseRecord } from "../../src/core/release/ledger";
import { startPostgres, type TestPostgres } from "../helpers/postgres";

// `safe-deploy rollback` and `status` as a person runs them. Real: a git project, PostgreSQL, backups and
// restores, the ledger, the lock, git worktrees, an HTTP app. Fake: only the Pulumi engine, whose `up`
// records which stack file (image) it was given.
const PASSWORD = "r0llback-Pa55";
const TOKEN = "health-tok-7f3e9a";
let pg: TestPostgres;
let project: string;
let app: Server;
let appUrl = "";
let commitA = "";
let commitB = "";
const upImages: string[] = [];

const run = promisify(execFile);
const git = async (...args: string[]) => (await run("git", ["-C", project, ...args])).stdout.trim();
const stackYaml = (image: string) =>
  `encryptionsalt: v1:abc\nconfig:\n  safe-deploy:app:\n    image: ${image}\n`;
const sql = (q: string) => pg.query(q, [], "app");

before(async () => {
  pg = await startPostgres({ password: PASSWORD });
  await pg.query("CREATE DATABASE app");
  app = createServer((_req, res) => res.end("ok"));
  await new Promise<void>((r) => app.listen(0, "127.0.0.1", r));
  const addr = app.address();
  appUrl = `http://127.0.0.1:${typeof addr === "object" && addr ? addr.port : 0}`;
  project = await mkdtemp(join(tmpdir(), "sd-rollback-"));
  await git("init", "-q", "-b", "main");
  await git("config", "user.email", "t@example.com");
  await git("config", "user.name", "t");
  await writeFile(join(project, "Pulumi.yaml"), "name: safe-deploy\nruntime: nodejs\n");
  await writeFile(join(project, ".gitignore"), "backups/\nlogs/\n.safe-deploy*/\n");
  await mkdir(join(project, "migrations"));
  await writeFile(join(project, "migrations", "001.sql"), "SELECT 1;");
  await writeFile(join(project, "Pulumi.staging.yaml"), stackYaml("web:a"));
  await git("add", "-A");
  await git("commit", "-qm", "a");
  commitA = await git("rev-parse", "HEAD");
  await writeFile(join(project, "migrations", "002.sql"), "SELECT 2;");
  await writeFile(join(project, "Pulumi.staging.yaml"), stackYaml("web:b"));
  await git("add", "-A");
  await git("commit", "-qm", "b");
  commitB = await git("rev-parse", "HEAD");
  assert.notEqual(commitA, commitB);
});

after(async () => {
  await new Promise((r) => app.close(r));
  await pg?.close();
  if (project) await rm(project, { recursive: true, force: true });
});

function stackConfig(extra: ConfigMap = {}): ConfigMap {
  const plain = (v: unknown) => ({ value: JSON.stringify(v), secret: false });
  return {
    "safe-deploy:app": plain({ image: "web:any" }),
    "safe-deploy:database": plain({ mode: "external" }),
    "safe-deploy:databaseUrl": { value: pg.url("app"), secret: true },
    "safe-deploy:backup": plain({ dir: "./backups/staging", compression: "gzip" }),
    "safe-deploy:migrations": plain({ tool: "node-pg-migrate", workDir: ".", dir: "migrations" }),
    "safe-deploy:health": plain({ soakAttempts: 0 }),
    ...extra,
  };
}

function fakeOpenStack(config: () => ConfigMap = () => stackConfig()) {
  return async (o: StackOptions): Promise<StackAccess> => ({
    name: o.stack,
    getAllConfig: async () => config(),
    setAllConfig: async () => assert.fail("a release is re-applied through its stack file"),
    exportState: async () => ({ version: 3, deployment: { resources: [], pending_operations: [] } }),
    importState: async () => undefined,
    refresh: async () => undefined,
    cancel: async () => undefined,
    history: async () => [],
    outputs: async () => ({ url: { value: appUrl, secret: false } }),
    up: async (u: UpOptions = {}) => {
      const text = readFileSync(join(u.workDir ?? o.projectDir, "Pulumi.staging.yaml"), "utf8");
      upImages.push(/image: (\S+)/.exec(text)![1]);
      return { outputs: { url: { value: appUrl, secret: false } } };
    },
  });
}

const lines: string[] = [];
const deps: CommandDeps = {
  openStack: fakeOpenStack(),
  out: (l) => void lines.push(l),
  console: { write: (s: string) => lines.push(s) },
  terminal: { input: new PassThrough(), output: new PassThrough(), isTTY: false },
};

/** A terminal for the menu, and a way to type into it once a prompt is on screen. */
function terminal() {
  const input = new PassThrough();
  let screen = "";
  const output = new Writable({
    write(chunk: Buffer, _enc, cb) {
      screen += chunk.toString();
      cb();
    },
  });
  // Each prompt ends its pipe into the terminal when done, which must not close it.
  output.end = (() => output) as typeof output.end;
  let mark = 0;
  const onScreen = async (text: string) => {
    for (let i = 0; !screen.slice(mark).includes(text); i++) {
      if (i > 400) throw new Error(`"${text}" never appeared; screen: ${screen.slice(mark)}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  };
  const keys = (...ks: string[]) => {
    for (const k of ks) input.write(k);
    mark = screen.length;
  };
  return { deps: { ...deps, terminal: { input, output, isTTY: true } } as CommandDeps, onScreen, keys };
}

async function good(ledger: Ledger, r: Parameters<Ledger["create"]>[0]): Promise<ReleaseRecord> {
  const rec = await ledger.create(r);
  return ledger.markResult(rec.id, "good");
}

test("menu: the release picked is the release re-applied, also when an older one ran the same commit with another stack file", async () => {
  const ledger = new Ledger(join(project, ".safe-deploy-menu"), "staging");
  // The stack file may change without a commit (its text is recorded): two releases of commit B.
  const one = await good(ledger, {
    stack: "staging",
    commit: commitB,
    config: {},
    configFile: stackYaml("web:one"),
    time: new Date(Date.now() - 2 * 3600_000),
  });
  const two = await good(ledger, {
    stack: "staging",
    commit: commitB,
    config: {},
    configFile: stackYaml("web:two"),
    time: new Date(Date.now() - 3600_000),
  });
  const t = terminal();
  lines.length = 0;
  upImages.length = 0;
  const done = runRollback({ stack: "staging", projectDir: project, stateDir: ".safe-deploy-menu" }, t.deps);
  const DOWN = "\u001b[B";
  await t.onScreen("1. Recent releases");
  t.keys(DOWN, DOWN, "\r"); // 3. Roll back to a commit
  await t.onScreen("another commit...");
  t.keys(DOWN, "\r"); // the second in the list: the older release, `one`
  await t.onScreen("Go ahead?");
  t.keys("y", "\r");
  await done;
  const out = lines.join("\n");
  assert.ok(out.includes(`re-apply release ${one.id}`), out);
  assert.ok(!out.includes(`re-apply release ${two.id}`), out);
  assert.deepEqual(upImages, ["web:one"], "the stack file of the release picked");
  const [rec] = await ledger.list();
  assert.equal(rec.rolledBackTo, one.id);
});

test("menu: Ctrl-C at a prompt is a cancel that says nothing changed (exit 3), not the prompt library's error", async () => {
  const t = terminal();
  upImages.length = 0;
  const done = runRollback({ stack: "staging", projectDir: project, stateDir: ".safe-deploy-menu" }, t.deps);
  await t.onScreen("1. Recent releases");
  t.keys("\u0003");
  await assert.rejects(done, (e: Error & { exitCode?: number }) => {
    assert.equal(e.exitCode, 3, e.message);
    assert.match(e.message, /^rollback cancelled \(Ctrl-C at the prompt\); nothing changed$/);
    return true;
  });
  // And at the confirmation, after the plan was shown.
  const t2 = terminal();
  const done2 = runRollback(
    { stack: "staging", projectDir: project, stateDir: ".safe-deploy-menu", commit: commitB },
    t2.deps,
  );
  await t2.onScreen("Go ahead?");
  t2.keys("\u0003");
  await assert.rejects(done2, (e: Error & { exitCode?: number }) => {
    assert.equal(e.exitCode, 3, e.message);
    assert.match(e.message, /rollback cancelled.*nothing changed/);
    return true;
  });
  assert.deepEqual(upImages, []);
});

test("--to a release of another stack names that stack and --stack; a malformed id names --to", async () => {
  const stateDir = ".safe-deploy-other";
  const prod = new Ledger(join(project, stateDir), "production");
  const r = await good(prod, { stack: "production", commit: commitA, config: {} });
  await assert.rejects(
    runRollback({ stack: "staging", projectDir: project, stateDir, to: r.id, yes: true }, deps),
    (e: Error & { exitCode?: number }) => {
      assert.equal(e.exitCode, 2);
      assert.match(
        e.message,
        new RegExp(
          `^--to ${r.id}: that is a release of stack "production", not of "staging": pass --stack production`,
        ),
      );
      return true;
    },
  );
  await assert.rejects(
    runRollback({ stack: "staging", projectDir: project, stateDir, to: "latest", yes: true }, deps),
    (e: Error & { exitCode?: number }) => {
      assert.equal(e.exitCode, 2);
      assert.match(e.message, /^--to latest: `latest` is not a release id/);
      return true;
    },
  );
  await assert.rejects(
    runRollback(
      { stack: "staging", projectDir: project, stateDir, to: "r-20000101-000000-abc-1a2b", yes: true },
      deps,
    ),
    (e: Error) =>
      /^--to r-20000101-000000-abc-1a2b: release `r-20000101-000000-abc-1a2b` not found for stack "staging"/.test(
        e.message,
      ),
  );
});

test("--backup of another database is refused before anything changes, naming both databases and seed", async () => {
  const otherUrl = await pg.createDatabase("shop");
  await pg.query("CREATE TABLE orders (id int); INSERT INTO orders VALUES (1)", [], "shop");
  const file = (await createBackup({ databaseUrl: otherUrl, dir: join(project, "backups/shop") })).file;
  await sql("CREATE TABLE IF NOT EXISTS keep (id int); INSERT INTO keep VALUES (42)");
  const backups = () => readdirSync(join(project, "backups/staging")).length;
  await mkdir(join(project, "backups/staging"), { recursive: true });
  const before = backups();
  await assert.rejects(
    runRollback({ stack: "staging", projectDir: project, backup: file, yes: true }, deps),
    (e: Error & { exitCode?: number }) => {
      assert.equal(e.exitCode, 2, e.message);
      assert.match(e.message, /is a backup of database "shop", not of "app".*nothing was changed/);
      assert.match(e.message, /safe-deploy seed --stack staging --backup FILE/);
      return true;
    },
  );
  assert.equal(backups(), before, "no safety backup, no restore");
  assert.deepEqual(await sql("SELECT id FROM keep"), [{ id: 42 }]);
  await sql("DROP TABLE keep");
});

test("--to the release a manual rollback went back from: its database as that release left it, not the backup the rollback restored", async () => {
  const stateDir = ".safe-deploy-forward";
  const ledger = new Ledger(join(project, stateDir), "staging");
  await sql(
    "CREATE TABLE pgmigrations (id serial PRIMARY KEY, name text NOT NULL, run_on timestamp NOT NULL DEFAULT now())",
  );
  await sql("INSERT INTO pgmigrations (name) VALUES ('001')");
  await sql("CREATE TABLE notes (body text); INSERT INTO notes VALUES ('a-era')");
  const a = await good(ledger, {
    stack: "staging",
    commit: commitA,
    config: {},
    configFile: stackYaml("web:a"),
    schemaVersion: "001",
    time: new Date(Date.now() - 2 * 3600_000),
  });
  // B's deploy: its pre-deploy backup (the database as A left it), then its migration and its data.
  const bBackup = (
    await createBackup({
      databaseUrl: pg.url("app"),
      dir: join(project, "backups/staging"),
      label: "pre-deploy",
    })
  ).file;
  await sql("INSERT INTO pgmigrations (name) VALUES ('002')");
  await sql("INSERT INTO notes VALUES ('b-era')");
  const b = await good(ledger, {
    stack: "staging",
    commit: commitB,
    config: {},
    configFile: stackYaml("web:b"),
    schemaVersionBefore: "001",
    schemaVersion: "002",
    backupFile: bBackup,
    time: new Date(Date.now() - 3600_000),
  });
  const notes = async () => (await sql("SELECT body FROM notes ORDER BY 1")).map((r) => r.body);
  const schema = async () =>
    (await sql("SELECT name FROM pgmigrations ORDER BY run_on DESC, id DESC LIMIT 1"))[0].name;
  // Back to A: B's pre-deploy backup is restored.
  await runRollback({ stack: "staging", projectDir: project, stateDir, to: a.id, yes: true }, deps);
  assert.equal(await schema(), "001");
  assert.deepEqual(await notes(), ["a-era"]);
  // Forward to B again: the database as B left it (the rollback's safety backup), never B's pre-deploy
  // backup, which is A's database and would start B's program on a schema it moved past.
  lines.length = 0;
  upImages.length = 0;
  await runRollback({ stack: "staging", projectDir: project, stateDir, to: b.id, yes: true }, deps);
  const out = lines.join("\n");
  assert.ok(!out.includes(bBackup), out);
  assert.match(out, /restoring .*_safety(-\d+)?\./);
  assert.equal(await schema(), "002");
  assert.deepEqual(await notes(), ["a-era", "b-era"], "B's data is back");
  assert.deepEqual(upImages, ["web:b"]);
});

test("status: a health URL's token and the stack's secrets stay masked, in text and in --json", async () => {
  const plain = (v: unknown) => ({ value: JSON.stringify(v), secret: false });
  const withToken: CommandDeps = {
    ...deps,
    openStack: fakeOpenStack(() =>
      stackConfig({
        "safe-deploy:health": plain({ soakAttempts: 0, url: `${appUrl}/health?token=${TOKEN}` }),
      }),
    ),
  };
  for (const json of [false, true]) {
    lines.length = 0;
    const code = await runStatus({ stack: "staging", projectDir: project, json }, withToken);
    const out = lines.join("\n");
    assert.equal(code, 0, out);
    assert.ok(!out.includes(TOKEN), out);
    assert.ok(!out.includes(PASSWORD), out);
    if (json) assert.equal(JSON.parse(out).health.url, `${appUrl}/health?token=***`);
    else assert.match(out, /health .*\/health\?token=\*\*\*: ok/);
  }
});
