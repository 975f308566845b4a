// Issue 17: the pm2 target's command strings, run as the program declares them, with real pm2 (an
// isolated PM2_HOME), the demo app, a real PostgreSQL, and the engine's own health gate.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import {
  cpSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  readlinkSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { Agent, get as httpGet } from "node:http";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { freePort, startPostgres, type TestPostgres } from "../../helpers/postgres";
import { startSshDockerHost, type SshDockerHost } from "../../helpers/ssh";
import { logCheckCommand, releaseCommand, type Pm2Release } from "../../../src/core/pm2/release";
import { runGate } from "../../../src/core/health/run";

const ROOT_DIR = resolve(__dirname, "../../..");
const PM2 = join(ROOT_DIR, "node_modules/.bin/pm2");
const APP_MODULES = join(ROOT_DIR, "examples/app/node_modules");

let pg: TestPostgres;
let work: string;
let repo: string;
let pm2Home: string;
let port: number;
const commits: Record<string, string> = {};

function git(...args: string[]): string {
  return execFileSync("git", ["-C", repo, ...args], { encoding: "utf8" }).trim();
}

/** Commits the demo app as `web/` with a version, optionally breaking its /health route. */
function commitApp(version: string, opts: { broken?: boolean; crash?: boolean } = {}): string {
  const pkg = join(repo, "web/package.json");
  const json = JSON.parse(readFileSync(pkg, "utf8"));
  json.version = version;
  writeFileSync(pkg, JSON.stringify(json, null, 2) + "\n");
  const server = join(repo, "web/src/server.js");
  const src = readFileSync(join(ROOT_DIR, "examples/app/src/server.js"), "utf8");
  let text = opts.broken ? src.replace('path === "/health"', 'path === "/health-gone"') : src;
  if (opts.crash) text = `throw new Error("FATAL release cannot start");\n${text}`;
  writeFileSync(server, text);
  git("add", "-A");
  git("commit", "-q", "-m", version);
  return git("rev-parse", "HEAD");
}

function spec(commit: string, extra: Partial<Pm2Release> = {}): Pm2Release {
  return {
    root: join(work, "srv"),
    commit,
    appName: "notes",
    repoDir: repo,
    appDir: "web",
    // The user's install commands; the test's "npm ci" links the demo app's installed modules and counts runs.
    install: [`ln -s ${APP_MODULES} node_modules`, `echo built >> ${join(work, "installs.log")}`],
    script: "src/server.js",
    execMode: "cluster",
    instances: 2,
    bin: PM2,
    keepReleases: 5,
    ...extra,
  };
}

function appEnv(): string {
  return JSON.stringify({ DATABASE_URL: pg.url("postgres"), PORT: String(port), HOST: "127.0.0.1" });
}

