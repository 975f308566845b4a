// containerProbe in the test process (issue 22): container.test.ts proves it against real Docker at
// 20-40 s a run; here the docker CLI is a stand-in script first on PATH that answers what a case scripts
// (real child processes, real pipes, real exit codes and timeouts), and every call is recorded: its
// arguments, its DOCKER_HOST, and the options the probe gave execFile (observed by wrapping
// node:child_process, which the probe calls through its module object).
import { after, afterEach, before, beforeEach, test } from "node:test";
import assert from "node:assert/strict";
import { chmod, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { containerProbe, docker } from "../../../src/core/health/container";

const cp = require("node:child_process") as typeof import("node:child_process");
const realExecFile = cp.execFile;

let bin: string;
let d: string;
const savedPath = process.env.PATH;
const savedHost = process.env.DOCKER_HOST;
/** The options each execFile call of the probe got. */
let options: Array<{ timeout?: number; maxBuffer?: number; dockerHost?: string }> = [];

const STANDIN = `#!/bin/sh
d="$SD_FAKE_DOCKER"
printf '%s|%s\\n' "\${DOCKER_HOST-unset}" "$*" >> "$d/calls"
v="$1"
if [ -f "$d/$v.hang" ]; then exec sleep 30; fi
if [ -f "$d/$v.out" ]; then cat "$d/$v.out"; fi
if [ -f "$d/$v.err" ]; then cat "$d/$v.err" >&2; fi
exit "$(cat "$d/$v.code" 2>/dev/null || echo 0)"
`;

before(async () => {
  bin = await mkdtemp(join(tmpdir(), "sd-fake-docker-"));
  await writeFile(join(bin, "docker"), STANDIN);
  await chmod(join(bin, "docker"), 0o755);
  (cp as { execFile: unknown }).execFile = (
    file: string,
    args: string[],
    o: { timeout?: number; maxBuffer?: number; env?: NodeJS.ProcessEnv },
    cb: unknown,
  ) => {
    options.push({ timeout: o.timeout, maxBuffer: o.maxBuffer, dockerHost: o.env?.DOCKER_HOST });
    return (realExecFile as (...a: unknown[]) => unknown)(file, args, o, cb);
  };
});
after(async () => {
  (cp as { execFile: unknown }).execFile = realExecFile;
  await rm(bin, { recursive: true, force: true });
});
beforeEach(async () => {
  d = await mkdtemp(join(tmpdir(), "sd-fake-docker-case-"));
  process.env.SD_FAKE_DOCKER = d;
  process.env.PATH = `${bin}:${savedPath}`;
  delete process.env.DOCKER_HOST;
  options = [];
});
afterEach(async () => {
  process.env.PATH = savedPath;
  if (savedHost === undefined) delete process.env.DOCKER_HOST;
  else process.env.DOCKER_HOST = savedHost;
  await rm(d, { recursive: true, force: true });
});

/** What `docker <verb>` answers next. */
const script = async (verb: "inspect" | "logs", a: { out?: string; err?: string; code?: number }) => {
  for (const k of ["out", "err", "code"] as const) {
    const f = join(d, `${verb}.${k}`);
    if (a[k] === undefined) await rm(f, { force: true });
    else await writeFile(f, String(a[k]));
  }
};
const state = (s: object, restarts = 0) => `${JSON.stringify(s)}|${restarts}\n`;
const calls = async () =>
  (await readFile(join(d, "calls"), "utf8").catch(() => "")).split("\n").filter(Boolean);

test("a running container without a healthcheck and quiet logs passes; the probe asks inspect, then the logs since one second before its first attempt, with the host's DOCKER_HOST", async () => {
  await script("inspect", { out: state({ Status: "running", Running: true }) });
  await script("logs", { out: "listening on :8080\n" });
  const probe = containerProbe({ name: "web" });
  const t0 = Date.now();
  assert.deepEqual(await probe(5000), { ok: true, detail: "container web: running" });
  const t1 = Date.now();
  assert.deepEqual(await probe(5000), { ok: true, detail: "container web: running" });
  const c = await calls();
  assert.equal(c.length, 4, c.join("\n"));
  assert.equal(c[0], "unset|inspect --format {{json .State}}|{{.RestartCount}} web");
  const since = /^unset\|logs --since (\S+) web$/.exec(c[1])?.[1];
  assert.ok(since, c[1]);
  const at = Date.parse(since);
  assert.ok(at >= t0 - 1000 && at <= t1 - 1000, `${since} is not one second before the first attempt`);
  assert.equal(c[3], c[1], "the window starts at the first attempt: every attempt reads the logs since then");
  assert.equal(new Date(at).toISOString(), since);
});

test("the docker CLI's timeout is the attempt's, at least 2 s, and its output may reach 16 MiB; DOCKER_HOST is the check's, else the environment's", async () => {
  await script("inspect", { out: state({ Running: true }) });
  await containerProbe({ name: "web", logPatterns: [] })(500);
  await containerProbe({ name: "web", logPatterns: [] })(7000);
  assert.deepEqual(options, [
    { timeout: 2000, maxBuffer: 16 * 1024 * 1024, dockerHost: undefined },
    { timeout: 7000, maxBuffer: 16 * 1024 * 1024, dockerHost: undefined },
  ]);
  options = [];
  await rm(join(d, "calls"));
  await containerProbe({ name: "web", dockerHost: "tcp://127.0.0.1:1" })(3000);
  process.env.DOCKER_HOST = "unix:///run/other.sock";
  await containerProbe({ name: "web" })(3000);
  assert.deepEqual(
    options.map((o) => o.dockerHost),
    ["tcp://127.0.0.1:1", "tcp://127.0.0.1:1", "unix:///run/other.sock", "unix:///run/other.sock"],
  );
  const c = await calls();
  assert.deepEqual(
    c.map((l) => l.split("|")[0]),
    ["tcp://127.0.0.1:1", "tcp://127.0.0.1:1", "unix:///run/other.sock", "unix:///run/other.sock"],
  );
});

test("no logs are read when no pattern is asked for; the default patterns catch FATAL, and a line on the logs' stderr counts", async () => {
  await script("inspect", { out: state({ Running: true }) });
  await script("logs", { out: "ok\nFATAL: could not connect to database\n" });
  assert.deepEqual(await containerProbe({ name: "web", logPatterns: [] })(3000), {
    ok: true,
    detail: "container web: running",
  });
  assert.deepEqual(
    (await calls()).map((l) => l.split(" ")[0]),
    ["unset|inspect"],
  );
  assert.deepEqual(await containerProbe({ name: "web" })(3000), {
    ok: false,
    detail: "container web: critical log line: FATAL: could not connect to database",
  });
  await script("logs", { out: "ok\n", err: "  panic: runtime error: index out of range  \n" });
  assert.deepEqual(await containerProbe({ name: "web", logPatterns: ["^never$", "PANIC"] })(3000), {
    ok: false,
    detail: "container web: critical log line: panic: runtime error: index out of range",
  });
});

test("a critical line after 2 MB of chatter is still found (the CLI's output is not cut at node's 1 MiB default)", async () => {
  await script("inspect", { out: state({ Running: true }) });
  await script("logs", { out: `${"GET /health 200\n".repeat(130_000)}FATAL: out of memory\n` });
  assert.deepEqual(await containerProbe({ name: "web" })(10_000), {
    ok: false,
    detail: "container web: critical log line: FATAL: out of memory",
  });
});

test("the restart count at the first attempt is the baseline: a rise fails the next attempt, a steady count passes", async () => {
  await script("inspect", { out: state({ Running: true }, 3) });
  const probe = containerProbe({ name: "web", logPatterns: [] });
  assert.equal((await probe(3000)).ok, true);
  assert.equal((await probe(3000)).ok, true);
  await script("inspect", { out: state({ Running: true }, 5) });
  assert.deepEqual(await probe(3000), {
    ok: false,
    detail: "container web: container restarted 2 time(s) during the check (crash loop?)",
  });
  assert.deepEqual(await probe(3000), {
    ok: false,
    detail: "container web: container restarted 2 time(s) during the check (crash loop?)",
  });
  // An unreadable count is 0, not NaN (which no rise would ever exceed).
  await script("inspect", { out: state({ Running: true }).replace("|0", "|") });
  const fresh = containerProbe({ name: "web", logPatterns: [] });
  assert.equal((await fresh(3000)).ok, true);
  await script("inspect", { out: state({ Running: true }, 1) });
  assert.deepEqual(await fresh(3000), {
    ok: false,
    detail: "container web: container restarted 1 time(s) during the check (crash loop?)",
  });
});

test("health: required by default, optional when the check says so; the healthy detail is passed on", async () => {
  await script("inspect", { out: state({ Running: true, Health: { Status: "starting" } }) });
  assert.deepEqual(await containerProbe({ name: "web", logPatterns: [] })(3000), {
    ok: false,
    detail: "container web: container health is starting",
  });
  assert.deepEqual(await containerProbe({ name: "web", logPatterns: [], requireHealthy: false })(3000), {
    ok: true,
    detail: "container web: running, starting",
  });
  await script("inspect", { out: state({ Running: true, Health: { Status: "healthy" } }) });
  assert.deepEqual(await containerProbe({ name: "web", logPatterns: [] })(3000), {
    ok: true,
    detail: "container web: running, healthy",
  });
});

test("docker inspect's output: a `|` inside the state's error, a null state, and output that is no JSON", async () => {
  const error = "exec: \"sh -c 'echo a | cat'\": executable file not found in $PATH";
  await script("inspect", { out: state({ Status: "created", Running: false, ExitCode: 127, Error: error }) });
  assert.deepEqual(await containerProbe({ name: "web" })(3000), {
    ok: false,
    detail: `container web: container is created (exit code 127): ${error}`,
  });
  await script("inspect", { out: "null|0\n" });
  assert.deepEqual(await containerProbe({ name: "web" })(3000), {
    ok: false,
    detail: "container web: container is not running (exit code ?)",
  });
  const garbage = `  <html>${"x".repeat(300)}</html>|0  \n`;
  await script("inspect", { out: garbage });
  assert.deepEqual(await containerProbe({ name: "web" })(3000), {
    ok: false,
    detail: `container web: unreadable docker inspect output: ${garbage.trim().slice(0, 200)}`,
  });
  await script("inspect", { out: "\n" });
  assert.deepEqual(await containerProbe({ name: "web" })(3000), {
    ok: false,
    detail: "container web: unreadable docker inspect output: ",
  });
});

test("docker failing: no such container (either wording, any case), another error's first line, an error with no output, no docker at all, a hung CLI", async () => {
  for (const err of [
    "Error: No such object: web\n",
    "Error response from daemon: No such container: web\n",
    "error: no such container: web\n",
  ]) {
    await script("inspect", { err, code: 1 });
    assert.deepEqual(await containerProbe({ name: "web" })(3000), {
      ok: false,
      detail: "container web: no such container",
    });
  }
  await script("inspect", {
    err: "\nCannot connect to the Docker daemon at unix:///x.sock. Is the docker daemon running?\nsecond\n",
    code: 1,
  });
  assert.deepEqual(await containerProbe({ name: "web" })(3000), {
    ok: false,
    detail:
      "container web: Cannot connect to the Docker daemon at unix:///x.sock. Is the docker daemon running?",
  });
  await script("inspect", { code: 2 });
  assert.deepEqual(await containerProbe({ name: "web" })(3000), {
    ok: false,
    detail: "container web: Command failed: docker inspect --format {{json .State}}|{{.RestartCount}} web",
  });
  assert.deepEqual(await docker(["inspect", "web"], undefined, 3000), {
    code: 2,
    out: "",
    err: "Command failed: docker inspect web\n",
  });
  await script("inspect", { out: "[]\n" });
  assert.deepEqual(await docker(["inspect", "web"], undefined, 3000), { code: 0, out: "[]\n", err: "" });
  await script("inspect", { out: "partial", err: "boom\n", code: 0 });
  assert.deepEqual(await docker(["inspect", "web"], undefined, 3000), {
    code: 0,
    out: "partial",
    err: "boom\n",
  });

  process.env.PATH = "/nonexistent";
  assert.deepEqual(await containerProbe({ name: "web" })(3000), {
    ok: false,
    detail: "container web: spawn docker ENOENT",
  });
  const none = await docker(["version"], undefined, 3000);
  assert.deepEqual(none, { code: 1, out: "", err: "spawn docker ENOENT" });
  process.env.PATH = `${bin}:${savedPath}`;

  // A CLI that never answers is killed at the attempt's timeout (2 s here), not waited on.
  await writeFile(join(d, "inspect.hang"), "");
  const hung = await containerProbe({ name: "web" })(0);
  assert.equal(hung.ok, false);
  assert.match(hung.detail ?? "", /^container web: Command failed: docker inspect /);
});
