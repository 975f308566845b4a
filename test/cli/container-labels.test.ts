// The labels the CLI finds containers by (src/cli/containers.ts) are the ones the program sets.
import { test } from "node:test";
import assert from "node:assert/strict";
import { loadProgram } from "../helpers/program";

test("every container of the program carries the stack and its role as labels", async () => {
  const { rec } = await loadProgram({
    config: {
      app: {
        image: "safe-deploy-demo-app:staging",
        hostPort: 8080,
        rollout: "blue-green",
        healthcheck: { command: ["CMD", "node", "src/healthcheck.js"] },
      },
      database: { mode: "container", image: "postgres:15", hostPort: 55432 },
      redis: { enabled: true },
      backup: { dir: "./backups/staging" },
      migrations: { tool: "node-pg-migrate", workDir: "examples/app", dir: "migrations" },
    },
    secrets: { dbPassword: "s3cret-Db-Pa55" },
  });
  const containers = rec.resources.filter((r) => r.type === "docker:index/container:Container");
  const roles = Object.fromEntries(
    containers.map((c) => {
      const labels = Object.fromEntries(
        (c.inputs.labels ?? []).map((l: { label: string; value: string }) => [l.label, l.value]),
      );
      assert.equal(labels["safe-deploy.stack"], "staging", `${c.name} has no stack label`);
      return [c.name, labels["safe-deploy.role"]];
    }),
  );
  assert.deepEqual(roles, {
    "staging-app-app": "app",
    "staging-app-proxy": "proxy",
    "staging-database-db": "database",
    "staging-redis-redis": "redis",
  });
});
