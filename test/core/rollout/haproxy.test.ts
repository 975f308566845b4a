import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { haproxyConfig, MAINTENANCE_PAGE } from "../../../src/core/rollout/haproxy";
import {
  ensureBusyboxImage,
  ensureHaproxyImage,
  publishedPort,
  removeContainers,
  runContainer,
} from "../../helpers/health-image";

const run = promisify(execFile);
const suffix = Math.random().toString(36).slice(2, 8);
const network = `sd-health-rollout-${suffix}`;
const ids: string[] = [];
let dir = "";

const base = {
  listenPort: 8080,
  healthPath: "/health",
  backends: [{ name: "blue", host: "app-blue", port: 8080 }],
};

test("config: health-checked backends, status sets, maintenance mode, argument checks", () => {
  const c = haproxyConfig({
    ...base,
    backends: [...base.backends, { name: "green", host: "app-green", port: 8080 }],
  });
  assert.match(c, /bind \*:8080/);
  assert.match(c, /option httpchk GET \/health\n {2}http-check expect status 200\n/);
  assert.match(c, /server blue app-blue:8080\n {2}server green app-green:8080\n/);
  assert.match(c, /file \/etc\/haproxy\/maintenance.html if \{ nbsrv\(app\) lt 1 \}/);
  assert.match(
    haproxyConfig({ ...base, expectStatus: [200, 204] }),
    /http-check expect rstatus \^\(200\|204\)\$/,
  );
  assert.match(haproxyConfig({ ...base, maintenance: true }), /maintenance.html\n {2}default_backend/);
  assert.throws(() => haproxyConfig({ ...base, listenPort: 0 }), /`listenPort`/);
  assert.throws(() => haproxyConfig({ ...base, healthPath: "health" }), /`healthPath`/);
  assert.throws(
    () => haproxyConfig({ ...base, backends: [{ name: "x", host: "a b\n  server evil", port: 1 }] }),
    /backend `x`/,
  );
});

let image = "";
let proxyImage = "";
before(async () => {
  [image, proxyImage] = await Promise.all([ensureBusyboxImage(), ensureHaproxyImage()]);
  await run("docker", ["network", "create", "--label", "safe-deploy-test=health", network]);
  dir = await mkdtemp(join(tmpdir(), "sd-haproxy-"));
});
after(async () => {
  await removeContainers(ids);
  await run("docker", ["network", "rm", network]).catch(() => undefined);
  if (dir) await rm(dir, { recursive: true, force: true });
});

const app = async (color: string, healthy: boolean) => {
  const health = healthy ? "echo ok > /www/health && " : "";
  const id = await runContainer([
    "--name",
    `app-${color}-${suffix}`,
    "--network",
    network,
    "--network-alias",
    `app-${color}`,
    image,
    "sh",
    "-c",
    `mkdir -p /www && echo ${color} > /www/index.html && ${health}exec httpd -f -p 8080 -h /www`,
  ]);
  ids.push(id);
  return id;
};

/** A healthy busybox httpd on the test network answering `body` under the network alias `alias`. */
async function healthyApp(name: string, alias: string, body: string): Promise<string> {
  const id = await runContainer([
    "--name",
    name,
    "--network",
    network,
    "--network-alias",
    alias,
    image,
    "sh",
    "-c",
    `mkdir -p /www && echo ${body} > /www/index.html && echo ok > /www/health && exec httpd -f -p 8080 -h /www`,
  ]);
  ids.push(id);
  return id;
}

/** Runs Debian's HAProxy on the test network with the config in `cfgDir`; returns its host port. */
async function startProxy(name: string, cfgDir: string): Promise<{ proxy: string; port: number }> {
  const proxy = await runContainer([
    "--name",
    name,
    "--network",
    network,
    "-p",
    "127.0.0.1::8080",
    "-v",
    `${cfgDir}:/etc/haproxy:ro`,
    proxyImage,
    "haproxy",
    "-db",
    "-f",
    "/etc/haproxy/haproxy.cfg",
  ]);
  ids.push(proxy);
  return { proxy, port: await publishedPort(proxy, 8080) };
}

