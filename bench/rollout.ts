// `npm run bench:rollout` (issue 18): each rollout under a steady closed-loop load (autocannon, loopback only,
// bounded in connections and time). Prints figures beside their goals and asserts nothing: it is not a test.
// `pulumi up` cannot run here, so each rollout is driven by the operations the program declares, as the
// tests do: Docker containers + the project's HAProxy config (recreate, blue-green), the program's swarm
// spec through test/helpers/swarm.ts, pm2 through src/core/pm2's command strings, restoreBackup for the
// rollback's restore. BENCH_SCALE (default 50 ≈ 755 MB) sizes the pgbench database of the restore.
import autocannon from "autocannon";
import { execFile, execFileSync, spawn } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { PassThrough } from "node:stream";
import { join, resolve } from "node:path";
import { performance } from "node:perf_hooks";
import { promisify } from "node:util";
import { restoreBackup } from "../src/core/backup";
import { runGate } from "../src/core/health/run";
import { releaseCommand, type Pm2Release } from "../src/core/pm2/release";
import type { StackAccess } from "../src/core/release/stack-port";
import { drainCommand } from "../src/core/rollout/drain";
import { haproxyConfig, MAINTENANCE_PAGE } from "../src/core/rollout/haproxy";
import { SWARM_PROXY_PAGE, swarmProxySpec, swarmServiceSpec } from "../src/core/swarm/spec";
import {
  cleanupDocker,
  createNetwork,
  docker,
  ensureDocker,
  nodeBaseImage,
  RUN_ID,
  runContainer,
  waitForHealthy,
} from "../test/helpers/docker";
import { ensureHaproxyImage } from "../test/helpers/health-image";
import { runLikeLanghost, stackFileConfig } from "../test/helpers/langhost";
import { freePort, PG_BIN, startPostgres, type TestPostgres } from "../test/helpers/postgres";
import { applyService, createOverlay, ensureSwarm, removeServices, updateState } from "../test/helpers/swarm";

const run = promisify(execFile);
const ROOT = resolve(__dirname, "..");
const BIN = join(ROOT, "bin", "safe-deploy");
const scale = Number(process.env.BENCH_SCALE ?? 50);
const STEADY_MS = 3000;
// BENCH_ONLY=rollouts,recover,overhead runs only those parts (default: all).
const want = (part: string) => (process.env.BENCH_ONLY ?? part).split(",").includes(part);
let appImage = "";
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const s = (ms: number) => (ms / 1000).toFixed(2);

// A release of the stand-in app: a Node HTTP server (keep-alive, like the demo app) answering its version,
// with /health failing when BROKEN=1. On SIGTERM it stops accepting and ends once its answers are out,
// as an app that handles SIGTERM does; /tmp/ready is what its Docker healthcheck looks for.
const SERVER = `
const http = require("http"), fs = require("fs");
const v = process.env.V, broken = process.env.BROKEN === "1";
const s = http.createServer((q, r) => {
  if (q.url === "/health" && broken) { r.statusCode = 404; return r.end("no health"); }
  r.end(v);
});
s.listen(8080, () => fs.writeFileSync("/tmp/ready", ""));
process.on("SIGTERM", () => { s.close(() => process.exit(0)); s.closeIdleConnections(); });
`;
const APP = ["node", "-e", SERVER];
const HEALTHCHECK = { test: "test -f /tmp/ready", intervalS: 1, retries: 30 };
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 2);
const RUNS = Number(process.env.BENCH_RUNS ?? 1);

interface Sample {
  t: number;
  ms: number;
  ok: boolean;
}

