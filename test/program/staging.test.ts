import { before, test } from "node:test";
import assert from "node:assert/strict";
import { plaintextPart, type RecordedResource } from "../helpers/mocks";
import { loadProgram, valueOf } from "../helpers/program";

const DB_PASSWORD = "s3cret-Db-Pa55";
const JWT = "jwt-signing-key-9f8e7d";
let resources: RecordedResource[];
let byName: (n: string) => RecordedResource;
let program: typeof import("../../src/index");

before(async () => {
  const loaded = await loadProgram({
    config: {
      app: { image: "safe-deploy-demo-app:staging", hostPort: 8080, environment: { NODE_ENV: "production" } },
      database: { mode: "container", image: "postgres:15", hostPort: 55432 },
      backup: { dir: "./backups/staging" },
      migrations: { tool: "node-pg-migrate", workDir: "examples/app", dir: "migrations" },
      integrity: { criticalTables: ["notes"] },
    },
    secrets: { dbPassword: DB_PASSWORD, appSecrets: JSON.stringify({ JWT_SECRET_KEY: JWT }) },
  });
  resources = loaded.rec.resources;
  byName = loaded.rec.byName;
  program = loaded.program;
});

test("the graph has exactly the resources of docs/architecture.md, with types and names derived from the stack", () => {
  const got = resources.map((r) => `${r.type} ${r.name}`).sort();
  assert.deepEqual(got, [
    "command:local:Command staging-database-app-role-setup",
    "command:local:Command staging-database-image-pin",
    "command:local:Command staging-migration-migrate",
    "docker:index/container:Container staging-app-app",
    "docker:index/container:Container staging-database-db",
    "docker:index/network:Network staging-net",
    "docker:index/remoteImage:RemoteImage staging-app-image",
    "docker:index/remoteImage:RemoteImage staging-database-image",
    "docker:index/volume:Volume staging-database-data",
    "pulumi-nodejs:dynamic/safe-deploy:Backup staging-backup",
    "pulumi-nodejs:dynamic/safe-deploy:HealthGate staging-health",
    "pulumi:providers:docker staging-docker",
    "safe-deploy:app:App staging-app",
    "safe-deploy:database:AppRole staging-database-app-role",
    "safe-deploy:database:Database staging-database",
    "safe-deploy:deployment:Deployment staging",
    "safe-deploy:migration:Migration staging-migration",
  ]);
});

test("order: database -> backup -> migration -> app -> health gate", () => {
  const dependsOn = (a: string, b: string) =>
    assert.ok(byName(a).dependencies.includes(byName(b).urn), `${a} must depend on ${b}`);
  dependsOn("staging-backup", "staging-database-db");
  dependsOn("staging-backup", "staging-app-image");
  dependsOn("staging-migration-migrate", "staging-backup");
  dependsOn("staging-app-app", "staging-migration-migrate");
  dependsOn("staging-health", "staging-app-app");
  // and never the other way round
  assert.ok(!byName("staging-backup").dependencies.includes(byName("staging-migration-migrate").urn));
});

test("the migration re-runs per release: triggers are the migrations checksum and the backup id", () => {
  const m = byName("staging-migration-migrate").inputs;
  // Local mode runs the tool through `safe-deploy migrate up`: lock, versions, integrity check.
  // Paths relative to the project root, output only to the log (issue 14: migration-output, checkout-paths).
  assert.match(
    m.create,
    /^\( \.\.\/\.\.\/bin\/safe-deploy migrate up --tool node-pg-migrate --dir migrations --work-dir \. --lock-timeout 5s --statement-timeout 15min --critical-tables notes --max-row-loss-percent 0 \) >>"\$log" 2>&1$/m,
  );
  assert.equal(m.environment.PGOPTIONS, "-c lock_timeout=5s -c statement_timeout=15min");
  assert.equal(m.dir, "examples/app");
  assert.equal(m.logging, "none");
  assert.deepEqual(m.triggers, [program.migrationsChecksum, "staging-backup-id"]);
  assert.match(m.triggers[0], /^[0-9a-f]{64}$/);
  assert.deepEqual(byName("staging-migration-migrate").additionalSecretOutputs.sort(), ["stderr", "stdout"]);
});

test("containers: fixed names replaced delete-first, app pinned to the image id, db on the network", () => {
  const app = byName("staging-app-app");
  const db = byName("staging-database-db");
  assert.equal(app.deleteBeforeReplace, true);
  assert.equal(db.deleteBeforeReplace, true);
  assert.match(app.inputs.image, /^sha256:[0-9a-f]{64}$/);
  assert.deepEqual(app.inputs.ports, [{ internal: 3000, external: 8080, ip: "127.0.0.1" }]);
  assert.deepEqual(db.inputs.ports, [{ internal: 5432, external: 55432, ip: "127.0.0.1" }]);
  assert.deepEqual(db.inputs.networksAdvanced[0].aliases, ["db"]);
  assert.equal(db.inputs.wait, true);
  // recreate without a configured healthcheck: no wait, the HealthGate decides
  assert.equal(app.inputs.wait, false);
  assert.equal(app.inputs.labels.find((l: any) => l.label === "safe-deploy.rollout").value, "recreate");
  const envs: string[] = app.inputs.envs;
  assert.ok(envs.includes("NODE_ENV=production") && envs.includes("PORT=3000"));
  assert.ok(envs.some((e) => e.startsWith("DATABASE_URL=postgres://app_rw:") && e.endsWith("@db:5432/app")));
});

test("backup and gate get the right inputs; the gate re-runs whenever the container or image changes", () => {
  const b = byName("staging-backup").inputs;
  assert.equal(b.runIn, "local");
  assert.equal(b.label, "pre-deploy");
  assert.match(b.dir, /\/backups\/staging$/);
  assert.match(b.releaseKey, /^[0-9a-f]{16}$/);
  assert.match(b.databaseUrl, /^postgres:\/\/app:.+@127\.0\.0\.1:55432\/app$/);
  const g = byName("staging-health").inputs;
  assert.equal(g.url, "http://127.0.0.1:8080/health");
  assert.equal(g.retries, 3);
  assert.equal(g.delaySeconds, 10);
  assert.deepEqual(Object.keys(g.triggers).sort(), ["containerId", "imageId"]);
  assert.equal(g.container.name, byName("staging-app-app").inputs.name ?? "staging-app-app-1234567");
});

test("stack outputs are only known once the health gate passed", async () => {
  assert.equal(await valueOf(program.url), "http://127.0.0.1:8080");
  assert.equal(await valueOf(program.healthCheckedAt), "2026-11-23T00:00:00.000Z");
  assert.match(await valueOf(program.backupFile), /pre-deploy/);
});

test("the containers output names the database and app containers (status and rollback find them)", async () => {
  const names = await valueOf(program.containers);
  assert.deepEqual(Object.keys(names).sort(), ["app", "database"]);
  assert.match(names.database, /^staging-database-db/);
  assert.match(names.app, /app/);
});

test("no secret reaches any resource input in plaintext (state, __provider text, command strings)", () => {
  const encoded = encodeURIComponent(DB_PASSWORD);
  for (const r of resources) {
    const plain = JSON.stringify(plaintextPart(r.wireInputs));
    for (const s of [DB_PASSWORD, encoded, JWT]) {
      assert.ok(!plain.includes(s), `${r.name} holds a secret in plaintext`);
    }
  }
  // and they are really there, wrapped as secrets, where they are needed
  assert.ok(JSON.stringify(byName("staging-app-app").wireInputs).includes(JWT));
  assert.ok(JSON.stringify(byName("staging-backup").wireInputs).includes(encoded));
});
