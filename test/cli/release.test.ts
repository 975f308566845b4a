import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync, readFileSync, readdirSync, statSync } from "node:fs";
import { mkdir, mkdtemp, readFile, readdir, rm, unlink, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough, Writable } from "node:stream";
import { promisify } from "node:util";
import { quickChoice, quickTarget, runRollback } from "../../src/cli/commands/rollback";
import { runSeed } from "../../src/cli/commands/seed";
import { runStatus } from "../../src/cli/commands/status";
import { runUp } from "../../src/cli/commands/up";
import type { CommandDeps } from "../../src/cli/shared";
import type { StackOptions } from "../../src/cli/stack";
import type { ConfigMap, StackAccess, StepEvent, UpOptions } from "../../src/core/release/stack-port";
import { createBackup } from "../../src/core/backup";
import { CheckFailedError, ConfigError } from "../../src/core/errors";
import { Ledger } from "../../src/core/release/ledger";
import {
  docker,
  ensureDocker,
  postgresImage,
  removeContainer,
  runContainer,
  type TestContainer,
} from "../helpers/docker";
import { startPostgres, type TestPostgres } from "../helpers/postgres";

const run = promisify(execFile);

// Real: a git project with commits, PostgreSQL, pg_dump/pg_restore backups and restores, the ledger,
// the lock, git worktrees, the notification log, an HTTP app, a Docker container for `status`.
// Fake: only the Pulumi engine. Its `up` does what the program would: reads Pulumi.staging.yaml from the
// directory it runs in, takes a pre-deploy backup when the release changes, applies that tree's
// migrations, "starts" the image, and fails the health gate for the image web:bad.
const PASSWORD = "s3cret-Pa55-word";
let pg: TestPostgres;
let project: string;
let app: Server;
let appUrl: string;
let running = "";
let forcedDown = false;
let hits = 0;
let container: TestContainer | undefined;
const upCalls: Array<{ workDir?: string; commit?: string; image: string }> = [];

before(async () => {
  await ensureDocker();
  pg = await startPostgres({ password: PASSWORD });
  await pg.query("CREATE DATABASE app");
  app = createServer((req, res) => {
    hits += 1;
    const ok = !forcedDown && running !== "" && running !== "web:bad";
    res.statusCode = ok ? 200 : 503;
    res.end(ok ? `ok ${running}` : "down");
  });
  await new Promise<void>((r) => app.listen(0, "127.0.0.1", r));
  const addr = app.address();
  appUrl = `http://127.0.0.1:${typeof addr === "object" && addr ? addr.port : 0}`;
  project = await mkdtemp(join(tmpdir(), "sd-release-"));
  await git("init", "-q", "-b", "main");
  await git("config", "user.email", "t@example.com");
  await git("config", "user.name", "t");
  await writeFile(join(project, "Pulumi.yaml"), "name: safe-deploy\nruntime: nodejs\n");
  await writeFile(join(project, ".gitignore"), "backups/\nlogs/\n.safe-deploy/\n");
  await mkdir(join(project, "migrations"));
});

after(async () => {
  await new Promise((r) => app.close(r));
  if (container) await removeContainer(container.id);
  await pg?.close();
  if (project) await rm(project, { recursive: true, force: true });
});

async function git(...args: string[]): Promise<string> {
  return (await run("git", ["-C", project, ...args])).stdout.trim();
}

/** One commit of the project: the stack file naming the image, and the migrations so far. */
async function commit(image: string, migrations: Record<string, string>): Promise<string> {
  await writeFile(join(project, "Pulumi.staging.yaml"), stackYaml(image));
  for (const [name, sql] of Object.entries(migrations))
    await writeFile(join(project, "migrations", name), sql);
  await git("add", "-A");
  await git("commit", "-qm", `deploy ${image}`);
  return git("rev-parse", "HEAD");
}

const stackYaml = (image: string) =>
  `encryptionsalt: v1:abc\nconfig:\n  safe-deploy:app:\n    image: ${image}\n`;

const appDb = () => pg.url("app");
const sql = (q: string) => pg.query(q, [], "app");