/** A steady load on `url` until `stop()`; every answer is kept with its time, so windows can be cut later. */
function startLoad(url: string) {
  const samples: Sample[] = [];
  const failures = { errors: 0, non2xx: 0 };
  const t0 = performance.now();
  // Closed loop (each connection sends its next request when the last one is answered): autocannon's
  // rate limit sends each second's quota in one burst, so a gap under 1 s could not be seen with it.
  // Bounded: CONNECTIONS connections, 2 s per request, 10 minutes at most.
  let finished = () => {};
  const done = new Promise<void>((res) => (finished = res));
  const inst = autocannon({ url, connections: CONNECTIONS, timeout: 2, duration: 600 }, () => finished());
  inst.on("response", (_c: unknown, status: number, _b: number, ms: number) => {
    const ok = status >= 200 && status < 300;
    if (!ok) failures.non2xx++;
    samples.push({ t: performance.now(), ms, ok });
  });
  inst.on("reqError", () => {
    failures.errors++;
    samples.push({ t: performance.now(), ms: NaN, ok: false });
  });
  return {
    t0,
    samples,
    failures,
    async stop(): Promise<void> {
      inst.stop();
      await done;
    },
  };
}

const p99 = (xs: number[]) => {
  const v = xs.filter((x) => !Number.isNaN(x)).sort((a, b) => a - b);
  return v.length ? v[Math.min(v.length - 1, Math.floor(v.length * 0.99))] : NaN;
};

/** Longest stretch between `from` and `to` with no successful answer. */
function longestGap(samples: Sample[], from: number, to: number): number {
  let last = from;
  let gap = 0;
  for (const x of samples) {
    if (!x.ok || x.t < from || x.t > to) continue;
    gap = Math.max(gap, x.t - last);
    last = x.t;
  }
  return Math.max(gap, to - last);
}

interface RolloutFigures {
  name: string;
  requests: number;
  failed: number;
  /** Connection errors and timeouts / answers other than 2xx. */
  kinds: string;
  gapMs: number;
  p99Steady: number;
  p99Cutover: number;
  cutoverMs: number;
}

/** Runs `cutover` under load on `url`: STEADY_MS of steady state before, 2 s after. */
async function underLoad(name: string, url: string, cutover: () => Promise<void>): Promise<RolloutFigures> {
  const load = startLoad(url);
  await sleep(STEADY_MS);
  const a = performance.now();
  let b = a;
  try {
    await cutover();
  } finally {
    b = performance.now();
    await sleep(2000);
    await load.stop();
  }
  const end = performance.now();
  const steady = load.samples.filter((x) => x.t < a && x.t > load.t0 + 500).map((x) => x.ms);
  const during = load.samples.filter((x) => x.t >= a && x.t <= b).map((x) => x.ms);
  return {
    name,
    requests: load.samples.length,
    failed: load.failures.errors + load.failures.non2xx,
    kinds: `${load.failures.errors}/${load.failures.non2xx}`,
    gapMs: longestGap(load.samples, load.t0 + 500, end),
    p99Steady: p99(steady),
    p99Cutover: p99(during),
    cutoverMs: b - a,
  };
}

async function get(url: string): Promise<{ status: number; body: string }> {
  try {
    const r = await fetch(url, { signal: AbortSignal.timeout(2000) });
    return { status: r.status, body: (await r.text()).trim() };
  } catch (e) {
    return { status: 0, body: String(e) };
  }
}

async function until(url: string, ok: (r: { status: number; body: string }) => boolean, what: string) {
  for (let i = 0; i < 240; i++) {
    if (ok(await get(url))) return;
    await sleep(250);
  }
  throw new Error(`${what}: ${url} never answered as expected (last: ${JSON.stringify(await get(url))})`);
}

/** What the provider's delete does with `destroyGraceSeconds: 30` (src/components/app.ts): stop, then remove. */
async function deleteContainer(id: string): Promise<void> {
  await docker(["stop", "-t", "30", id]);
  await docker(["rm", "-f", "-v", id]);
}

let haproxy = "";

/** A recreate release: fixed name and host port, started after the old one is gone (deleteBeforeReplace). */
async function recreateRelease(network: string, port: number, v: string, broken = false): Promise<string> {
  const c = await runContainer({
    image: appImage,
    network,
    ports: [{ container: 8080, host: port }],
    env: { V: v, BROKEN: broken ? "1" : "0" },
    healthcheck: HEALTHCHECK,
    command: APP,
  });
  await waitForHealthy(c.id); // the container resource's `wait: true`
  return c.id;
}

