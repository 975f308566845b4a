import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { containerProbe } from "../../../src/core/health/container";
import { pollUntilHealthy } from "../../../src/core/health/gate";
import { runGate } from "../../../src/core/health/run";
import {
  ensureBusyboxImage,
  publishedPort,
  removeContainers,
  runContainer,
} from "../../helpers/health-image";
import { reapContainersOnExit } from "./container-reaper";

let image: string;
const ids: string[] = [];
/** Removes this run's containers when the process dies, a SIGKILL included (container-reaper.test.ts). */
const runLabel = reapContainersOnExit("container-test");
const start = async (args: string[]) => {
  const id = await runContainer(["--label", runLabel, ...args]);
  ids.push(id);
  return id;
};
const policy = { retries: 20, delayMs: 500, timeoutMs: 5000 };
const health = (cmd: string) => [
  "--health-cmd",
  cmd,
  "--health-interval",
  "1s",
  "--health-retries",
  "2",
  "--health-timeout",
  "2s",
];

before(async () => {
  image = await ensureBusyboxImage();
});
after(async () => {
  await removeContainers(ids);
});

test("a container that becomes healthy passes state, logs and HTTP through its published port", async () => {
  const id = await start([
    "-p",
    "127.0.0.1::8080",
    ...health("wget -q -O- http://127.0.0.1:8080/health"),
    image,
    "sh",
    "-c",
    "mkdir -p /www && echo ok > /www/health && sleep 2 && echo listening && exec httpd -f -p 8080 -h /www",
  ]);
  const port = await publishedPort(id, 8080);
  const r = await runGate({
    url: `http://127.0.0.1:${port}/health`,
    retries: 30,
    delaySeconds: 0.5,
    timeoutSeconds: 2,
    container: { name: id },
  });
  assert.equal(r.ok, true, r.ok ? "" : r.message);
  assert.ok(r.attempts.length > 1, "the first attempts saw it still starting");
  assert.match(r.attempts.at(-1)?.detail ?? "", /running, healthy/);
  assert.ok(r.attempts.some((a) => /health is starting/.test(a.detail ?? "")));
});

test("a container that never turns healthy fails with its health status", async () => {
  const id = await start([...health("false"), image, "sleep", "600"]);
  const r = await pollUntilHealthy(id, containerProbe({ name: id }), { ...policy, retries: 8 });
  assert.equal(r.ok, false);
  if (!r.ok) assert.match(r.message, /container health is (starting|unhealthy)/);
  if (!r.ok) assert.match(r.attempts.at(-1)?.detail ?? "", /health is unhealthy/);
});

test("a crash-looping container fails: restart count rising or not running", async () => {
  const id = await start(["--restart", "always", image, "sh", "-c", "echo booting; sleep 1; exit 3"]);
  const r = await pollUntilHealthy(id, containerProbe({ name: id, logPatterns: [] }), {
    ...policy,
    retries: 12,
    successThreshold: 6,
  });
  assert.equal(r.ok, false);
  if (!r.ok) assert.match(r.message, /restarted \d+ time\(s\) during the check|restarting|exited/);
});

test("a critical log line in the check window fails a running container", async () => {
  const id = await start([
    image,
    "sh",
    "-c",
    "echo starting; sleep 2; echo 'FATAL: could not connect to database'; exec sleep 600",
  ]);
  const r = await pollUntilHealthy(id, containerProbe({ name: id }), {
    ...policy,
    retries: 10,
    successThreshold: 10,
  });
  assert.equal(r.ok, false);
  if (!r.ok) assert.match(r.message, /critical log line: FATAL: could not connect to database/);
  const custom = await pollUntilHealthy(id, containerProbe({ name: id, logPatterns: ["^never-matches$"] }), {
    ...policy,
    retries: 1,
  });
  assert.equal(custom.ok, true, "the same logs pass when no pattern matches");
  // `docker logs` gives the container's stderr on its own stderr: a panic written there counts too.
  const err = await start([
    image,
    "sh",
    "-c",
    "echo starting; sleep 2; echo 'panic: runtime error' >&2; exec sleep 600",
  ]);
  const onStderr = await pollUntilHealthy(err, containerProbe({ name: err }), {
    ...policy,
    retries: 10,
    successThreshold: 10,
  });
  assert.equal(onStderr.ok, false);
  if (!onStderr.ok) assert.match(onStderr.message, /critical log line: panic: runtime error/);
});

test("a missing container and an unreachable Docker host are reported, not thrown", async () => {
  const none = await containerProbe({ name: "safe-deploy-test-no-such-container" })(3000);
  assert.deepEqual(none, {
    ok: false,
    detail: "container safe-deploy-test-no-such-container: no such container",
  });
  const down = await containerProbe({ name: "x", dockerHost: "unix:///nonexistent/docker.sock" })(3000);
  assert.equal(down.ok, false);
  assert.match(down.detail ?? "", /container x: .*(Cannot connect|docker daemon)/i);
});

test("a container Docker could not start, its error quoting a command with a `|`: reported with the reason, not thrown", async () => {
  // A command given as one string (`["sh -c 'a | b'"]`) is looked up as a file: the start fails and
  // State.Error quotes it, `|` included, which broke the parse of `docker inspect`'s output.
  const run = promisify(execFile);
  const { stdout } = await run("docker", [
    "create",
    "--label",
    "safe-deploy-test=health",
    "--label",
    runLabel,
    image,
    "sh -c 'echo a | cat'",
  ]);
  const id = stdout.trim();
  ids.push(id);
  await run("docker", ["start", id]).catch(() => undefined);
  const r = await containerProbe({ name: id })(5000);
  assert.equal(r.ok, false);
  assert.match(r.detail ?? "", /container is created \(exit code 127\): .*executable file not found/);
});