/** What `pulumi config` would give the CLI (secrets decrypted, objects as JSON). */
function stackConfig(): ConfigMap {
  const plain = (v: unknown) => ({ value: JSON.stringify(v), secret: false });
  return {
    "safe-deploy:app": plain({ image: "web:any" }),
    "safe-deploy:database": plain({ mode: "external" }),
    "safe-deploy:databaseUrl": { value: appDb(), secret: true },
    "safe-deploy:backup": plain({ dir: "./backups/staging", compression: "zstd" }),
    "safe-deploy:migrations": plain({ tool: "node-pg-migrate", workDir: ".", dir: "migrations" }),
    "safe-deploy:health": plain({ soakAttempts: 3, soakDelaySeconds: 0.05, timeoutSeconds: 2 }),
  };
}

const TYPES = {
  backup: "pulumi-nodejs:dynamic/safe-deploy:Backup",
  migration: "command:local:Command",
  app: "docker:index/container:Container",
  gate: "pulumi-nodejs:dynamic/safe-deploy:HealthGate",
};

/** The engine, faked: what `pulumi up` of this program does to the real database and app. */
function fakeOpenStack(): (o: StackOptions) => Promise<StackAccess> {
  let lastKey = "";
  return async (o) => {
    const outputs = async () => ({
      url: { value: appUrl, secret: false },
      containers: { value: JSON.stringify(container ? { app: container.name } : {}), secret: false },
    });
    return {
      name: o.stack,
      getAllConfig: async () => stackConfig(),
      setAllConfig: async () => assert.fail("a release is re-applied through its stack file"),
      exportState: async () => ({
        version: 3,
        deployment: { resources: [{ urn: "x" }], pending_operations: [] },
      }),
      importState: async () => undefined,
      refresh: async () => undefined,
      cancel: async () => undefined,
      history: async () => [],
      outputs,
      up: async (u: UpOptions = {}) => {
        const dir = u.workDir ?? o.projectDir;
        const image = /image: (\S+)/.exec(readFileSync(join(dir, "Pulumi.staging.yaml"), "utf8"))![1];
        upCalls.push({ workDir: u.workDir, commit: u.env?.SAFE_DEPLOY_COMMIT, image });
        const urn = (t: string, n: string) => `urn:pulumi:staging::safe-deploy::${t}::${n}`;
        const emit = (e: Omit<StepEvent, "urn"> & { name: string }) =>
          u.onEvent?.({ ...e, urn: urn(e.type, e.name) });
        const files = readdirSync(join(dir, "migrations"))
          .filter((f) => f.endsWith(".sql"))
          .sort();
        const key = `${image}|${files.join(",")}`;
        if (key !== lastKey) {
          // Backups go to the project, not to a rollback's worktree (SAFE_DEPLOY_DATA_DIR).
          const b = await createBackup({
            databaseUrl: appDb(),
            dir: join(o.projectDir, "backups/staging"),
            label: "pre-deploy",
          });
          emit({
            kind: "done",
            op: "create",
            type: TYPES.backup,
            name: "staging-backup",
            outputs: { file: b.file },
          });
          lastKey = key;
        }
        await sql(
          "CREATE TABLE IF NOT EXISTS pgmigrations (id serial PRIMARY KEY, name text NOT NULL, run_on timestamp NOT NULL DEFAULT now())",
        );
        const done = new Set((await sql("SELECT name FROM pgmigrations")).map((r) => String(r.name)));
        const pending = files.filter((f) => !done.has(f.replace(/\.sql$/, "")));
        for (const f of pending) {
          await sql(readFileSync(join(dir, "migrations", f), "utf8"));
          await sql(`INSERT INTO pgmigrations (name) VALUES ('${f.replace(/\.sql$/, "")}')`);
        }
        u.onOutput?.(`migrations applied: ${pending.length} (DATABASE_URL=${appDb()})\n`);
        emit({
          kind: "done",
          op: pending.length ? "create" : "same",
          type: TYPES.migration,
          name: "staging-migration-migrate",
        });
        running = image;
        emit({ kind: "done", op: "replace", type: TYPES.app, name: "staging-app-app" });
        if (image === "web:bad") {
          emit({ kind: "failed", op: "create", type: TYPES.gate, name: "staging-health" });
          throw new Error(`health gate failed: ${appUrl}/health answered 503 three times`);
        }
        emit({ kind: "done", op: "create", type: TYPES.gate, name: "staging-health" });
        return { outputs: await outputs() };
      },
    };
  };
}

