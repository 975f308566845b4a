import { after, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { failedHookLines, hookCommandLine, hookEnvironment, type HookSpec } from "../../src/components/hooks";

// These run the exact command line and environment the hook resources declare, for real.
const root = resolve(__dirname, "..", "..");
const SECRET = "tok-9f8e7d6c5b4a";
let logs: string;
const dirs: string[] = [];
after(async () => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

async function runHook(hook: Partial<HookSpec>, point: "preCutover" | "postDeploy" = "preCutover") {
  logs = await mkdtemp(join(tmpdir(), "sd-hooks-"));
  dirs.push(logs);
  const spec: HookSpec = {
    name: "h",
    command: "true",
    runIn: "local",
    timeoutSeconds: 30,
    environment: {},
    ...hook,
  };
  const env = hookEnvironment(
    spec,
    point,
    { stack: "test", projectDir: logs, image: "", network: "" },
    {
      API_TOKEN: SECRET,
      DATABASE_URL: "postgres://app:db-Pa55word@127.0.0.1:5432/app",
    },
  );
  const child = spawn("/bin/sh", ["-c", hookCommandLine()], {
    cwd: root,
    env: { ...process.env, ...env, SAFE_DEPLOY_DATA_DIR: logs },
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d) => (stdout += d));
  child.stderr.on("data", (d) => (stderr += d));
  const code: number = await new Promise((r) => child.on("close", r));
  const logPath = join(logs, env.SAFE_DEPLOY_HOOK_LOG);
  const log = await readFile(logPath, "utf8");
  return { code, stdout, stderr, log, logPath };
}

test("a hook that succeeds: exit 0, its output kept in a 0600 log", async () => {
  const r = await runHook({ name: "collectstatic", command: "echo collected 12 files; echo to-stderr >&2" });
  assert.equal(r.code, 0);
  assert.equal(r.stdout, "safe-deploy-hook collectstatic: ok\n");
  assert.equal(r.log, "collected 12 files\nto-stderr\n");
  assert.equal((await stat(r.logPath)).mode & 0o777, 0o600);
});

test("a hook that fails before cutover fails the step, naming the hook and the log, not the output", async () => {
  const r = await runHook({
    name: "check-config",
    command: "echo 'ImproperlyConfigured: SECRET_KEY'; exit 3",
  });
  assert.equal(r.code, 1);
  assert.match(
    r.stderr,
    /hook "check-config" failed \(exit code 3\); its output, secrets redacted, is in .*check-config\.log/,
  );
  assert.ok(!r.stderr.includes("ImproperlyConfigured"));
  assert.match(r.log, /ImproperlyConfigured/);
});

test("a hook that hangs is stopped at its timeout", async () => {
  const r = await runHook({ name: "slow", command: "sleep 30", timeoutSeconds: 1 });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /hook "slow" failed \(timed out after 1s\)/);
});

test("a hook that prints secrets: they appear nowhere, not in the log, stdout or stderr", async () => {
  const r = await runHook({ name: "leaky", command: 'echo "token=$API_TOKEN url=$DATABASE_URL"; exit 1' });
  assert.equal(r.code, 1);
  for (const out of [r.stdout, r.stderr, r.log]) {
    assert.ok(!out.includes(SECRET) && !out.includes("db-Pa55word"), out);
  }
  assert.equal(r.log, "token=*** url=postgres://app:***@127.0.0.1:5432/app\n");
});

test("a failing postDeploy hook warns and exits 0: the release stays", async () => {
  const r = await runHook({ name: "smoke", command: "exit 7" }, "postDeploy");
  assert.equal(r.code, 0);
  assert.deepEqual(failedHookLines(r.stdout), [
    `safe-deploy-hook smoke: failed (exit code 7); output in ${r.logPath}`,
  ]);
});
