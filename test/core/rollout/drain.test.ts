// Issue 18: a blue-green cutover under a steady request loop loses nothing: the old container leaves
// HAProxy's rotation (drainCommand, the program's hook before the container's delete) before it stops.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { drainCommand, readyAllCommand } from "../../../src/core/rollout/drain";
import { haproxyConfig, MAINTENANCE_PAGE } from "../../../src/core/rollout/haproxy";
import {
  cleanupDocker,
  createNetwork,
  docker,
  nodeBaseImage,
  RUN_ID,
  runContainer,
  waitForHealthy,
} from "../../helpers/docker";
import { ensureHaproxyImage } from "../../helpers/health-image";

const run = promisify(execFile);
const dirs: string[] = [];
after(async () => {
  await cleanupDocker();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

test("drainCommand: argument checks name the argument; the runtime API stays on the proxy's loopback", () => {
  const ok = { proxy: "p", container: "c", network: "n", backend: "app", graceSeconds: 30 };
  assert.throws(() => drainCommand({ ...ok, container: "c; rm -rf /" }), /`container`/);
  assert.throws(() => drainCommand({ ...ok, network: "$(x)" }), /`network`/);
  assert.throws(() => drainCommand({ ...ok, backend: "a b" }), /`backend`/);
  assert.throws(() => readyAllCommand("p q", "app"), /`proxy`/);
  assert.match(drainCommand(ok), /docker stop -t 30 c /);
  assert.match(
    haproxyConfig({ listenPort: 80, healthPath: "/health", backends: [] }),
    /^ {2}stats socket ipv4@127\.0\.0\.1:9999 level admin$/m,
  );
});

// The bench's stand-in app: keep-alive HTTP, and on SIGTERM it stops accepting and exits once its
// answers are out, as an app that handles SIGTERM does.
const SERVER = `
const http = require("http"), fs = require("fs");
const s = http.createServer((q, r) => r.end(process.env.V));
s.listen(8080, () => fs.writeFileSync("/tmp/ready", ""));
process.on("SIGTERM", () => { s.close(() => process.exit(0)); s.closeIdleConnections(); });
`;

/** A closed loop of `n` keep-alive connections through the proxy; every failure is kept. */
function loop(port: number, n: number) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: n });
  const bodies: string[] = [];
  const failures: string[] = [];
  let stopped = false;
  const once = () =>
    new Promise<void>((res) => {
      const q = http.get({ host: "127.0.0.1", port, path: "/", agent, timeout: 30_000 }, (r) => {
        let b = "";
        r.on("data", (d) => (b += d));
        r.on("end", () => {
          if (r.statusCode === 200) bodies.push(b);
          else failures.push(`${r.statusCode} ${b.slice(0, 80)}`);
          res();
        });
      });
      q.on("timeout", () => q.destroy(new Error("no answer in 30 s")));
      q.on("error", (e) => {
        failures.push(String(e));
        res();
      });
    });
  const loops = Array.from({ length: n }, async () => {
    while (!stopped) await once();
  });
  return {
    bodies,
    failures,
    /** Resolves once `k` more answers arrived (progress, not time). */
    async answers(k: number, pred: (b: string) => boolean = () => true): Promise<void> {
      const start = bodies.length;
      while (bodies.slice(start).filter(pred).length < k) await new Promise((r) => setTimeout(r, 50));
    },
    async stop() {
      stopped = true;
      await Promise.all(loops);
      agent.destroy();
    },
  };
}

/**
 * Waits until HAProxy answers `body`: Docker publishes the port before HAProxy listens, and a connection
 * accepted then is cut ("socket hang up") without HAProxy ever seeing it.
 */
async function proxyServes(port: number, body: string): Promise<void> {
  let last = "";
  for (let i = 0; i < 1200; i++) {
    const r = await fetch(`http://127.0.0.1:${port}/`).then(
      async (x) => (x.status === 200 ? await x.text() : ""),
      () => "",
    );
    if (r === body) return;
    last = r;
    await new Promise((res) => setTimeout(res, 100));
  }
  throw new Error(`the proxy never answered ${body} (last: ${JSON.stringify(last)})`);
}