const lines: string[] = [];
const deps: CommandDeps = {
  openStack: fakeOpenStack(),
  out: (l) => void lines.push(l),
  console: { write: (s: string) => lines.push(s) },
  terminal: { input: new PassThrough(), output: new PassThrough(), isTTY: false },
};
const up = (extra: Record<string, unknown> = {}) =>
  runUp({ stack: "staging", projectDir: project, ...extra }, deps);
const ledger = () => new Ledger(join(project, ".safe-deploy"), "staging");
const notesCount = async () => Number((await sql("SELECT count(*) AS n FROM notes"))[0].n);
const schema = async () => (await sql("SELECT name FROM pgmigrations ORDER BY id DESC LIMIT 1"))[0]?.name;
const columns = async () =>
  (await sql("SELECT column_name FROM information_schema.columns WHERE table_name = 'notes' ORDER BY 1")).map(
    (r) => r.column_name,
  );
const notifications = () => readFileSync(join(project, "logs/notifications.log"), "utf8");
let commitA = "";
let commitB = "";

test("up: a good deploy records a good release with its checkpoint, soaks, notifies, frees the lock", async () => {
  commitA = await commit("web:v1", {
    "001_init.sql":
      "CREATE TABLE notes (id serial PRIMARY KEY, body text NOT NULL); INSERT INTO notes (body) SELECT 'n' || g FROM generate_series(1, 20) g;",
  });
  hits = 0;
  const r = await up();
  assert.equal(r.result, "good");
  assert.equal(r.commit, commitA);
  assert.equal(r.schemaVersion, "001_init");
  assert.match(r.backupFile!, /backups\/staging\/backup_\d{8}_\d{6}_pre-deploy/);
  assert.ok(statSync(r.checkpoint!).isFile());
  assert.equal(statSync(r.checkpoint!).mode & 0o777, 0o600);
  assert.ok(hits >= 3, `the soak polled the app ${hits} time(s)`);
  assert.match(notifications(), /INFO.*Deploy of staging started[\s\S]*SUCCESS.*Deploy of staging succeeded/);
  const update = readFileSync(join(project, "logs/update.log"), "utf8");
  assert.match(update, /migrations applied: 1/, "the engine's output is in logs/update.log");
  const shown = lines.join("");
  assert.match(
    shown,
    /STEP: backup: create staging-backup[\s\S]*STEP: migration: create[\s\S]*STEP: health: create/,
  );
  assert.ok(!shown.includes("migrations applied"), "the engine's own output stays in the log file");
  assert.ok(!existsSync(join(project, ".safe-deploy/locks/staging.json")), "lock released");
});

test("up: a dirty tree, or a migration lint error, is refused before anything runs (exit 1, release bad at preflight)", async () => {
  const before = upCalls.length;
  await writeFile(join(project, "Pulumi.yaml"), "name: safe-deploy\nruntime: nodejs\ndescription: edited\n");
  await assert.rejects(up(), (e: unknown) => e instanceof CheckFailedError && /preflight/.test(e.message));
  assert.match(lines.join("\n"), /uncommitted changes.*--allow-dirty:\n.*ERROR: +M Pulumi\.yaml/);
  await git("checkout", "--", "Pulumi.yaml");
  // An untracked migration would run without being in the release's commit: refused too.
  await writeFile(join(project, "migrations/002_new.sql"), "CREATE TABLE extra (id int);");
  lines.length = 0;
  await assert.rejects(up(), (e: unknown) => e instanceof CheckFailedError && /preflight/.test(e.message));
  assert.match(lines.join("\n"), /untracked files.*--allow-dirty:\n.*\?\? migrations\/002_new\.sql/);
  await unlink(join(project, "migrations/002_new.sql"));
  await writeFile(join(project, "migrations/002_drop.sql"), "DROP TABLE notes;");
  lines.length = 0;
  await assert.rejects(up(), (e: unknown) => e instanceof CheckFailedError);
  assert.match(lines.join("\n"), /lint found 1 error\(s\).*002_drop\.sql:1 \[drop-table\]/);
  await unlink(join(project, "migrations/002_drop.sql"));
  assert.equal(upCalls.length, before, "pulumi up never ran");
  const [last] = await ledger().list();
  assert.equal(last.result, "bad");
  assert.equal(last.failedStage, "preflight");
});

