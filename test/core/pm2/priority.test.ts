// Issue 18: during a pm2 reload the deploy's own processes (tar, the install, the pm2 CLI) yield the
// CPU to the workers answering requests, but never the pm2 daemon or the workers it starts.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { freePort } from "../../helpers/postgres";
import { releaseCommand, type Pm2Release } from "../../../src/core/pm2/release";
import { runGate } from "../../../src/core/health/run";

const PM2 = join(resolve(__dirname, "../../.."), "node_modules/.bin/pm2");
let work = "";
let pm2Home = "";
let port = 0;
const commits: string[] = [];

const git = (...a: string[]) =>
  execFileSync("git", ["-C", join(work, "repo"), ...a], { encoding: "utf8" }).trim();
const niceness = (pid: number | string) =>
  Number(execFileSync("ps", ["-o", "ni=", "-p", String(pid)], { encoding: "utf8" }).trim());

function run(cmd: string): Promise<{ code: number; out: string }> {
  return new Promise((res) => {
    const env = {
      ...process.env,
      PM2_HOME: pm2Home,
      SAFE_DEPLOY_APP_ENV: JSON.stringify({ PORT: String(port) }),
    };
    const child = spawn("/bin/sh", ["-c", cmd], { env, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (out += d));
    child.on("close", (code) => res({ code: code ?? 1, out }));
  });
}

before(async () => {
  work = mkdtempSync(join(tmpdir(), "sd-pm2-nice-"));
  pm2Home = join(work, "pm2-home");
  port = await freePort();
  mkdirSync(join(work, "repo"));
  git("init", "-q");
  git("config", "user.email", "t@example.com");
  git("config", "user.name", "test");
  for (const v of ["1", "2"]) {
    writeFileSync(
      join(work, "repo", "server.js"),
      `require("http").createServer((q, r) => r.end("${v}")).listen(Number(process.env.PORT), "127.0.0.1");\n`,
    );
    git("add", "-A");
    git("commit", "-q", "-m", v);
    commits.push(git("rev-parse", "HEAD"));
  }
  // The pm2 the release runs: records its own niceness, then is the real pm2.
  writeFileSync(join(work, "pm2"), `#!/bin/sh\necho "$(nice) $1" >> ${work}/calls.log\nexec ${PM2} "$@"\n`);
  chmodSync(join(work, "pm2"), 0o755);
});

after(async () => {
  await run(`${PM2} kill`);
  rmSync(work, { recursive: true, force: true });
});

const spec = (commit: string): Pm2Release => ({
  root: join(work, "srv"),
  commit,
  appName: "nice-app",
  repoDir: join(work, "repo"),
  appDir: ".",
  install: [`nice >> ${work}/install.log`],
  script: "server.js",
  execMode: "cluster",
  instances: 2,
  bin: join(work, "pm2"),
  keepReleases: 2,
});

test("the first deploy starts pm2's daemon at normal priority; a reload runs tar, install and the pm2 CLI at nice 10, the workers at normal", async () => {
  const base = Number(execFileSync("nice", { encoding: "utf8" }).trim());
  const first = await run(releaseCommand(spec(commits[0])));
  assert.equal(first.code, 0, first.out);
  const daemon = readFileSync(join(pm2Home, "pm2.pid"), "utf8").trim();
  assert.equal(niceness(daemon), base, "the daemon (and every worker it will start) at normal priority");
  writeFileSync(join(work, "calls.log"), "");
  writeFileSync(join(work, "install.log"), "");
  const second = await run(releaseCommand(spec(commits[1])));
  assert.equal(second.code, 0, second.out);
  assert.equal(
    (await runGate({ url: `http://127.0.0.1:${port}/`, retries: 20, delaySeconds: 0.5 })).ok,
    true,
  );
  const calls = readFileSync(join(work, "calls.log"), "utf8").trim().split("\n");
  assert.deepEqual(calls, [`${base + 10} startOrReload`, `${base + 10} jlist`, `${base + 10} jlist`]);
  assert.equal(Number(readFileSync(join(work, "install.log"), "utf8").trim()), base + 10);
  const list = JSON.parse((await run(`${PM2} jlist`)).out) as Array<{ name: string; pid: number }>;
  const workers = list.filter((p) => p.name === "nice-app");
  assert.equal(workers.length, 2);
  for (const w of workers) assert.equal(niceness(w.pid), base, `worker ${w.pid} at normal priority`);
});