/** Runs a declared command string as @pulumi/command's local.Command does (`/bin/sh -c`). */
function run(cmd: string, env: Record<string, string> = {}): Promise<{ code: number; out: string }> {
  return new Promise((res) => {
    const child = spawn("/bin/sh", ["-c", cmd], {
      env: { ...process.env, PM2_HOME: pm2Home, SAFE_DEPLOY_APP_ENV: appEnv(), ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (out += d));
    child.on("close", (code) => res({ code: code ?? 1, out }));
  });
}

async function health(): Promise<{ status: number; version?: string }> {
  const r = await fetch(`http://127.0.0.1:${port}/health`);
  const body = (await r.json().catch(() => ({}))) as { version?: string };
  return { status: r.status, version: body.version };
}

const gate = () => runGate({ url: `http://127.0.0.1:${port}/health`, retries: 5, delaySeconds: 0.5 });
const installs = () => readFileSync(join(work, "installs.log"), "utf8").trim().split("\n").length;

before(async () => {
  pg = await startPostgres();
  port = await freePort();
  work = mkdtempSync(join(tmpdir(), "sd-pm2-"));
  pm2Home = join(work, "pm2-home");
  repo = join(work, "repo");
  cpSync(join(ROOT_DIR, "examples/app"), join(repo, "web"), {
    recursive: true,
    filter: (p) => !p.includes("node_modules"),
  });
  execFileSync("git", ["init", "-q", repo]);
  git("config", "user.email", "t@example.com");
  git("config", "user.name", "test");
  commits.good = commitApp("1.0.0");
  commits.bad = commitApp("2.0.0", { broken: true });
  commits.next = commitApp("3.0.0");
  commits.crash = commitApp("4.0.0", { crash: true });
});

after(async () => {
  await run(`${PM2} kill`).catch(() => {});
  await pg?.close();
  rmSync(work, { recursive: true, force: true });
});

test("deploy: a release directory per commit, `current` points at it, pm2 runs it and the gate passes", async () => {
  const r = await run(releaseCommand(spec(commits.good)));
  assert.equal(r.code, 0, r.out);
  const root = join(work, "srv");
  assert.equal(readlinkSync(join(root, "current")), `releases/${commits.good}`);
  assert.ok(existsSync(join(root, "releases", commits.good, ".safe-deploy-built")));
  assert.equal((await gate()).ok, true);
  assert.deepEqual(await health(), { status: 200, version: "1.0.0" });
  // The secret environment is only in shared/env.json (0600), never in the ecosystem file.
  const eco = readFileSync(join(root, "ecosystem.config.js"), "utf8");
  assert.ok(!eco.includes(pg.password), "the ecosystem file holds no password");
  assert.equal(
    execFileSync("stat", ["-c", "%a", join(root, "shared/env.json")], { encoding: "utf8" }).trim(),
    "600",
  );
  assert.ok(!r.out.includes(pg.password), "no password in the command's output");
  const logs = await run(logCheckCommand(spec(commits.good), 200));
  assert.equal(logs.code, 0, logs.out);
});

test("a bad release: pm2 switches to it and the health gate fails", async () => {
  const r = await run(releaseCommand(spec(commits.bad)));
  assert.equal(r.code, 0, r.out);
  const g = await gate();
  assert.equal(g.ok, false);
  assert.match(g.message ?? "", /404/);
});

test("a release that crashes at start: pm2 still completes the reload, the release command fails naming the state", async () => {
  const r = await run(releaseCommand(spec(commits.crash)));
  assert.equal(r.code, 1, r.out);
  assert.match(
    r.out,
    /pm2 reports notes not online after the reload \((0|1): (errored|launching|stopped|restarting)/,
  );
  assert.ok(!r.out.includes(pg.password));
  assert.equal(
    (await gate()).ok,
    false,
    "the old workers are gone too: this is an outage until the rollback",
  );
});

test("rollback re-applies the previous release: `current` back to its directory, no rebuild, old code answers", async () => {
  const before = installs();
  const r = await run(releaseCommand(spec(commits.good)));
  assert.equal(r.code, 0, r.out);
  assert.match(r.out, /is on disk: switching to it without a rebuild/);
  assert.equal(installs(), before, "the install commands did not run again");
  assert.equal(readlinkSync(join(work, "srv/current")), `releases/${commits.good}`);
  assert.equal((await gate()).ok, true);
  assert.deepEqual(await health(), { status: 200, version: "1.0.0" });
});

test("cluster mode: `pm2 reload` to the next release under steady load fails no request; old releases pruned", async (t) => {
  let stop = false;
  let done = false;
  let ok = 0;
  const failures: string[] = [];
  const load = (async () => {
    // Bounded: at most 5000 requests, one at a time, on loopback, on one keep-alive connection as a
    // load generator or a proxy sends them: the stopping worker must answer the request it gets on it
    // (issue 18: its idle connection was cut under that request).
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    for (let i = 0; i < 5000 && !stop; i++) {
      const status = await new Promise<number | string>((res) => {
        const req = httpGet({ host: "127.0.0.1", port, path: "/health", agent }, (r) => {
          r.resume();
          r.on("end", () => res(r.statusCode ?? 0));
        });
        req.on("error", (e) => res(String(e)));
        // A request the server never answers is a failure, not a hang of the whole test.
        req.setTimeout(10_000, () => req.destroy(new Error("no answer in 10 s")));
      });
      if (status === 200) ok++;
      else failures.push(String(status));
    }
    agent.destroy();
    done = true;
  })();
  // Waits for `n` answers; ends early (and the asserts below say why) when the load loop gave up.
  const answers = async (n: number) => {
    while (ok < n && !done) await new Promise((r) => setTimeout(r, 20));
  };
  await answers(20);
  assert.ok(ok >= 20, `the app did not answer before the reload: ${failures.slice(0, 3).join("; ")}`);
  const r = await run(releaseCommand(spec(commits.next, { keepReleases: 1 })));
  const seen = ok;
  await answers(seen + 20);
  stop = true;
  await load;
  assert.equal(r.code, 0, r.out);
  assert.deepEqual(failures, []);
  assert.ok(ok > 40, `requests answered: ${ok}`);
  t.diagnostic(`requests during the reload: ${ok - seen + 20} ok, ${failures.length} failed`);
  assert.equal((await health()).version, "3.0.0");
  // keepReleases 1: the current release and the most recent previous one (the rolled-back-to good).
  assert.deepEqual(readdirSync(join(work, "srv/releases")).sort(), [commits.good, commits.next].sort());
});

test("fork mode: `pm2 restart` (startOrRestart) of one instance; the next release answers", async () => {
  const port3 = await freePort();
  const env = JSON.stringify({ DATABASE_URL: pg.url("postgres"), PORT: String(port3), HOST: "127.0.0.1" });
  const s = (commit: string) =>
    spec(commit, { root: join(work, "srv-fork"), appName: "notes-fork", execMode: "fork", instances: 1 });
  for (const [commit, version] of [
    [commits.good, "1.0.0"],
    [commits.next, "3.0.0"],
  ]) {
    const r = await run(releaseCommand(s(commit)), { SAFE_DEPLOY_APP_ENV: env });
    assert.equal(r.code, 0, r.out);
    const g = await runGate({ url: `http://127.0.0.1:${port3}/health`, retries: 10, delaySeconds: 0.5 });
    assert.equal(g.ok, true);
    const body = (await (await fetch(`http://127.0.0.1:${port3}/health`)).json()) as { version: string };
    assert.equal(body.version, version);
  }
  const list = JSON.parse((await run(`${PM2} jlist`)).out) as Array<{
    name: string;
    pm2_env: { exec_mode: string };
  }>;
  assert.deepEqual(
    list.filter((p) => p.name === "notes-fork").map((p) => p.pm2_env.exec_mode),
    ["fork_mode"],
  );
});

test("the log check fails on a critical line in `pm2 logs` and masks URL passwords", async () => {
  const logFile = join(pm2Home, "logs", "notes-out-0.log");
  writeFileSync(logFile, `FATAL cannot reach postgres://app:${pg.password}@db:5432/app\n`, { flag: "a" });
  const r = await run(logCheckCommand(spec(commits.next), 50));
  assert.equal(r.code, 1, r.out);
  assert.match(r.out, /critical line .*FATAL cannot reach postgres:\/\/app:\*\*\*@db/);
  assert.ok(!r.out.includes(pg.password));
});

test("over SSH: the same release command deploys on a server reached as ssh://user@host:port", async (t) => {
  let ssh: SshDockerHost;
  try {
    ssh = await startSshDockerHost();
  } catch (e) {
    t.skip(`no sshd: ${(e as Error).message}`);
    return;
  }
  try {
    const remoteHome = join(work, "pm2-remote");
    const port2 = await freePort();
    const s = spec(commits.good, {
      root: join(work, "srv-remote"),
      appName: "notes-remote",
      host: ssh.dockerHost,
      // The server's own pm2 and PM2_HOME (the ssh session does not carry this machine's environment).
      bin: `env PM2_HOME=${remoteHome} ${PM2}`,
    });
    const env = JSON.stringify({ DATABASE_URL: pg.url("postgres"), PORT: String(port2), HOST: "127.0.0.1" });
    const r = await run(releaseCommand(s), {
      PATH: `${ssh.binDir}:${process.env.PATH}`,
      SAFE_DEPLOY_APP_ENV: env,
    });
    try {
      assert.equal(r.code, 0, r.out);
      assert.match(ssh.calls(), /-p \d+ -o BatchMode=yes/);
      assert.equal(readlinkSync(join(work, "srv-remote/current")), `releases/${commits.good}`);
      const g = await runGate({ url: `http://127.0.0.1:${port2}/health`, retries: 5, delaySeconds: 0.5 });
      assert.equal(g.ok, true, g.ok ? "" : g.message);
    } finally {
      await run(`PM2_HOME=${remoteHome} ${PM2} kill`);
    }
  } finally {
    await ssh.close();
  }
});