test("up: a bad stack config is one usage error (exit 2) naming the key", async () => {
  const bad: CommandDeps = {
    ...deps,
    openStack: async (o) => ({
      ...(await fakeOpenStack()(o)),
      getAllConfig: async () => ({
        ...stackConfig(),
        "safe-deploy:health": { value: '{"retries":0}', secret: false },
      }),
    }),
  };
  await assert.rejects(
    runUp({ stack: "staging", projectDir: project }, bad),
    (e: unknown) => e instanceof ConfigError && e.exitCode === 2 && /health\.retries/.test(e.message),
  );
});

test("up: a secret key stored in plain text is refused (exit 2) naming `pulumi config set --secret`, its value never echoed", async () => {
  const plainSecret: CommandDeps = {
    ...deps,
    openStack: async (o) => ({
      ...(await fakeOpenStack()(o)),
      getAllConfig: async () => ({
        ...stackConfig(),
        "safe-deploy:databaseUrl": { value: appDb(), secret: false },
      }),
    }),
  };
  const before = upCalls.length;
  await assert.rejects(runUp({ stack: "staging", projectDir: project }, plainSecret), (e: unknown) => {
    assert.ok(e instanceof ConfigError && e.exitCode === 2, String(e));
    assert.match(e.message, /databaseUrl: stored in plain text in Pulumi\.staging\.yaml/);
    assert.match(e.message, /pulumi config set --secret databaseUrl/);
    assert.ok(!e.message.includes(PASSWORD));
    return true;
  });
  assert.equal(upCalls.length, before);
});

test("up: an unreachable database stops the deploy at preflight, without echoing its password", async () => {
  const down: CommandDeps = {
    ...deps,
    openStack: async (o) => ({
      ...(await fakeOpenStack()(o)),
      getAllConfig: async () => ({
        ...stackConfig(),
        "safe-deploy:databaseUrl": { value: `postgres://app:${PASSWORD}@127.0.0.1:1/app`, secret: true },
      }),
    }),
  };
  const before = upCalls.length;
  lines.length = 0;
  await assert.rejects(runUp({ stack: "staging", projectDir: project }, down), CheckFailedError);
  assert.match(lines.join(""), /the database \(127\.0\.0\.1.*\) is not reachable/);
  assert.ok(!lines.join("").includes(PASSWORD));
  assert.equal(upCalls.length, before);
});

test("up: a release failing its health gate after migrating rolls back by itself: data restored, previous program re-applied from its commit", async () => {
  commitB = await commit("web:v2", { "002_title.sql": "ALTER TABLE notes ADD COLUMN title text;" });
  const good = await up();
  assert.equal(good.schemaVersion, "002_title");
  const rows = await notesCount();
  await commit("web:bad", { "003_trim.sql": "DELETE FROM notes WHERE id > 5;" });
  const callsBefore = upCalls.length;
  await assert.rejects(
    up(),
    (e: unknown) => e instanceof CheckFailedError && /failed at health.*rolled back to/.test(e.message),
  );
  const [bad] = await ledger().list();
  assert.equal(bad.result, "rolled-back");
  assert.equal(bad.rolledBackTo, good.id);
  assert.equal(bad.failedStage, "health");
  assert.equal(await notesCount(), rows, "the rows the bad migration deleted are back");
  assert.equal(await schema(), "002_title");
  // The re-apply ran the previous commit's program from a temporary worktree with that release's config.
  const reapply = upCalls.slice(callsBefore)[1];
  assert.equal(reapply.commit, commitB);
  assert.equal(reapply.image, "web:v2");
  assert.ok(reapply.workDir && !existsSync(reapply.workDir), "the worktree is removed afterwards");
  assert.equal(running, "web:v2");
  assert.equal((await git("worktree", "list")).split("\n").length, 1);
  // The user's checkout is untouched, and backups stayed in the project.
  assert.match(await readFile(join(project, "Pulumi.staging.yaml"), "utf8"), /web:bad/);
  const backups = await readdir(join(project, "backups/staging"));
  assert.ok(
    backups.some((f) => /_safety(-\d+)?\./.test(f)),
    "a safety backup was taken before restoring",
  );
  assert.match(notifications(), /ERROR.*failed at health[\s\S]*ROLLBACK_SUCCESS/);
});

