import { before, test } from "node:test";
import assert from "node:assert/strict";
import type { RecordedResource } from "../helpers/mocks";
import { plaintextPart } from "../helpers/mocks";
import { loadProgram } from "../helpers/program";

let byName: (n: string) => RecordedResource;
let resources: RecordedResource[];

// app.target: swarm (issue 18) — the service spec the real-swarm tests (test/core/swarm) hand to Docker.
before(async () => {
  const loaded = await loadProgram({
    config: {
      app: {
        image: "web:2",
        target: "swarm",
        replicas: 3,
        hostPort: 8080,
        healthcheck: { command: ["CMD", "node", "src/healthcheck.js"], retries: 4 },
        swarm: {
          publishMode: "host",
          constraints: ["node.labels.app==true"],
          maxReplicasPerNode: 2,
          limits: { cpus: 0.5, memoryMb: 512 },
          monitorSeconds: 20,
        },
      },
      migrations: { tool: "node-pg-migrate", workDir: "/app", dir: "migrations", runIn: "container" },
    },
    secrets: { dbPassword: "pw-swarm-secret" },
  });
  ({ byName, resources } = loaded.rec);
});

const service = () =>
  resources.find((r) => r.type === "docker:index/service:Service" && r.name === "staging-app-service")!;

test("the app is a replicated Swarm service rolled start-first with the Docker healthcheck and Swarm's rollback", () => {
  const s = service().inputs;
  assert.equal(s.name, "staging-app");
  assert.deepEqual(s.mode, { replicated: { replicas: 3 } });
  assert.deepEqual(s.updateConfig, {
    parallelism: 1,
    order: "start-first",
    failureAction: "rollback",
    monitor: "20s",
    maxFailureRatio: "0",
    delay: "0s",
  });
  assert.equal(s.rollbackConfig.order, "start-first");
  const c = s.taskSpec.containerSpec;
  assert.equal(c.image, "web:2");
  assert.deepEqual(c.healthcheck, {
    tests: ["CMD", "node", "src/healthcheck.js"],
    interval: "5s",
    timeout: "5s",
    retries: 4,
    startPeriod: "10s",
  });
  assert.ok(s.convergeConfig.timeout, "the provider waits for convergence (and fails on Swarm's rollback)");
});

test("placement constraints, tasks per node and resource limits come from app.swarm", () => {
  const t = service().inputs.taskSpec;
  assert.deepEqual(t.placement, { constraints: ["node.labels.app==true"], maxReplicas: 2 });
  assert.deepEqual(t.resources, { limits: { nanoCpus: 500_000_000, memoryBytes: 512 * 1024 * 1024 } });
});

test("every task carries the release label and APP_VERSION; the environment (DATABASE_URL) stays secret", () => {
  const c = service().inputs.taskSpec.containerSpec;
  const release = c.labels.find((l: { label: string }) => l.label === "safe-deploy.release").value;
  assert.match(release, /^[0-9a-f]/);
  assert.equal(c.env.APP_VERSION, release);
  assert.match(c.env.DATABASE_URL, /^postgres(ql)?:\/\//);
  assert.doesNotMatch(JSON.stringify(plaintextPart(service().wireInputs)), /pw-swarm-secret/);
  assert.deepEqual(service().additionalSecretOutputs, ["taskSpec"]);
});

test("host publishing: no routing mesh on the app; a global proxy service publishes the port in host mode", () => {
  assert.deepEqual(service().inputs.endpointSpec.ports ?? [], []);
  const p = byName("staging-app-proxy").inputs;
  assert.deepEqual(p.mode, { global: true });
  assert.deepEqual(p.endpointSpec.ports, [
    { targetPort: 8080, publishedPort: 8080, publishMode: "host", protocol: "tcp" },
  ]);
  assert.match(p.taskSpec.containerSpec.env.HAPROXY_CFG, /server-template app 1-8 tasks\.staging-app:3000/);
});

test("the network is an attachable overlay, so the database and migration containers join the service's tasks", () => {
  const n = byName("staging-net").inputs;
  assert.equal(n.driver, "overlay");
  assert.equal(n.attachable, true);
  assert.deepEqual(service().inputs.taskSpec.networksAdvanceds[0].aliases, ["app"]);
});

test("the migration runs once, in a container of the new image, before the service update", () => {
  const m = byName("staging-migration-migrate");
  assert.ok(service().dependencies.includes(m.urn), "the service waits for the migration");
  assert.match(m.inputs.create, /docker run/);
  assert.equal(
    resources.filter((r) => r.type === "docker:index/container:Container" && r.name.startsWith("staging-app"))
      .length,
    0,
  );
});

test("the gate checks the service's tasks (this release, Swarm not rolled back) and the service's address", () => {
  const g = byName("staging-health");
  assert.equal(g.inputs.url, "http://127.0.0.1:8080/health");
  assert.equal(g.inputs.container, undefined);
  assert.equal(g.inputs.service.service, "staging-app");
  assert.equal(g.inputs.service.replicas, 3);
  const release = service().inputs.taskSpec.containerSpec.labels.find(
    (l: { label: string }) => l.label === "safe-deploy.release",
  ).value;
  assert.equal(g.inputs.service.release, release);
  assert.ok(g.dependencies.includes(service().urn));
});

test("the containers output (what `safe-deploy status` inspects as containers) holds no Swarm service", async () => {
  const { valueOf } = await import("../helpers/program");
  const { containers } = await import("../../src/index");
  const names = await valueOf(containers as import("@pulumi/pulumi").Output<Record<string, string>>);
  assert.deepEqual(Object.keys(names), ["database"]);
});