async function benchRecreate(): Promise<RolloutFigures> {
  const net = await createNetwork("bench-recreate");
  const port = await freePort();
  let cur = await recreateRelease(net, port, "v1");
  const url = `http://127.0.0.1:${port}/health`;
  await until(url, (r) => r.body === "v1", "recreate v1");
  return underLoad("recreate", url, async () => {
    await deleteContainer(cur);
    cur = await recreateRelease(net, port, "v2");
    await until(url, (r) => r.body === "v2", "recreate v2");
  });
}

async function benchBlueGreen(): Promise<RolloutFigures> {
  const net = await createNetwork("bench-bg");
  const alias = `app-${RUN_ID}`;
  const dir = mkdtempSync(join(tmpdir(), "sd-bench-bg-"));
  try {
    // The graph's proxy: one server-template on the release alias, following releases by Docker DNS.
    writeFileSync(
      join(dir, "haproxy.cfg"),
      haproxyConfig({
        listenPort: 8080,
        healthPath: "/health",
        backends: [{ name: "app", host: alias, port: 8080, count: 4 }],
      }),
    );
    writeFileSync(join(dir, "maintenance.html"), MAINTENANCE_PAGE);
    const release = async (v: string) => {
      const c = await runContainer({
        image: appImage,
        network: net,
        aliases: [alias],
        env: { V: v, BROKEN: "0" },
        healthcheck: HEALTHCHECK,
        command: APP,
      });
      await waitForHealthy(c.id);
      return c.id;
    };
    const old = await release("v1");
    const proxy = await runContainer({
      image: haproxy,
      network: net,
      ports: [{ container: 8080 }],
      volumes: [{ source: dir, target: "/etc/haproxy" }],
      command: ["haproxy", "-db", "-f", "/etc/haproxy/haproxy.cfg"],
    });
    const url = `http://127.0.0.1:${proxy.hostPort}/health`;
    await until(url, (r) => r.body === "v1", "blue-green v1");
    return await underLoad("blue-green", url, async () => {
      await release("v2"); // new container first (deleteBeforeReplace: false), waited healthy
      const g = await runGate({ url, retries: 30, delaySeconds: 0.5 });
      if (!g.ok) throw new Error(`blue-green gate failed: ${g.message}`);
      // The end of the update: the drain command's delete (src/components/app.ts), then the container's.
      await run("sh", [
        "-c",
        drainCommand({ proxy: proxy.id, container: old, network: net, backend: "app", graceSeconds: 30 }),
      ]);
      await deleteContainer(old);
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function benchSwarm(): Promise<RolloutFigures> {
  await ensureSwarm();
  const svc = `sd-bench-${RUN_ID}`.toLowerCase().replace(/[^a-z0-9-]/g, "-");
  const net = `${svc}-net`;
  const hostPort = await freePort();
  await createOverlay(net);
  try {
    await applyService(
      swarmProxySpec({
        name: `${svc}-proxy`,
        image: haproxy,
        hostPort,
        network: net,
        constraints: [],
        haproxyConfig: haproxyConfig({
          listenPort: hostPort,
          backends: [{ name: "app", host: `tasks.${svc}`, port: 8080, count: 8 }],
          healthPath: "/health",
          maintenancePage: SWARM_PROXY_PAGE,
        }),
      }),
    );
    const deploy = (v: string) => {
      const spec = swarmServiceSpec({
        name: svc,
        image: appImage,
        port: 8080,
        hostPort,
        replicas: 2,
        network: net,
        release: v,
        healthcheck: {
          command: ["CMD-SHELL", "test -f /tmp/ready"],
          intervalSeconds: 1,
          timeoutSeconds: 1,
          retries: 2,
          startPeriodSeconds: 0,
        },
        swarm: {
          publishMode: "host",
          constraints: ["node.role==manager"],
          maxReplicasPerNode: 0,
          limits: { cpus: 1, memoryMb: 256 },
          parallelism: 1,
          monitorSeconds: 3,
        },
      });
      const c = spec.taskSpec.containerSpec;
      const withApp = {
        ...spec,
        taskSpec: { ...spec.taskSpec, containerSpec: { ...c, commands: APP } },
      };
      return applyService(withApp, { V: v, BROKEN: "0" });
    };
    const gate = (v: string) =>
      runGate({
        url: `http://127.0.0.1:${hostPort}/health`,
        retries: 120,
        delaySeconds: 1,
        timeoutSeconds: 2,
        successThreshold: 2,
        service: { service: svc, release: v, replicas: 2 },
      });
    await deploy("v1");
    const g1 = await gate("v1");
    if (!g1.ok) throw new Error(`swarm v1 gate failed: ${g1.message}`);
    return await underLoad("swarm", `http://127.0.0.1:${hostPort}/health`, async () => {
      await deploy("v2");
      for (let i = 0; i < 480 && (await updateState(svc)) !== "completed"; i++) await sleep(250);
      const g = await gate("v2");
      if (!g.ok) throw new Error(`swarm v2 gate failed: ${g.message}`);
    });
  } finally {
    await removeServices([svc, `${svc}-proxy`]);
    await run("docker", ["network", "rm", net]).catch(() => undefined);
  }
}

async function benchPm2(pg: TestPostgres): Promise<RolloutFigures> {
  const work = mkdtempSync(join(tmpdir(), "sd-bench-pm2-"));
  const pm2Home = join(work, "pm2-home");
  const repo = join(work, "repo");
  const PM2 = join(ROOT, "node_modules/.bin/pm2");
  const port = await freePort();
  const git = (...a: string[]) => execFileSync("git", ["-C", repo, ...a], { encoding: "utf8" }).trim();
  const sh = (cmd: string) =>
    new Promise<void>((res, rej) => {
      const env = {
        ...process.env,
        PM2_HOME: pm2Home,
        SAFE_DEPLOY_APP_ENV: JSON.stringify({
          DATABASE_URL: pg.url("postgres"),
          PORT: String(port),
          HOST: "127.0.0.1",
        }),
      };
      const child = spawn("/bin/sh", ["-c", cmd], { env, stdio: ["ignore", "pipe", "pipe"] });
      let out = "";
      child.stdout.on("data", (d) => (out += d));
      child.stderr.on("data", (d) => (out += d));
      child.on("close", (code) =>
        code === 0 ? res() : rej(new Error(`pm2 release failed (${code}):\n${out}`)),
      );
    });
  try {
    cpSync(join(ROOT, "examples/app"), join(repo, "web"), {
      recursive: true,
      filter: (p) => !p.includes("node_modules"),
    });
    execFileSync("git", ["init", "-q", repo]);
    git("config", "user.email", "bench@example.com");
    git("config", "user.name", "bench");
    const commit = (version: string) => {
      const pkg = join(repo, "web/package.json");
      writeFileSync(
        pkg,
        JSON.stringify({ ...JSON.parse(readFileSync(pkg, "utf8")), version }, null, 2) + "\n",
      );
      git("add", "-A");
      git("commit", "-q", "-m", version);
      return git("rev-parse", "HEAD");
    };
    const spec = (c: string): Pm2Release => ({
      root: join(work, "srv"),
      commit: c,
      appName: "notes",
      repoDir: repo,
      appDir: "web",
      install: [`ln -s ${join(ROOT, "examples/app/node_modules")} node_modules`],
      script: "src/server.js",
      execMode: "cluster",
      instances: 2,
      bin: PM2,
      keepReleases: 5,
    });
    const v1 = commit("1.0.0");
    const v2 = commit("2.0.0");
    const url = `http://127.0.0.1:${port}/health`;
    await sh(releaseCommand(spec(v1)));
    const g1 = await runGate({ url, retries: 60, delaySeconds: 0.5 });
    if (!g1.ok) throw new Error(`pm2 v1 gate failed: ${g1.message}`);
    return await underLoad("pm2 reload", url, async () => {
      await sh(releaseCommand(spec(v2)));
      const g = await runGate({ url, retries: 60, delaySeconds: 0.5 });
      if (!g.ok) throw new Error(`pm2 v2 gate failed: ${g.message}`);
    });
  } finally {
    await run(PM2, ["kill"], { env: { ...process.env, PM2_HOME: pm2Home } }).catch(() => undefined);
    rmSync(work, { recursive: true, force: true });
  }
}

/**
 * Time to recover on the recreate rollout (where a bad release takes the port): from the failed gate to
 * the previous release passing the gate again, re-applied alone or after restoring the pre-deploy backup.
 */
async function benchRecover(withRestore: boolean, backup?: { file: string; url: string; dir: string }) {
  const net = await createNetwork("bench-recover");
  const port = await freePort();
  const url = `http://127.0.0.1:${port}/health`;
  let cur = await recreateRelease(net, port, "v1");
  await deleteContainer(cur);
  cur = await recreateRelease(net, port, "bad", true); // healthy to Docker, no /health
  const bad = await runGate({ url, retries: 3, delaySeconds: 0.5 });
  if (bad.ok) throw new Error("the broken release passed the gate");
  const t0 = performance.now();
  let restoreMs = 0;
  if (withRestore && backup) {
    const r0 = performance.now();
    await restoreBackup(backup.file, { databaseUrl: backup.url, safetyDir: backup.dir });
    restoreMs = performance.now() - r0;
  }
  await deleteContainer(cur);
  cur = await recreateRelease(net, port, "v1");
  const good = await runGate({ url, retries: 120, delaySeconds: 0.25 });
  if (!good.ok) throw new Error(`the previous release did not pass the gate: ${good.message}`);
  return { totalMs: performance.now() - t0, restoreMs };
}

/**
 * The CLI's own part of an `up` of an unchanged app (preflight, lock, release record, soak) through
 * `runUp` with the Pulumi engine faked by a stack whose `up` changes nothing (STAND-IN: the engine's own
 * time is not in it). Returns the second `up` (the first records the first release) without and with soak.
 */
async function cliOverhead(pg: TestPostgres): Promise<{ noSoakMs: number; soakMs: number; soak: string }> {
  const { runUp } = await import("../src/cli/commands/up");
  const project = mkdtempSync(join(tmpdir(), "sd-bench-cli-"));
  const app = createServer((_q, r) => r.end("ok"));
  await new Promise<void>((r) => app.listen(0, "127.0.0.1", r));
  const appUrl = `http://127.0.0.1:${(app.address() as AddressInfo).port}`;
  try {
    const dbUrl = await pg.createDatabase("cliapp");
    const git = (...a: string[]) => execFileSync("git", ["-C", project, ...a], { encoding: "utf8" });
    git("init", "-q", "-b", "main");
    git("config", "user.email", "bench@example.com");
    git("config", "user.name", "bench");
    writeFileSync(join(project, "Pulumi.yaml"), "name: safe-deploy\nruntime: nodejs\n");
    writeFileSync(join(project, ".gitignore"), "backups/\nlogs/\n.safe-deploy/\n");
    writeFileSync(join(project, "Pulumi.staging.yaml"), "config:\n  safe-deploy:app:\n    image: web:v1\n");
    mkdirSync(join(project, "migrations"));
    writeFileSync(join(project, "migrations", "001_init.sql"), "SELECT 1;\n");
    git("add", "-A");
    git("commit", "-qm", "v1");
    const plain = (v: unknown) => ({ value: JSON.stringify(v), secret: false });
    const config = {
      "safe-deploy:app": plain({ image: "web:v1" }),
      "safe-deploy:database": plain({ mode: "external" }),
      "safe-deploy:databaseUrl": { value: dbUrl, secret: true },
      "safe-deploy:backup": plain({ dir: "./backups/staging" }),
      "safe-deploy:migrations": plain({ tool: "node-pg-migrate", workDir: ".", dir: "migrations" }),
    };
    const outputs = async () => ({ url: { value: appUrl, secret: false } });
    const stack: StackAccess = {
      name: "staging",
      getAllConfig: async () => config,
      setAllConfig: async () => undefined,
      exportState: async () => ({ version: 3, deployment: { resources: [], pending_operations: [] } }),
      importState: async () => undefined,
      refresh: async () => undefined,
      cancel: async () => undefined,
      history: async () => [],
      outputs,
      up: async () => ({ outputs: await outputs() }),
    };
    const deps = {
      openStack: async () => stack,
      out: () => undefined,
      console: { write: () => true },
      terminal: { input: new PassThrough(), output: new PassThrough(), isTTY: false },
    };
    const up = async (soak: boolean) => {
      const t = performance.now();
      await runUp({ stack: "staging", projectDir: project, soak }, deps);
      return performance.now() - t;
    };
    await up(false);
    const noSoakMs = await up(false);
    const soakMs = await up(true);
    return { noSoakMs, soakMs, soak: "15 polls 2 s apart (health.soakAttempts/soakDelaySeconds defaults)" };
  } finally {
    await new Promise((r) => app.close(r));
    rmSync(project, { recursive: true, force: true });
  }
}

async function main() {
  await ensureDocker();
  [appImage, haproxy] = await Promise.all([nodeBaseImage(), ensureHaproxyImage()]);
  const pg = await startPostgres();
  const dir = mkdtempSync(join(tmpdir(), "sd-bench-rollout-"));
  try {
    if (want("rollouts")) {
      const rollouts: RolloutFigures[] = [];
      const all: Array<[string, () => Promise<RolloutFigures>]> = [
        ["recreate", benchRecreate],
        ["blue-green", benchBlueGreen],
        ["swarm", benchSwarm],
        ["pm2", () => benchPm2(pg)],
      ];
      // BENCH_ROLLOUTS=blue-green,pm2 picks rollouts; BENCH_RUNS=5 repeats each (others share these cores).
      const picked = (process.env.BENCH_ROLLOUTS ?? all.map(([n]) => n).join(",")).split(",");
      for (let i = 0; i < RUNS; i++) {
        for (const [n, f] of all) {
          if (!picked.includes(n)) continue;
          rollouts.push(await f());
          await cleanupDocker();
        }
      }
      console.log(
        `\nrollouts under a closed-loop load (autocannon, ${CONNECTIONS} connections, 2 s timeout)`,
      );
      console.log(
        "rollout      requests  failed (errors/non-2xx)  longest gap  p99 steady  p99 cutover  ratio  cutover  goal",
      );
      for (const r of rollouts) {
        const goal = r.name === "recreate" ? "a gap expected" : "0 failed, p99 <= 2x";
        console.log(
          `${r.name.padEnd(12)} ${String(r.requests).padStart(8)}  ${String(r.failed).padStart(6)} (${r.kinds})`.padEnd(
            48,
          ) +
            `${s(r.gapMs).padStart(9)} s` +
            `  ${r.p99Steady.toFixed(1).padStart(7)} ms  ${r.p99Cutover.toFixed(1).padStart(8)} ms  ${(r.p99Cutover / r.p99Steady).toFixed(2).padStart(5)}  ${s(r.cutoverMs).padStart(5)} s  ${goal}`,
        );
      }
      if (RUNS > 1) {
        const median = (xs: number[]) => {
          const v = [...xs].sort((a, b) => a - b);
          return v.length % 2 ? v[(v.length - 1) / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2;
        };
        console.log(`\nmedians over ${RUNS} runs`);
        for (const name of [...new Set(rollouts.map((r) => r.name))]) {
          const rs = rollouts.filter((r) => r.name === name);
          console.log(
            `${name.padEnd(12)} failed ${rs.map((r) => r.failed).join("/")} (median ${median(rs.map((r) => r.failed))})` +
              `  p99 steady ${median(rs.map((r) => r.p99Steady)).toFixed(1)} ms  cutover ${median(rs.map((r) => r.p99Cutover)).toFixed(1)} ms` +
              `  ratio ${median(rs.map((r) => r.p99Cutover / r.p99Steady)).toFixed(2)} (runs: ${rs.map((r) => (r.p99Cutover / r.p99Steady).toFixed(2)).join(" ")})` +
              `  longest gap ${s(median(rs.map((r) => r.gapMs)))} s`,
          );
        }
      }
    }
    if (want("recover")) {
      // Time to recover, with a pgbench database at BENCH_SCALE as the app's database.
      const url = await pg.createDatabase("bench");
      const env = {
        ...process.env,
        PGPASSWORD: pg.password,
        PGHOST: "127.0.0.1",
        PGPORT: String(pg.port),
        PGUSER: pg.user,
      };
      execFileSync(join(PG_BIN, "pgbench"), ["-i", "-q", "-s", String(scale), "bench"], {
        env,
        stdio: "ignore",
      });
      const [sz] = await pg.query<{ s: string }>("SELECT pg_size_pretty(pg_database_size('bench')) AS s");
      const out = execFileSync(BIN, ["backup", "create", "--dir", join(dir, "pre"), "--label", "manual"], {
        env: { ...process.env, DATABASE_URL: url },
        encoding: "utf8",
      });
      const file = out.trim().split("\n").pop()!;
      const plain = await benchRecover(false);
      await cleanupDocker();
      const restored = await benchRecover(true, { file, url, dir: join(dir, "safety") });
      await cleanupDocker();
      console.log(`\ntime to recover (recreate, failed gate -> previous release passes the gate again)`);
      console.log(`  re-apply only:          ${s(plain.totalMs)} s`);
      console.log(
        `  restore + re-apply:     ${s(restored.totalMs)} s, of which restore ${s(restored.restoreMs)} s = ` +
          `${((100 * restored.restoreMs) / restored.totalMs).toFixed(0)}%  (pgbench scale ${scale}, ${sz.s}; the restore includes its safety backup)`,
      );
    }
    if (want("overhead")) {
      // The guarded deploy's overhead. STAND-INS: no Pulumi CLI here, so no engine, plugins or state.
      const config = await stackFileConfig(join(ROOT, "Pulumi.staging.yaml"));
      const lh = await runLikeLanghost({
        projectDir: ROOT,
        stack: "staging",
        config,
        secrets: { dbPassword: "pw-bench-123456" },
      });
      if (lh.exitCode !== 0)
        throw new Error(`the program failed under the language host path:\n${lh.stderr}`);
      const net = await createNetwork("bench-bare");
      const b0 = performance.now();
      const c = await runContainer({
        image: appImage,
        network: net,
        ports: [{ container: 8080 }],
        env: { V: "v1", BROKEN: "0" },
        command: APP,
      });
      await until(`http://127.0.0.1:${c.hostPort}/health`, (r) => r.status === 200, "bare container");
      const bare = performance.now() - b0;
      console.log(
        `\nguarded deploy overhead (an unchanged app; goal: small against the bare container start)`,
      );
      console.log(
        `  program load, language host path under mocks (STAND-IN for the engine): ${s(lh.lastResourceMs)} s, ${lh.resources.length} resources`,
      );
      console.log(`  bare container start (docker run -> first 200):                         ${s(bare)} s`);
      const cli = await cliOverhead(pg);
      console.log(
        `  CLI up of an unchanged app, engine faked (STAND-IN: no engine time): ${s(cli.noSoakMs)} s with --no-soak, ` +
          `${s(cli.soakMs)} s with the soak (${cli.soak})`,
      );
      console.log(
        `  overhead without the soak = program load + CLI = ${s(lh.lastResourceMs + cli.noSoakMs)} s = ` +
          `${((lh.lastResourceMs + cli.noSoakMs) / bare).toFixed(1)} x the bare container start`,
      );
    }
  } finally {
    await cleanupDocker();
    await pg.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