test("rollback --quick --yes: back to the good release before the running one, database restored to its schema", async () => {
  // the project's HEAD is the bad commit; the running release is web:v2 (schema 002)
  await git("reset", "-q", "--hard", commitB);
  const [, , first] = (await ledger().list()).filter((r) => r.result === "good").concat();
  assert.ok(first === undefined || first.commit === commitA);
  lines.length = 0;
  await runRollback({ stack: "staging", projectDir: project, quick: true, yes: true }, deps);
  const out = lines.join("\n");
  assert.match(
    out,
    /the database is at migration 002_title, release r-.* ran 001_init: restoring .*pre-deploy/,
  );
  assert.equal(running, "web:v1");
  assert.deepEqual(await columns(), ["body", "id"], "the column of 002 is gone with the restore");
  assert.equal(await schema(), "001_init");
  const [rec] = await ledger().list();
  assert.equal(rec.result, "good");
  assert.equal(rec.commit, commitA);
  assert.ok(rec.rolledBackTo, "the new release names the one it re-applied");
  assert.match(notifications(), /ROLLBACK_SUCCESS.*Rolled staging back to release/);
});

test("rollback refuses an old program against a schema it does not know, naming --full", async () => {
  // a commit whose migrations never reached 001_init
  await git("checkout", "-q", "--orphan", "other");
  await git("rm", "-rq", "--cached", "migrations");
  await rm(join(project, "migrations"), { recursive: true });
  await mkdir(join(project, "migrations"));
  await writeFile(join(project, "migrations/000_other.sql"), "SELECT 1;");
  await git("add", "-A");
  await git("commit", "-qm", "other");
  const other = await git("rev-parse", "HEAD");
  await git("checkout", "-q", "-f", "main");
  await git("reset", "-q", "--hard", commitB);
  const before = upCalls.length;
  await assert.rejects(
    runRollback({ stack: "staging", projectDir: project, commit: other, yes: true }, deps),
    (e: unknown) => e instanceof ConfigError && /schema it does not know.*--full/.test(e.message),
  );
  assert.equal(upCalls.length, before);
});

test("rollback --backup FILE restores only the database (safety first); bad flags are usage errors", async () => {
  const file = (
    await createBackup({ databaseUrl: appDb(), dir: join(project, "backups/manual"), label: "manual" })
  ).file;
  await sql("DELETE FROM notes");
  await runRollback({ stack: "staging", projectDir: project, backup: file, yes: true }, deps);
  assert.equal(await notesCount(), 20);
  await assert.rejects(
    runRollback({ stack: "staging", projectDir: project, backup: "/nope.dump", yes: true }, deps),
    (e: unknown) => e instanceof ConfigError && /--backup \/nope\.dump: no such file/.test(e.message),
  );
  await assert.rejects(
    runRollback({ stack: "staging", projectDir: project, to: "r-20000101-000000-abc-1a2b", yes: true }, deps),
    (e: unknown) => e instanceof ConfigError && /not found.*history/.test(e.message),
  );
  await assert.rejects(
    runRollback({ stack: "staging", projectDir: project, commit: commitB }, deps),
    (e: unknown) => e instanceof ConfigError && /--yes/.test(e.message),
    "no terminal and no --yes: never roll back unasked",
  );
  await assert.rejects(
    runRollback({ stack: "staging", projectDir: project }, deps),
    (e: unknown) => e instanceof ConfigError && /--quick, --to RELEASE/.test(e.message),
  );
});

test("rollback with no flags on a terminal: the menu lists backups, plans a rollback to a chosen release, which can be declined", async () => {
  const input = new PassThrough();
  let screen = "";
  // A terminal: each prompt pipes into it and ends the pipe when done, which must not close it (node
  // never ends process.stdout for a pipe either).
  const output = new Writable({
    write(chunk: Buffer, _enc, cb) {
      screen += chunk.toString();
      cb();
    },
  });
  output.end = (() => output) as typeof output.end;
  const term: CommandDeps = { ...deps, terminal: { input, output, isTTY: true } };
  lines.length = 0;
  const done = runRollback({ stack: "staging", projectDir: project }, term);
  // Keys go only once the prompt they answer is on the screen: a key typed earlier could be read by
  // the prompt before, which the real terminal never does either.
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
  const DOWN = "\u001b[B";
  await onScreen("1. Recent releases");
  keys(DOWN, "\r"); // 2. Available backups
  await onScreen("1. Recent releases");
  keys(DOWN, DOWN, "\r"); // 3. Roll back to a commit
  await onScreen("another commit...");
  keys(DOWN, "\r"); // the second good release: web:v2's
  await onScreen("Go ahead?");
  keys("n", "\r"); // decline
  await done;
  assert.match(screen, /1\. Recent releases[\s\S]*7\. Quick rollback/);
  assert.match(screen, /Which release\?[\s\S]*Go ahead\?/, "every prompt was shown");
  const out = lines.join("\n");
  assert.match(out, /_pre-deploy(-\d+)?\.pgdump\.zst/);
  assert.match(out, /rollback of staging: the database is at migration 001_init, release r-.* ran 002_title/);
  assert.match(out, /rollback cancelled; nothing changed/);
  assert.equal(running, "web:v1");
});

