import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import {
  chmodSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { parse as parseYaml } from "yaml";
import {
  docker,
  ensureDocker,
  postgresImage,
  removeContainer,
  runContainer,
  type TestContainer,
  waitForPostgresIn,
} from "../helpers/docker";
import { startPostgres, type TestPostgres } from "../helpers/postgres";
import { startSshDockerHost, type SshDockerHost } from "../helpers/ssh";

// The workflows' own `run:` scripts, executed the way a runner does (the shell GitHub picks for the
// step, the workflow, job and step `env:`, $GITHUB_OUTPUT / $GITHUB_ENV files) against real services: PostgreSQL,
// a database container behind a real sshd, HTTP servers. Only `pulumi` is a stand-in (no CLI here).
const ROOT = join(__dirname, "../..");

type Defaults = { run?: { shell?: string } };
type Step = {
  name?: string;
  id?: string;
  run?: string;
  shell?: string;
  uses?: string;
  with?: Record<string, string>;
  env?: Record<string, string>;
};
type Job = { env?: Record<string, string>; defaults?: Defaults; steps: Step[] };
type Workflow = { env?: Record<string, string>; defaults?: Defaults; jobs: Record<string, Job> };
const load = (file: string) =>
  parseYaml(readFileSync(join(ROOT, ".github/workflows", file), "utf8")) as Workflow;
const pr = load("pr.yml");
const deploy = load("deploy.yml");

/** Replaces each `${{ expr }}` by its value in `values`; an expression the test did not foresee fails it. */
function expand(text: string, values: Record<string, string>): string {
  return text.replace(/\$\{\{\s*([\s\S]*?)\s*\}\}/g, (_m, expr: string) => {
    assert.ok(expr in values, `the test has no value for \${{ ${expr} }}`);
    return values[expr];
  });
}

interface StepRun {
  code: number;
  stdout: string;
  stderr: string;
  outputs: Record<string, string>;
  githubEnv: string;
}

/**
 * The shell a Linux runner starts for a step: `shell: bash` (on the step, or as the job's or workflow's
 * `defaults.run.shell`) is `bash --noprofile --norc -eo pipefail`; no shell at all is `bash -e`, without
 * pipefail (docs.github.com, "jobs.<job_id>.steps[*].shell"; github/docs#18933).
 */
function runnerShell(wf: Workflow, job: string, step: Step): string[] {
  const shell = step.shell ?? wf.jobs[job].defaults?.run?.shell ?? wf.defaults?.run?.shell;
  if (shell === undefined) return ["bash", "-e"];
  assert.equal(shell, "bash", `the test knows only the shell "bash", not "${shell}"`);
  return ["bash", "--noprofile", "--norc", "-eo", "pipefail"];
}

/** Runs one step of a job as GitHub's runner does, in `cwd`. */
async function runStep(
  wf: Workflow,
  job: string,
  step: string,
  o: { cwd: string; values?: Record<string, string>; env?: Record<string, string>; runnerTemp?: string },
): Promise<StepRun> {
  const j = wf.jobs[job];
  const s = j.steps.find((x) => x.id === step || x.name === step);
  assert.ok(s?.run, `${job} has no run step "${step}"`);
  const values = { ...ON_PUSH, ...o.values };
  const env: Record<string, string> = {};
  for (const scope of [wf.env, j.env, s.env]) {
    for (const [k, v] of Object.entries(scope ?? {})) env[k] = expand(String(v), values);
  }
  const files = mkdtempSync(join(tmpdir(), "sd-step-"));
  const output = join(files, "output");
  const githubEnv = join(files, "env");
  writeFileSync(output, "");
  writeFileSync(githubEnv, "");
  const [shell, ...flags] = runnerShell(wf, job, s);
  const child = spawn(shell, [...flags, "-c", expand(s.run, values)], {
    cwd: o.cwd,
    env: {
      PATH: process.env.PATH!,
      HOME: process.env.HOME!,
      CI: "true",
      GITHUB_OUTPUT: output,
      GITHUB_ENV: githubEnv,
      // the job's temp dir outlives its steps (an ssh-agent socket lives there)
      RUNNER_TEMP: o.runnerTemp ?? files,
      ...env,
      ...o.env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  const code = await new Promise<number>((resolve) => child.on("close", (c) => resolve(c ?? 1)));
  const outputs = Object.fromEntries(
    readFileSync(output, "utf8")
      .split("\n")
      .filter(Boolean)
      .map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]),
  );
  const result = { code, stdout, stderr, outputs, githubEnv: readFileSync(githubEnv, "utf8") };
  rmSync(files, { recursive: true, force: true });
  return result;
}

/** A checkout of the repository for one job: its code linked, its outputs (backups/, logs/) its own. */
function workspace(): string {
  const dir = mkdtempSync(join(tmpdir(), "sd-ws-"));
  for (const e of ["bin", "src", "node_modules", "examples", "package.json", "tsconfig.json", "Pulumi.yaml"])
    symlinkSync(join(ROOT, e), join(dir, e));
  return dir;
}

/** A `pulumi` stand-in on PATH that answers the calls the backup step makes, and fails on any other. */
function fakePulumi(answers: Record<string, string>): { binDir: string; calls: () => string[]; dir: string } {
  const dir = mkdtempSync(join(tmpdir(), "sd-pulumi-"));
  const cases = Object.entries(answers)
    .map(([args, out], i) => {
      writeFileSync(join(dir, `answer-${i}`), out);
      return `  ${JSON.stringify(args)}) cat ${join(dir, `answer-${i}`)} ;;`;
    })
    .join("\n");
  mkdirSync(join(dir, "bin"));
  writeFileSync(
    join(dir, "bin", "pulumi"),
    `#!/bin/bash\necho "$*" >> ${join(dir, "calls")}\ncase "$*" in\n${cases}\n  *) echo "fake pulumi: unexpected call: $*" >&2; exit 2 ;;\nesac\n`,
  );
  chmodSync(join(dir, "bin", "pulumi"), 0o755);
  return {
    binDir: join(dir, "bin"),
    dir,
    calls: () => {
      try {
        return readFileSync(join(dir, "calls"), "utf8").trim().split("\n");
      } catch {
        return [];
      }
    },
  };
}

/** `inputs.stack || 'production'` on a push to main. */
const ON_PUSH = { "inputs.stack || 'production'": "production" };

// Characters a generated password really has, so the URL the step builds must encode them.
const DB_PASSWORD = "pa:ss@w/rd%+?#1";
const PULUMI_SECRETS = {
  "secrets.PULUMI_BACKEND_URL": "file:///nowhere",
  "secrets.PULUMI_CONFIG_PASSPHRASE": "not-used-by-the-fake",
  "secrets.PULUMI_ACCESS_TOKEN": "",
};
let ssh: SshDockerHost;
let db: TestContainer;
let rehearsalServer: TestPostgres;
const cleanups: Array<() => unknown> = [];

before(async () => {
  await ensureDocker();
  ssh = await startSshDockerHost();
  db = await runContainer({
    image: await postgresImage(),
    env: { POSTGRES_USER: "app", POSTGRES_PASSWORD: DB_PASSWORD, POSTGRES_DB: "app" },
    ports: [{ container: 5432 }],
  });
  await waitForPostgresIn(db.name);
  rehearsalServer = await startPostgres({ user: "rehearsal", password: "rehearsal" });
  await rehearsalServer.createDatabase("rehearsal");
});

after(async () => {
  for (const c of cleanups.reverse()) await c();
  await rehearsalServer?.close();
  if (db) await removeContainer(db.name);
  await ssh?.close();
});

test("pr.yml migrations job: lint, migrate up and drift pass on a fresh PostgreSQL 15", async () => {
  const pg = await startPostgres({ user: "ci", password: "ci" });
  cleanups.push(() => pg.close());
  await pg.createDatabase("app");
  const ws = workspace();
  cleanups.push(() => rmSync(ws, { recursive: true, force: true }));
  // the job's service container answers on 5432; this server on its own port
  const env = { DATABASE_URL: pr.jobs.migrations.env!.DATABASE_URL.replace(":5432/", `:${pg.port}/`) };
  const steps = pr.jobs.migrations.steps.filter((s) => s.run?.includes("safe-deploy"));
  assert.equal(steps.length, 3);
  for (const s of steps) {
    const r = await runStep(pr, "migrations", s.name!, { cwd: ws, env });
    assert.equal(r.code, 0, `${s.name}: ${r.stdout}\n${r.stderr}`);
  }
  const tables = await pg.query<{ t: string }>(
    "SELECT tablename AS t FROM pg_tables WHERE schemaname = 'public'",
    [],
    "app",
  );
  assert.ok(
    tables.some((t) => t.t === "notes"),
    "the migrations ran",
  );
  // and drift does fail once the live schema moves away from the migrations
  await pg.query("ALTER TABLE notes ADD COLUMN sneaky int", [], "app");
  const drift = steps.find((s) => s.run!.includes("safe-deploy drift"))!;
  const r = await runStep(pr, "migrations", drift.name!, { cwd: ws, env });
  assert.equal(r.code, 1, r.stdout + r.stderr);
  assert.match(r.stdout + r.stderr, /sneaky/);
});

test("deploy.yml: backup over SSH from the stack's config -> rehearsal on it -> verify -> Slack", async () => {
  // the database container holds the first migration (applied by the tool) and rows; two are pending
  const published = `postgres://app:${encodeURIComponent(DB_PASSWORD)}@127.0.0.1:${db.hostPort}/app`;
  execFileSync(
    join(ROOT, "bin/safe-deploy"),
    ["migrate", "up", "1", "--tool", "node-pg-migrate", "--work-dir", "examples/app", "--dir", "migrations"],
    { cwd: ROOT, env: { ...process.env, DATABASE_URL: published }, stdio: "pipe" },
  );
  await docker([
    "exec",
    "-e",
    `PGPASSWORD=${DB_PASSWORD}`,
    db.name,
    "psql",
    "-h",
    "127.0.0.1",
    "-U",
    "app",
    "-d",
    "app",
    "-v",
    "ON_ERROR_STOP=1",
    "-c",
    "INSERT INTO notes (body) SELECT 'note ' || n FROM generate_series(1, 40) n",
  ]);
  const ws = workspace();
  cleanups.push(() => rmSync(ws, { recursive: true, force: true }));
  const config = {
    "safe-deploy:database": { objectValue: { mode: "container", name: "app", user: "app" }, secret: false },
    "safe-deploy:docker": { objectValue: { host: ssh.dockerHost }, secret: false },
    "safe-deploy:dbPassword": { secret: true },
  };
  const pulumi = fakePulumi({
    "config --stack production --json": JSON.stringify(config),
    "stack output --stack production --json": JSON.stringify({ containers: { database: db.name }, url: "x" }),
    "config get --stack production dbPassword": DB_PASSWORD,
  });
  cleanups.push(() => rmSync(pulumi.dir, { recursive: true, force: true }));
  const path = `${pulumi.binDir}:${ssh.binDir}:${process.env.PATH}`;
  const values = { "inputs.stack || 'production'": "production", ...PULUMI_SECRETS };

  const backup = await runStep(deploy, "backup-and-test", "backup", { cwd: ws, values, env: { PATH: path } });
  assert.equal(backup.code, 0, backup.stdout + backup.stderr);
  const file = backup.outputs.file;
  assert.match(file, /pre-deploy/);
  assert.ok(statSync(join(ws, "backups/ci", file)).size > 0);
  assert.ok(
    statSync(join(ws, "backups/ci", `${file}.json`)).size > 0,
    "the manifest goes into the artifact too",
  );
  assert.match(ssh.calls(), /docker system dial-stdio/, "the dump ran through the ssh:// Docker host");
  assert.deepEqual(pulumi.calls().sort(), [
    "config --stack production --json",
    "config get --stack production dbPassword",
    "stack output --stack production --json",
  ]);
  const printed = backup.stdout + backup.stderr;
  assert.equal(
    printed.split(DB_PASSWORD).length - 1,
    1,
    "the password appears once, in the ::add-mask:: command",
  );
  assert.match(printed, new RegExp(`^::add-mask::${DB_PASSWORD.replace(/[?+%]/g, "\\$&")}$`, "m"));

  // the artifact: one file, encrypted; the backup-and-test job's backup and manifest are not in it
  const secret = { "secrets.BACKUP_ARTIFACT_PASSPHRASE": "artifact-pass-5e1f0c9b7a" };
  const unset = await runStep(deploy, "backup-and-test", "encrypt", {
    cwd: ws,
    values: { "secrets.BACKUP_ARTIFACT_PASSPHRASE": "" },
  });
  assert.equal(unset.code, 1);
  assert.match(unset.stdout, /::error::the secret BACKUP_ARTIFACT_PASSPHRASE is not set/);
  const enc = await runStep(deploy, "backup-and-test", "encrypt", { cwd: ws, values: secret });
  assert.equal(enc.code, 0, enc.stdout + enc.stderr);
  assert.ok(!(enc.stdout + enc.stderr).includes(secret["secrets.BACKUP_ARTIFACT_PASSPHRASE"]));
  const upload = deploy.jobs["backup-and-test"].steps.find((s) =>
    s.uses?.startsWith("actions/upload-artifact@"),
  )!;
  const artifact = readFileSync(join(ws, upload.with!.path));
  const dump = readFileSync(join(ws, "backups/ci", file));
  const manifest = readFileSync(join(ws, "backups/ci", `${file}.json`));
  for (const plain of [dump.subarray(0, 64), dump.subarray(-64), manifest.subarray(0, 64)]) {
    assert.equal(artifact.indexOf(plain), -1, "the artifact holds the backup in the clear");
  }
  // the migrate job runs on another runner: only the downloaded artifact is there
  const rehearsalWs = workspace();
  cleanups.push(() => rmSync(rehearsalWs, { recursive: true, force: true }));
  const download = deploy.jobs.migrate.steps.find((s) => s.uses?.startsWith("actions/download-artifact@"))!;
  mkdirSync(join(rehearsalWs, download.with!.path), { recursive: true });
  writeFileSync(join(rehearsalWs, download.with!.path, basename(upload.with!.path)), artifact);
  const wrong = await runStep(deploy, "migrate", "decrypt the backup", {
    cwd: rehearsalWs,
    values: { "secrets.BACKUP_ARTIFACT_PASSPHRASE": "not-the-passphrase" },
  });
  assert.notEqual(wrong.code, 0, "a wrong passphrase fails the step");
  const dec = await runStep(deploy, "migrate", "decrypt the backup", { cwd: rehearsalWs, values: secret });
  assert.equal(dec.code, 0, dec.stdout + dec.stderr);
  assert.ok(readFileSync(join(rehearsalWs, "backups/ci", file)).equals(dump));

  const rehearsal = await runStep(
    deploy,
    "migrate",
    "rehearse the pending migrations on a restored copy of the backup",
    {
      cwd: rehearsalWs,
      values: { "needs.backup-and-test.outputs.backup": file },
      env: {
        DATABASE_URL: deploy.jobs.migrate.env!.DATABASE_URL.replace(":5432/", `:${rehearsalServer.port}/`),
      },
    },
  );
  assert.equal(rehearsal.code, 0, rehearsal.stdout + rehearsal.stderr);
  assert.match(rehearsal.stdout, /notes-title-backfill/);

  // verify: one healthy answer is enough; a URL only the deploy host can reach is refused up front
  let hits = 0;
  // 127.0.0.2 (loopback, like all of 127/8 on Linux) stands for the public address
  const app = await listen((_req, res) => {
    hits += 1;
    res.writeHead(200, { "content-type": "application/json" }).end('{"status":"ok"}');
  }, "127.0.0.2");
  const port = (app.address() as { port: number }).port;
  const verifyStep = "the public URL answers, up to 15 attempts";
  const ok = await runStep(deploy, "verify", verifyStep, {
    cwd: ws,
    values: { "needs.deploy.outputs.url": `http://127.0.0.2:${port}/health` },
  });
  assert.equal(ok.code, 0, ok.stdout + ok.stderr);
  assert.equal(hits, 1);
  const local = await runStep(deploy, "verify", verifyStep, {
    cwd: ws,
    values: { "needs.deploy.outputs.url": `http://127.0.0.1:${port}/health` },
  });
  assert.equal(local.code, 1);
  assert.match(local.stdout, /answers only on the deploy host: set the stack's health.url/);
  assert.equal(hits, 1, "the refused URL was never polled");
  app.close();

  // notify: the result goes to the webhook, whose URL never reaches the log
  const received: string[] = [];
  const slack = await listen((req, res) => {
    let body = "";
    req.on("data", (d: Buffer) => (body += d.toString()));
    req.on("end", () => {
      received.push(`${req.url} ${body}`);
      res.writeHead(200).end("ok");
    });
  });
  const webhook = `http://127.0.0.1:${(slack.address() as { port: number }).port}/services/T0/B0/s3cr3tT0ken`;
  const results = { "backup-and-test": "success", migrate: "success", deploy: "success", verify: "success" };
  const notifyValues = (r: typeof results, hook: string) => ({
    "secrets.SLACK_WEBHOOK_URL": hook,
    "needs.verify.result == 'success' && 'SUCCESS' || (contains(needs.*.result, 'cancelled') && 'CANCELLED' || 'ERROR')":
      r.verify === "success" ? "SUCCESS" : Object.values(r).includes("cancelled") ? "CANCELLED" : "ERROR",
    ...Object.fromEntries(Object.entries(r).map(([k, v]) => [`needs.${k}.result`, v])),
    "github.server_url": "https://github.com",
    "github.repository": "example/app",
    "github.run_id": "42",
    "inputs.stack || 'production'": "production",
  });
  const runEnv = { GITHUB_SHA: "abc1234", GITHUB_ACTOR: "ana" };
  const good = await runStep(deploy, "notify", "result to Slack", {
    cwd: ws,
    values: notifyValues(results, webhook),
    env: runEnv,
  });
  assert.equal(good.code, 0, good.stdout + good.stderr);
  const failed = await runStep(deploy, "notify", "result to Slack", {
    cwd: ws,
    values: notifyValues({ ...results, deploy: "failure", verify: "skipped" }, webhook),
    env: runEnv,
  });
  assert.equal(failed.code, 0, failed.stdout + failed.stderr);
  slack.close();
  assert.equal(received.length, 2);
  const [first, second] = received.map((r) => JSON.parse(r.slice(r.indexOf(" ") + 1)));
  assert.ok(received.every((r) => r.startsWith("/services/T0/B0/s3cr3tT0ken ")));
  assert.equal(first.attachments[0].title, "SUCCESS: deploy of production");
  assert.equal(first.attachments[0].color, "#2eb67d");
  assert.equal(second.attachments[0].title, "ERROR: deploy of production");
  assert.match(second.attachments[0].text, /deploy failure, verify skipped/);
  assert.deepEqual(
    first.attachments[0].fields.map((f: { value: string }) => f.value),
    ["abc1234", "ana", "https://github.com/example/app/actions/runs/42"],
  );
  for (const r of [good, failed]) assert.ok(!(r.stdout + r.stderr).includes("s3cr3tT0ken"));
  const none = await runStep(deploy, "notify", "result to Slack", {
    cwd: ws,
    values: notifyValues(results, ""),
    env: runEnv,
  });
  assert.equal(none.code, 0);
  assert.match(none.stdout, /SLACK_WEBHOOK_URL is not set/);
});

test("deploy.yml backup step: nothing to back up before the first deploy; an external database is dumped from the runner", async () => {
  const ws = workspace();
  cleanups.push(() => rmSync(ws, { recursive: true, force: true }));
  const values = { "inputs.stack || 'production'": "production", ...PULUMI_SECRETS };
  const first = fakePulumi({
    "config --stack production --json": "{}",
    "stack output --stack production --json": "{}",
  });
  cleanups.push(() => rmSync(first.dir, { recursive: true, force: true }));
  const none = await runStep(deploy, "backup-and-test", "backup", {
    cwd: ws,
    values,
    env: { PATH: `${first.binDir}:${process.env.PATH}` },
  });
  assert.equal(none.code, 0, none.stderr);
  assert.match(none.stdout, /no database container yet \(first deploy\)/);
  assert.deepEqual(none.outputs, {}, "no file: the upload and the rehearsal are skipped");

  const external = await startPostgres({ user: "ext", password: "Ext3rnal:Pw" });
  cleanups.push(() => external.close());
  const url = await external.createDatabase("shop");
  await external.query(
    "CREATE TABLE orders (id int); INSERT INTO orders SELECT generate_series(1, 25)",
    [],
    "shop",
  );
  const ext = fakePulumi({
    "config --stack production --json": JSON.stringify({
      "safe-deploy:database": { objectValue: { mode: "external" }, secret: false },
      "safe-deploy:databaseUrl": { secret: true },
    }),
    "stack output --stack production --json": "{}",
    "config get --stack production databaseUrl": url,
  });
  cleanups.push(() => rmSync(ext.dir, { recursive: true, force: true }));
  const r = await runStep(deploy, "backup-and-test", "backup", {
    cwd: ws,
    values,
    env: { PATH: `${ext.binDir}:${process.env.PATH}` },
  });
  assert.equal(r.code, 0, r.stdout + r.stderr);
  const manifest = JSON.parse(readFileSync(join(ws, "backups/ci", `${r.outputs.file}.json`), "utf8")) as {
    rowCounts: Record<string, number>;
  };
  assert.equal(manifest.rowCounts["public.orders"], 25);
  const printed = r.stdout + r.stderr;
  assert.equal(printed.split(url).length - 1, 1, "the URL appears once, in the ::add-mask:: command");
  assert.ok(!printed.includes("Ext3rnal:Pw"), "nor the raw password");
});

test("every run step gets pipefail: a failing command before a pipe fails its step, as it would on a terminal", () => {
  for (const [file, wf] of [
    ["pr.yml", pr],
    ["deploy.yml", deploy],
  ] as const) {
    for (const [job, j] of Object.entries(wf.jobs)) {
      for (const s of j.steps.filter((x) => x.run)) {
        assert.ok(
          runnerShell(wf, job, s).includes("pipefail"),
          `${file} ${job} "${s.name ?? s.id ?? s.run}" runs as \`bash -e\`: a failure before a pipe is ignored`,
        );
      }
    }
  }
});

test("deploy.yml backup step: a dump that fails stops the step with its own error, not verify's on an empty name", async () => {
  const ws = workspace();
  cleanups.push(() => rmSync(ws, { recursive: true, force: true }));
  const pulumi = fakePulumi({
    "config --stack production --json": JSON.stringify({
      "safe-deploy:database": { objectValue: { mode: "container" }, secret: false },
      "safe-deploy:docker": { objectValue: { host: ssh.dockerHost }, secret: false },
    }),
    "stack output --stack production --json": JSON.stringify({ containers: { database: "sd-ci-gone-db" } }),
    "config get --stack production dbPassword": DB_PASSWORD,
  });
  cleanups.push(() => rmSync(pulumi.dir, { recursive: true, force: true }));
  const r = await runStep(deploy, "backup-and-test", "backup", {
    cwd: ws,
    values: { ...ON_PUSH, ...PULUMI_SECRETS },
    env: { PATH: `${pulumi.binDir}:${ssh.binDir}:${process.env.PATH}` },
  });
  assert.equal(r.code, 3, r.stdout + r.stderr);
  assert.match(r.stderr, /cannot run pg_dump in container "sd-ci-gone-db"/);
  assert.doesNotMatch(r.stderr, /check the FILE argument/, "backup verify must not run without a file");
  assert.deepEqual(r.outputs, {}, "no file: nothing uploaded, nothing rehearsed");
});

test("deploy.yml deploy job: no URL from the stack fails the job there, not later in verify", async () => {
  const ws = workspace();
  cleanups.push(() => rmSync(ws, { recursive: true, force: true }));
  const secrets = {
    ...PULUMI_SECRETS,
    "secrets.AWS_ACCESS_KEY_ID": "",
    "secrets.AWS_SECRET_ACCESS_KEY": "",
    "secrets.AWS_REGION": "",
    "vars.SAFE_DEPLOY_STATE_S3": "",
  };
  const broken = fakePulumi({});
  cleanups.push(() => rmSync(broken.dir, { recursive: true, force: true }));
  const failed = await runStep(deploy, "deploy", "url", {
    cwd: ws,
    values: secrets,
    env: { PATH: `${broken.binDir}:${process.env.PATH}` },
  });
  assert.notEqual(failed.code, 0, "pulumi failed, so must the step");
  assert.deepEqual(failed.outputs, {});

  const good = fakePulumi({ "stack output url --stack production": "https://app.example.com/health\n" });
  cleanups.push(() => rmSync(good.dir, { recursive: true, force: true }));
  const ok = await runStep(deploy, "deploy", "url", {
    cwd: ws,
    values: secrets,
    env: { PATH: `${good.binDir}:${process.env.PATH}` },
  });
  assert.equal(ok.code, 0, ok.stderr);
  assert.deepEqual(ok.outputs, { url: "https://app.example.com/health" });
});

test("the deploy-ssh action: key into an agent, host keys trusted, nothing printed; an empty key fails naming the secret", async () => {
  const action = parseYaml(readFileSync(join(ROOT, ".github/actions/deploy-ssh/action.yml"), "utf8")) as {
    runs: { steps: Step[] };
  };
  const home = mkdtempSync(join(tmpdir(), "sd-home-"));
  cleanups.push(() => rmSync(home, { recursive: true, force: true }));
  execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "ci-deploy", "-f", join(home, "key")]);
  const key = readFileSync(join(home, "key"), "utf8");
  const knownHosts =
    "app.example.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl";
  const wf: Workflow = { jobs: { ssh: { steps: action.runs.steps } } };
  const name = action.runs.steps[0].name!;
  const values = (k: string, h: string) => ({ "inputs.private-key": k, "inputs.known-hosts": h });
  const r = await runStep(wf, "ssh", name, {
    cwd: home,
    values: values(key, knownHosts),
    env: { HOME: home },
    runnerTemp: home,
  });
  assert.equal(r.code, 0, r.stderr);
  const sock = /^SSH_AUTH_SOCK=(.+)$/m.exec(r.githubEnv)?.[1];
  assert.ok(sock, r.githubEnv);
  let agents = 0;
  try {
    const listed = execFileSync("ssh-add", ["-l"], {
      env: { ...process.env, SSH_AUTH_SOCK: sock },
    }).toString();
    assert.match(listed, /ci-deploy \(ED25519\)/);
  } finally {
    // the agent this step started, found by its unique socket path and ended by its pid
    for (const pid of pidsWithCommandLine(["ssh-agent", "-a", sock])) {
      process.kill(pid);
      agents += 1;
    }
  }
  assert.equal(agents, 1, "one agent, holding the key for the rest of the job");
  assert.equal(readFileSync(join(home, ".ssh/known_hosts"), "utf8"), `${knownHosts}\n`);
  assert.equal(statSync(join(home, ".ssh/known_hosts")).mode & 0o777, 0o600);
  assert.equal(statSync(join(home, ".ssh")).mode & 0o777, 0o700);
  assert.ok(!(r.stdout + r.stderr).includes("PRIVATE KEY"));
  const empty = await runStep(wf, "ssh", name, {
    cwd: home,
    values: values("", knownHosts),
    env: { HOME: home },
  });
  assert.equal(empty.code, 1);
  assert.match(empty.stdout, /::error::the deploy SSH key is empty: set the DEPLOY_SSH_KEY secret/);
  const noHosts = await runStep(wf, "ssh", name, { cwd: home, values: values(key, ""), env: { HOME: home } });
  assert.equal(noHosts.code, 1);
  assert.match(noHosts.stdout, /set the DEPLOY_KNOWN_HOSTS secret/);
});

/** Pids whose command line is exactly `argv` (read from /proc: no procps needed). */
function pidsWithCommandLine(argv: string[]): number[] {
  const want = argv.join("\0");
  return readdirSync("/proc")
    .filter((d) => /^\d+$/.test(d))
    .filter((d) => {
      try {
        return readFileSync(`/proc/${d}/cmdline`, "utf8").replace(/\0$/, "") === want;
      } catch {
        return false;
      }
    })
    .map(Number);
}

function listen(handler: Parameters<typeof createServer>[1], host = "127.0.0.1"): Promise<Server> {
  return new Promise((resolve) => {
    const server = createServer(handler);
    server.listen(0, host, () => resolve(server));
  });
}