async function get(port: number): Promise<{ status: number; body: string }> {
  try {
    const r = await fetch(`http://127.0.0.1:${port}/index.html`, { signal: AbortSignal.timeout(2000) });
    return { status: r.status, body: (await r.text()).trim() };
  } catch (e) {
    return { status: 0, body: String(e) };
  }
}

async function until(port: number, ok: (bodies: string[]) => boolean, what: string): Promise<string[]> {
  let last: string[] = [];
  for (let i = 0; i < 60; i++) {
    last = [];
    for (let j = 0; j < 6; j++) last.push((await get(port)).body);
    if (ok(last)) return last;
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`${what}: last answers ${JSON.stringify(last)}`);
}

test("a real HAProxy routes only to healthy containers through the cutover, and serves maintenance", async () => {
  const blue = await app("blue", true);
  const green = await app("green", false);
  const backends = [
    { name: "blue", host: "app-blue", port: 8080 },
    { name: "green", host: "app-green", port: 8080 },
  ];
  await writeFile(
    join(dir, "haproxy.cfg"),
    haproxyConfig({ listenPort: 8080, healthPath: "/health", backends }),
  );
  await writeFile(join(dir, "maintenance.html"), MAINTENANCE_PAGE);
  const { proxy, port } = await startProxy(`proxy-${suffix}`, dir);

  // Green is up but unhealthy (no /health): it must get no traffic.
  const onlyBlue = await until(port, (b) => b.every((x) => x === "blue"), "blue only");
  assert.deepEqual(onlyBlue, Array(6).fill("blue"));

  // Green turns healthy: both in rotation.
  await run("docker", ["exec", green, "sh", "-c", "echo ok > /www/health"]);
  await until(port, (b) => b.includes("green") && b.includes("blue"), "blue and green");

  // Blue fails its health check (old release drained): only green.
  await run("docker", ["exec", blue, "rm", "/www/health"]);
  await until(port, (b) => b.every((x) => x === "green"), "green only");

  // Nothing healthy: the maintenance page, with a 503.
  await run("docker", ["exec", green, "rm", "/www/health"]);
  await until(
    port,
    (b) => b.every((x) => x.includes("Down for maintenance")),
    "maintenance when none healthy",
  );
  assert.equal((await get(port)).status, 503);

  // Maintenance mode while migrations run, even with a healthy backend.
  await run("docker", ["exec", green, "sh", "-c", "echo ok > /www/health"]);
  await until(port, (b) => b.every((x) => x === "green"), "green back");
  await writeFile(
    join(dir, "haproxy.cfg"),
    haproxyConfig({ listenPort: 8080, healthPath: "/health", backends, maintenance: true }),
  );
  await run("docker", ["restart", "-t", "1", proxy]);
  const port2 = await publishedPort(proxy, 8080);
  await until(port2, (b) => b.every((x) => x.includes("Down for maintenance")), "maintenance mode");
});

test("a backend that stops accepting connections before its health check notices loses no request: retried on another", async () => {
  // Health checks a minute apart: for the whole test HAProxy still counts the stopped backend as up, as
  // it does in the second or two after an old container starts shutting down in a blue-green cutover.
  const serve = (color: string) =>
    runContainer([
      "--name",
      `redis-${color}-${suffix}`,
      "--network",
      network,
      "--network-alias",
      `redisp-${color}`,
      image,
      "sh",
      "-c",
      `mkdir -p /www && echo ${color} > /www/index.html && echo ok > /www/health && (httpd -f -p 8080 -h /www & echo $! > /httpd.pid) && exec sleep 3600`,
    ]);
  const blue = await serve("blue");
  const green = await serve("green");
  ids.push(blue, green);
  const cfg = join(dir, "redispatch");
  await mkdir(cfg, { recursive: true });
  await writeFile(
    join(cfg, "haproxy.cfg"),
    haproxyConfig({
      listenPort: 8080,
      healthPath: "/health",
      checkIntervalMs: 60_000,
      backends: [
        { name: "blue", host: "redisp-blue", port: 8080 },
        { name: "green", host: "redisp-green", port: 8080 },
      ],
    }),
  );
  await writeFile(join(cfg, "maintenance.html"), MAINTENANCE_PAGE);
  const { port } = await startProxy(`proxy-redispatch-${suffix}`, cfg);
  await until(port, (b) => b.includes("green") && b.includes("blue"), "blue and green");
  // Green's server stops (connections refused), the container and its name stay.
  await run("docker", ["exec", green, "sh", "-c", "kill $(cat /httpd.pid)"]);
  const answers: Array<{ status: number; body: string }> = [];
  for (let i = 0; i < 10; i++) answers.push(await get(port));
  assert.deepEqual(
    answers.map((a) => `${a.status} ${a.body}`),
    Array(10).fill("200 blue"),
  );
});