test("status: last release, lock, outputs, container and health; exit 1 when the app or its container is down", async () => {
  container = await runContainer({ image: await postgresImage(), command: ["sleep", "3600"] });
  lines.length = 0;
  assert.equal(await runStatus({ stack: "staging", projectDir: project }, deps), 0);
  const out = lines.join("\n");
  assert.match(out, /last good: +r-/);
  assert.match(out, /deploy lock: +free/);
  assert.match(out, new RegExp(`container app \\(${container.name}\\): ok`));
  assert.match(out, /health .*\/health: ok/);
  forcedDown = true;
  assert.equal(await runStatus({ stack: "staging", projectDir: project }, deps), 1);
  forcedDown = false;
  await docker(["stop", "-t", "0", container.id]);
  lines.length = 0;
  assert.equal(await runStatus({ stack: "staging", projectDir: project, json: true }, deps), 1);
  const report = JSON.parse(lines.join("\n"));
  assert.equal(report.containers[0].ok, false);
});

test("rollback to a release whose commit is gone from git (force-push, shallow clone) is refused before anything changes, naming the ways on", async () => {
  const gone = "0123456789abcdef0123456789abcdef01234567";
  const r = await ledger().create({
    stack: "staging",
    commit: gone,
    config: {},
    configFile: stackYaml("web:v0"),
  });
  await ledger().markResult(r.id, "good");
  const before = upCalls.length;
  const safety = () =>
    readdirSync(join(project, "backups/staging")).filter((f) => /_safety(-\d+)?\./.test(f)).length;
  const safetyBefore = safety();
  try {
    await assert.rejects(
      runRollback({ stack: "staging", projectDir: project, to: r.id, yes: true }, deps),
      (e: unknown) => {
        assert.ok(e instanceof ConfigError, String(e));
        assert.match(
          e.message,
          new RegExp(`release ${r.id} ran commit 0123456789ab, which is not in the git repository`),
        );
        assert.match(e.message, /nothing was changed/);
        assert.match(e.message, /git fetch --unshallow.*--to RELEASE.*--backup FILE/);
        return true;
      },
    );
    assert.equal(upCalls.length, before);
    assert.equal(safety(), safetyBefore, "no safety backup, no restore");
  } finally {
    await rm(join(ledger().dir, `${r.id}.json`));
  }
});

test("nothing the tool wrote holds the database password", async () => {
  const files: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (e.name === ".git" || e.name === "backups") continue;
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else files.push(p);
    }
  };
  walk(project);
  assert.ok(files.some((f) => f.endsWith("update.log")));
  for (const f of files) assert.ok(!readFileSync(f, "utf8").includes(PASSWORD), `${f} holds the password`);
  assert.ok(!lines.join("\n").includes(PASSWORD));
});

test("quickTarget: the good release before the running one; after a rollback, before the one it re-applied", () => {
  const r = (id: string, time: string, result: "good" | "bad" | "rolled-back", rolledBackTo?: string) =>
    ({ id, time, result, rolledBackTo, stack: "s", commit: id, config: {} }) as const;
  const r1 = r("r1", "2026-01-01", "good");
  const r2 = r("r2", "2026-01-02", "good");
  const r3 = r("r3", "2026-01-03", "rolled-back", "r2");
  assert.equal(quickTarget([r3, r2, r1]).id, "r1");
  const r4 = r("r4", "2026-01-04", "good", "r1");
  assert.throws(() => quickTarget([r4, r3, r2, r1]), /needs a good release before the running one \(r4\)/);
  const r5 = r("r5", "2026-01-05", "good");
  assert.equal(quickTarget([r5, r4, r3, r2, r1]).id, "r4");
});