/** The backend's retry and redispatch counters (`show stat`), read through the runtime API. */
async function retries(proxy: string): Promise<{ wretr: number; wredis: number }> {
  const script =
    'exec 3<>/dev/tcp/127.0.0.1/9999; printf "show stat\\n" >&3; cat <&3 | grep -E "^(# pxname|app,BACKEND)"';
  const { stdout } = await run("docker", ["exec", proxy, "bash", "-c", script]);
  const [head, row] = stdout.trim().split("\n");
  const cols = head.replace(/^# /, "").split(",");
  const vals = row.split(",");
  const get = (k: string) => Number(vals[cols.indexOf(k)] || 0);
  return { wretr: get("wretr"), wredis: get("wredis") };
}

/** A directory with the proxy's config (four server slots for `alias`) and maintenance page. */
function proxyFiles(prefix: string, alias: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(dir);
  writeFileSync(
    join(dir, "haproxy.cfg"),
    haproxyConfig({
      listenPort: 8080,
      healthPath: "/",
      backends: [{ name: "app", host: alias, port: 8080, count: 4 }],
    }),
  );
  writeFileSync(join(dir, "maintenance.html"), MAINTENANCE_PAGE);
  return dir;
}

test("a blue-green cutover under a steady request loop: no request fails, none is retried after the old container goes", async () => {
  const [appImage, proxyImage] = await Promise.all([nodeBaseImage(), ensureHaproxyImage()]);
  const net = await createNetwork("drain");
  const alias = `app-${RUN_ID}`;
  const dir = proxyFiles("sd-drain-", alias);
  const release = async (v: string) => {
    const c = await runContainer({
      image: appImage,
      network: net,
      aliases: [alias],
      env: { V: v },
      healthcheck: { test: "test -f /tmp/ready", intervalS: 1, retries: 60 },
      command: ["node", "-e", SERVER],
    });
    await waitForHealthy(c.id, 120_000); // the container resource's `wait: true`
    return c.id;
  };
  const old = await release("v1");
  const proxy = await runContainer({
    image: proxyImage,
    network: net,
    ports: [{ container: 8080 }],
    volumes: [{ source: dir, target: "/etc/haproxy" }],
    command: ["haproxy", "-db", "-f", "/etc/haproxy/haproxy.cfg"],
  });
  await proxyServes(proxy.hostPort!, "v1");
  const load = loop(proxy.hostPort!, 2);
  try {
    await load.answers(200, (b) => b === "v1");
    const fresh = await release("v2");
    await load.answers(50, (b) => b === "v2"); // the new release is in rotation
    // The drain command's create (a leftover drain of an interrupted deploy is cleared): a no-op here.
    await run("sh", ["-c", readyAllCommand(proxy.id, "app")]);
    const before = await retries(proxy.id);
    // The end of the update: the drain command's delete, then the provider's delete of the old container.
    const { stdout } = await run("sh", [
      "-c",
      drainCommand({ proxy: proxy.id, container: old, network: net, backend: "app", graceSeconds: 30 }),
    ]);
    assert.match(stdout, /drained in proxy/, stdout);
    await docker(["rm", "-f", "-v", old]);
    await load.answers(500);
    const afterwards = await retries(proxy.id);
    await load.stop();
    assert.deepEqual(load.failures, []);
    assert.deepEqual(afterwards, before, "no request went to the old container's address once it stopped");
    assert.ok(load.bodies.slice(-100).every((b) => b === "v2"));
    // The drained slot was cleared: a later release taking the same address gets traffic again.
    const state = await run("docker", [
      "exec",
      proxy.id,
      "bash",
      "-c",
      'exec 3<>/dev/tcp/127.0.0.1/9999; printf "show servers state app\\n" >&3; cat <&3',
    ]);
    const drained = state.stdout
      .split("\n")
      .filter((l) => /^\d+ app /.test(l))
      .filter((l) => (Number(l.split(" ")[6]) & 8) !== 0);
    assert.deepEqual(drained, []);
    await docker(["rm", "-f", fresh]);
  } finally {
    await load.stop();
  }
});

test("no successor (a destroy, or the drain command deleted alone): the container is neither drained nor stopped, at once", async () => {
  const [appImage, proxyImage] = await Promise.all([nodeBaseImage(), ensureHaproxyImage()]);
  const net = await createNetwork("drain-last");
  const alias = `last-${RUN_ID}`;
  const dir = proxyFiles("sd-drain-last-", alias);
  const only = await runContainer({
    image: appImage,
    network: net,
    aliases: [alias],
    env: { V: "v1" },
    healthcheck: { test: "test -f /tmp/ready", intervalS: 1, retries: 60 },
    command: ["node", "-e", SERVER],
  });
  await waitForHealthy(only.id, 120_000);
  const proxy = await runContainer({
    image: proxyImage,
    network: net,
    ports: [{ container: 8080 }],
    volumes: [{ source: dir, target: "/etc/haproxy" }],
    command: ["haproxy", "-db", "-f", "/etc/haproxy/haproxy.cfg"],
  });
  await proxyServes(proxy.hostPort!, "v1");
  const load = loop(proxy.hostPort!, 1);
  await load.answers(20, (b) => b === "v1");
  await load.stop();
  const r = await run("sh", [
    "-c",
    drainCommand({ proxy: proxy.id, container: only.id, network: net, backend: "app", graceSeconds: 30 }),
  ]);
  assert.match(r.stderr, /no other server in backend app: app\d is not drained/);
  assert.match(r.stdout, /left to the provider to stop, undrained/);
  // Still serving: if Pulumi deletes the drain command without its container, nothing goes down.
  assert.equal((await docker(["inspect", "-f", "{{.State.Running}}", only.id])).trim(), "true");
  const state = await run("docker", [
    "exec",
    proxy.id,
    "bash",
    "-c",
    'exec 3<>/dev/tcp/127.0.0.1/9999; printf "show servers state app\\n" >&3; cat <&3',
  ]);
  const drained = state.stdout
    .split("\n")
    .filter((l) => /^\d+ app /.test(l))
    .filter((l) => (Number(l.split(" ")[6]) & 8) !== 0);
  assert.deepEqual(drained, []);
  assert.equal((await fetch(`http://127.0.0.1:${proxy.hostPort}/`)).status, 200);
});