test("the graph's proxy (server-template on one alias) follows releases by Docker DNS with no reload", async () => {
  const alias = `app-shared-${suffix}`;
  const release = (color: string) => healthyApp(`rel-${color}-${suffix}`, alias, color);
  const tdir = await mkdtemp(join(dir, "tpl-"));
  await writeFile(
    join(tdir, "haproxy.cfg"),
    haproxyConfig({
      listenPort: 8080,
      healthPath: "/health",
      backends: [{ name: "app", host: alias, port: 8080, count: 4 }],
    }),
  );
  await writeFile(join(tdir, "maintenance.html"), MAINTENANCE_PAGE);
  const old = await release("old");
  const { proxy, port } = await startProxy(`tproxy-${suffix}`, tdir);
  await until(port, (b) => b.every((x) => x === "old"), "old release served");
  // The new release joins the alias: discovered and health-checked, then in rotation.
  await release("new");
  await until(port, (b) => b.includes("new") && b.includes("old"), "both releases");
  // The old container is removed after cutover: only the new one answers, the proxy never restarted.
  await run("docker", ["rm", "-f", old]);
  await until(port, (b) => b.every((x) => x === "new"), "new release only");
  assert.equal((await run("docker", ["inspect", "-f", "{{.RestartCount}}", proxy])).stdout.trim(), "0");
});

test("maintenance while migrations run: a container carrying the flag alias turns it on, removing it turns it off, no reload", async () => {
  const alias = `app-m-${suffix}`;
  const flag = `maint-${suffix}`;
  await healthyApp(`m-app-${suffix}`, alias, "live");
  const mdir = await mkdtemp(join(dir, "maint-"));
  const cfg = haproxyConfig({
    listenPort: 8080,
    healthPath: "/health",
    backends: [{ name: "app", host: alias, port: 8080, count: 4 }],
    maintenanceFlag: flag,
  });
  assert.match(cfg, new RegExp(`server-template flag 1-1 ${flag}:80 resolvers docker init-addr none`));
  await writeFile(join(mdir, "haproxy.cfg"), cfg);
  await writeFile(join(mdir, "maintenance.html"), MAINTENANCE_PAGE);
  const { proxy, port } = await startProxy(`mproxy-${suffix}`, mdir);
  await until(port, (b) => b.every((x) => x === "live"), "the app, before migrating");
  // what the deploy's maintenance-on command does: a container holding the alias
  const on = await runContainer([
    "--name",
    `m-flag-${suffix}`,
    "--network",
    network,
    "--network-alias",
    flag,
    image,
    "sleep",
    "3600",
  ]);
  ids.push(on);
  await until(port, (b) => b.every((x) => x.includes("Down for maintenance")), "maintenance on");
  assert.equal((await get(port)).status, 503);
  // maintenance-off: the container goes, traffic flows again, and the proxy was never restarted
  await run("docker", ["rm", "-f", on]);
  await until(port, (b) => b.every((x) => x === "live"), "maintenance off");
  const { stdout } = await run("docker", ["inspect", "-f", "{{.RestartCount}} {{.State.StartedAt}}", proxy]);
  assert.match(stdout, /^0 /);
});
