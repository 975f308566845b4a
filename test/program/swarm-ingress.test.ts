import { before, test } from "node:test";
import assert from "node:assert/strict";
import { parseStackConfig } from "../../src/config";
import type { ConfigError } from "../../src/core/errors";
import type { RecordedResource } from "../helpers/mocks";
import { loadProgram } from "../helpers/program";

let resources: RecordedResource[];

// app.target: swarm with the default `publishMode: ingress` (what multi-node users want).
before(async () => {
  const loaded = await loadProgram({
    config: {
      app: {
        image: "registry.example.com/acme/web:2",
        target: "swarm",
        replicas: 2,
        hostPort: 8081,
        healthcheck: { command: ["CMD", "node", "src/healthcheck.js"] },
      },
      migrations: { tool: "node-pg-migrate", workDir: "/app", dir: "migrations", runIn: "container" },
    },
    secrets: { dbPassword: "pw" },
  });
  ({ resources } = loaded.rec);
});

test("ingress: the routing mesh publishes app.hostPort on every node; no proxy service", () => {
  const services = resources.filter((r) => r.type === "docker:index/service:Service");
  assert.deepEqual(
    services.map((s) => s.name),
    ["staging-app-service"],
  );
  assert.deepEqual(services[0].inputs.endpointSpec, {
    mode: "vip",
    ports: [{ targetPort: 3000, publishedPort: 8081, publishMode: "ingress", protocol: "tcp" }],
  });
  assert.equal(services[0].inputs.taskSpec.resources, undefined, "no limits unless app.swarm.limits");
});

const problems = (
  app: Record<string, unknown>,
  migrations: Record<string, unknown> = { runIn: "container" },
) => {
  try {
    parseStackConfig({
      app: { image: "web:1", target: "swarm", ...app },
      migrations: { tool: "node-pg-migrate", dir: "migrations", ...migrations },
      secretsSet: ["dbPassword"],
    });
    return [];
  } catch (e) {
    return (e as ConfigError).problems;
  }
};

test("config: swarm needs a Docker healthcheck, container migrations, no blue-green, valid swarm keys", () => {
  const hc = { command: ["CMD", "true"] };
  assert.ok(problems({}).some((p) => /app\.healthcheck.*"swarm"/.test(p)));
  assert.ok(
    problems({ healthcheck: hc }, { runIn: "local" }).some((p) => /migrations\.runIn.*"container"/.test(p)),
  );
  assert.ok(
    problems({ healthcheck: hc, rollout: "blue-green" }).some((p) => /app\.rollout.*conflicts/.test(p)),
  );
  assert.ok(
    problems({ healthcheck: hc, swarm: { publishMode: "mesh" } }).some((p) =>
      /app\.swarm\.publishMode/.test(p),
    ),
  );
  assert.ok(
    problems({ healthcheck: hc, swarm: { constraints: ["rm -rf"] } }).some((p) => /constraints/.test(p)),
  );
  assert.deepEqual(problems({ healthcheck: hc, replicas: 4 }), []);
});