test("quickTarget: after failed deploys that were not rolled back, or an interrupted one, the last good release", () => {
  const r = (
    id: string,
    time: string,
    result: "good" | "bad" | "rolled-back" | "pending",
    extra: { rolledBackTo?: string; failedStage?: "preflight" | "health" } = {},
  ) => ({ id, time, result, ...extra, stack: "s", commit: id, config: {} }) as const;
  const r1 = r("r1", "2026-01-01", "good");
  const r2 = r("r2", "2026-01-02", "good");
  // r3 and r4 failed with --no-rollback (or their automatic rollback failed): r4's program runs now.
  const r3 = r("r3", "2026-01-03", "bad", { failedStage: "health" });
  const r4 = r("r4", "2026-01-04", "bad", { failedStage: "health" });
  assert.equal(quickTarget([r4, r3, r2, r1]).id, "r2", "not r1: that would throw r2's data away");
  assert.match(quickChoice([r4, r3, r2, r1]).why, /r4 failed at health and was not rolled back/);
  // An `up` killed half-way stays pending.
  const r5 = r("r5", "2026-01-05", "pending");
  assert.equal(quickTarget([r5, r2, r1]).id, "r2");
  assert.match(quickChoice([r5, r2, r1]).why, /never finished/);
  // A deploy stopped at preflight changed nothing: r2 still runs, the target is before it.
  const r6 = r("r6", "2026-01-06", "bad", { failedStage: "preflight" });
  assert.equal(quickTarget([r6, r2, r1]).id, "r1");
  // A failed deploy that was rolled back to r2: r2 runs, so the one before it.
  const r7 = r("r7", "2026-01-07", "rolled-back", { rolledBackTo: "r2" });
  assert.equal(quickTarget([r7, r3, r2, r1]).id, "r1");
});

test("seed: staging's database becomes production's newest backup (safety first); production is never seeded by accident", async () => {
  const prodUrl = await pg.createDatabase("prod");
  await pg.query(
    "CREATE TABLE customers (id int PRIMARY KEY, name text); INSERT INTO customers SELECT g, 'c' || g FROM generate_series(1, 7) g",
    [],
    "prod",
  );
  const prodDir = join(project, "backups/production");
  await createBackup({ databaseUrl: prodUrl, dir: prodDir, label: "pre-deploy" });
  await createBackup({ databaseUrl: appDb(), dir: prodDir, label: "safety" }); // newer, but never a seed
  lines.length = 0;
  const file = await runSeed({ stack: "staging", projectDir: project, fromDir: prodDir, yes: true }, deps);
  assert.match(file, /_pre-deploy(-\d+)?\./);
  assert.equal(Number((await sql("SELECT count(*) AS n FROM customers"))[0].n), 7);
  assert.equal(
    (await sql("SELECT to_regclass('notes') AS t"))[0].t,
    null,
    "staging's own tables are replaced",
  );
  assert.match(lines.join("\n"), /safety backup of what was there: .*_safety(-\d+)?\./);
  await assert.rejects(
    runSeed({ stack: "production", projectDir: project, fromDir: prodDir, yes: true }, deps),
    (e: unknown) => e instanceof ConfigError && /--allow-production/.test(e.message),
  );
  await assert.rejects(
    runSeed({ stack: "staging", projectDir: project, fromDir: join(project, "nothing"), yes: true }, deps),
    (e: unknown) => e instanceof ConfigError && /--from-dir .*nothing: no such directory/.test(e.message),
  );
});

test("up: a malformed webhook URL is refused (exit 2) before any step, by key name, its value never echoed", async () => {
  const badUrl: CommandDeps = {
    ...deps,
    openStack: async (o) => ({
      ...(await fakeOpenStack()(o)),
      getAllConfig: async () => ({
        ...stackConfig(),
        "safe-deploy:slackWebhookUrl": { value: "hooks.slack.com/services/T0/B0/" + PASSWORD, secret: true },
      }),
    }),
  };
  const before = upCalls.length;
  await assert.rejects(runUp({ stack: "staging", projectDir: project }, badUrl), (e: unknown) => {
    assert.ok(e instanceof ConfigError && e.exitCode === 2, String(e));
    assert.match(
      e.message,
      /slackWebhookUrl: is not a URL; set it again with `pulumi config set --secret slackWebhookUrl/,
    );
    assert.ok(!e.message.includes(PASSWORD));
    return true;
  });
  assert.equal(upCalls.length, before);
});
