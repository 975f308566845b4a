import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { get } from "node:http";
import { runGate } from "../../../src/core/health/run";
import { haproxyConfig } from "../../../src/core/rollout/haproxy";
import { SWARM_PROXY_PAGE, swarmProxySpec, swarmServiceSpec } from "../../../src/core/swarm/spec";
import { RUN_ID } from "../../helpers/docker";
import { ensureBusyboxImage, ensureHaproxyImage } from "../../helpers/health-image";
import { freePort } from "../../helpers/postgres";
import { applyService, createOverlay, ensureSwarm, removeServices, updateState } from "../../helpers/swarm";
import { execFile } from "node:child_process";
import { promisify } from "node:util";

const run = promisify(execFile);

// A real single-node swarm: the service spec the program declares, handed to Docker by the provider
// stand-in (test/helpers/swarm.ts), then the gate's checks (engine code) run for real. Published in
// host mode through the per-node proxy: the routing mesh does not answer on these VMs.
const svc = `sd-swarm-${RUN_ID}`.toLowerCase().replace(/[^a-z0-9-]/g, "-");
const net = `${svc}-net`;
let busybox: string;
let hostPort: number;
const url = () => `http://127.0.0.1:${hostPort}/health`;

// `ok`: ready and /health answers; `unhealthy`: never passes the Docker healthcheck; `broken`: passes
// it but /health is missing (only the HTTP gate sees it).
const SCRIPT =
  'mkdir -p /www && if [ "$MODE" != unhealthy ]; then touch /www/ready; fi && ' +
  'if [ "$MODE" = ok ]; then echo "$APP_VERSION" > /www/health; fi && exec httpd -f -p 8080 -h /www';

function appSpec(release: string, replicas = 2) {
  const spec = swarmServiceSpec({
    name: svc,
    image: busybox,
    port: 8080,
    hostPort,
    replicas,
    network: net,
    release,
    healthcheck: {
      command: ["CMD-SHELL", "test -f /www/ready"],
      intervalSeconds: 1,
      timeoutSeconds: 1,
      retries: 2,
      startPeriodSeconds: 0,
    },
    swarm: {
      publishMode: "host",
      constraints: ["node.role==manager"],
      maxReplicasPerNode: 0,
      limits: { cpus: 0.2, memoryMb: 64 },
      parallelism: 1,
      monitorSeconds: 3,
    },
  });
  // The demo image has no CMD of its own: the test's release behaviour comes in as the command.
  return {
    ...spec,
    taskSpec: {
      ...spec.taskSpec,
      containerSpec: { ...spec.taskSpec.containerSpec, commands: ["/bin/sh", "-c", SCRIPT] },
    },
  };
}

const deploy = (release: string, mode: string, replicas = 2) =>
  applyService(appSpec(release, replicas), { APP_VERSION: release, MODE: mode });

const gate = (release: string, replicas: number, retries: number) =>
  runGate({
    url: url(),
    retries,
    delaySeconds: 1,
    timeoutSeconds: 2,
    successThreshold: 2,
    service: { service: svc, release, replicas },
  });

const msg = (r: Awaited<ReturnType<typeof runGate>>) => (r.ok ? "passed" : r.message);

function body(): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    get(url(), { timeout: 3000 }, (res) => {
      let text = "";
      res.on("data", (d) => (text += d));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, text: text.trim() }));
    }).on("error", reject);
  });
}

async function waitUpdate(states: string[]): Promise<string> {
  for (let i = 0; i < 240; i++) {
    const s = await updateState(svc);
    if (states.includes(s)) return s;
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`service ${svc} never reached ${states.join("|")} (now ${await updateState(svc)})`);
}

before(async () => {
  await ensureSwarm();
  busybox = await ensureBusyboxImage();
  const haproxy = await ensureHaproxyImage();
  hostPort = await freePort();
  await createOverlay(net);
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
});

after(async () => {
  await removeServices([svc, `${svc}-proxy`]);
  await run("docker", ["network", "rm", net]).catch(() => undefined);
});

test("2 replicas deploy: the gate passes once both tasks of the release run and the address answers", async () => {
  await deploy("r1", "ok");
  const r = await gate("r1", 2, 60);
  assert.ok(r.ok, msg(r));
  assert.deepEqual(await body(), { status: 200, text: "r1" });
  const { stdout } = await run("docker", ["service", "ps", "--filter", "desired-state=running", "-q", svc]);
  assert.equal(stdout.trim().split("\n").length, 2);
});

test("a release failing the Docker healthcheck: Swarm rolls back, the gate fails and says so", async () => {
  await deploy("r2", "unhealthy");
  assert.equal(await waitUpdate(["rollback_completed", "completed"]), "rollback_completed");
  const r = await gate("r2", 2, 30);
  assert.equal(r.ok, false);
  assert.equal(r.attempts.length, 1, "a rolled-back update fails the gate at once, no retries");
  assert.match(msg(r), /Swarm rolled the update back \(UpdateStatus rollback_completed/);
  // The previous release kept serving.
  assert.deepEqual(await body(), { status: 200, text: "r1" });
});

test("a release healthy to Docker but failing the HTTP gate: the gate fails, re-applying the previous release restores it", async () => {
  await deploy("r3", "broken");
  assert.equal(await waitUpdate(["completed", "rollback_completed"]), "completed");
  const bad = await gate("r3", 2, 3);
  assert.equal(bad.ok, false);
  assert.match(msg(bad), /503|404/);
  // Our rollback: the previous release's spec applied again (what `safe-deploy rollback` re-applies).
  await deploy("r1", "ok");
  const good = await gate("r1", 2, 60);
  assert.ok(good.ok, msg(good));
  assert.deepEqual(await body(), { status: 200, text: "r1" });
});

test("scaling 2 -> 3 replicas serves every request meanwhile", async (t) => {
  const failures: string[] = [];
  let served = 0;
  let stop = false;
  const loop = (async () => {
    for (let i = 0; i < 2000 && !stop; i++) {
      try {
        const b = await body();
        if (b.status !== 200 || b.text !== "r1") failures.push(`${b.status} ${b.text.slice(0, 40)}`);
      } catch (e) {
        failures.push((e as Error).message);
      }
      served++;
    }
  })();
  await deploy("r1", "ok", 3);
  const r = await gate("r1", 3, 60);
  stop = true;
  await loop;
  assert.ok(r.ok, msg(r));
  t.diagnostic(`${served} requests during the scale-up, ${failures.length} failed`);
  assert.ok(served > 10, `only ${served} requests went out`);
  assert.deepEqual(failures, []);
});
