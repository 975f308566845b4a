// Issue 17: the program's graph for `app.target: pm2` under setMocks (seed 004: a Node app under pm2,
// here with an external database whose pooled URL the app uses and a direct URL for migrations).
import { before, test } from "node:test";
import assert from "node:assert/strict";
import { resolve } from "node:path";
import { plaintextPart, type RecordedResource } from "../helpers/mocks";
import { loadProgram, valueOf } from "../helpers/program";
import { logCheckCommand, releaseCommand } from "../../src/core/pm2/release";

const POOLED = "postgres://app.abcd:P00led-pw@aws-0-eu-west-1.pooler.supabase.com:6543/postgres";
const DIRECT = "postgres://postgres:D1rect-pw@db.abcd.supabase.co:5432/postgres";
const JWT = "jwt-signing-key-pm2-77";
const COMMIT = "0123456789abcdef0123456789abcdef01234567";
let resources: RecordedResource[];
let byName: (n: string) => RecordedResource;
let program: typeof import("../../src/index");

// The recorder of test/helpers/mocks.ts does not keep customTimeouts: read them off the same requests.
const timeouts: Record<string, { create: string; update: string }> = {};
{
  const { MockMonitor } = require("@pulumi/pulumi/runtime/mocks");
  const original = MockMonitor.prototype.registerResource;
  MockMonitor.prototype.registerResource = function (req: any, callback: any) {
    const t = req.getCustomtimeouts();
    if (t) timeouts[req.getName()] = { create: t.getCreate(), update: t.getUpdate() };
    return original.call(this, req, callback);
  };
}

before(async () => {
  process.env.SAFE_DEPLOY_COMMIT = COMMIT;
  const loaded = await loadProgram({
    config: {
      app: {
        name: "notes",
        target: "pm2",
        port: 3335,
        keepReleases: 3,
        pm2: { root: "/srv/notes", appDir: "examples/app", script: "src/server.js", install: ["npm ci"] },
      },
      database: { mode: "external" },
      migrations: { tool: "node-pg-migrate", workDir: "examples/app", dir: "migrations" },
    },
    secrets: {
      databaseUrl: POOLED,
      migrationDatabaseUrl: DIRECT,
      appSecrets: JSON.stringify({ JWT_SECRET_KEY: JWT }),
    },
  });
  ({ resources, byName } = loaded.rec);
  program = loaded.program;
});

test("the pm2 graph: the same gates, no Docker resource, pm2 release and log check instead of a container", () => {
  assert.deepEqual(resources.map((r) => `${r.type} ${r.name}`).sort(), [
    "command:local:Command staging-app-release",
    "command:local:Command staging-migration-migrate",
    "command:local:Command staging-pm2-logs",
    "pulumi-nodejs:dynamic/safe-deploy:Backup staging-backup",
    "pulumi-nodejs:dynamic/safe-deploy:HealthGate staging-health",
    "safe-deploy:database:Database staging-database",
    "safe-deploy:deployment:Deployment staging",
    "safe-deploy:migration:Migration staging-migration",
    "safe-deploy:pm2:Pm2App staging-app",
  ]);
});

test("order: backup -> migration -> pm2 release -> health gate -> pm2 log check", () => {
  const dep = (a: string, b: string) =>
    assert.ok(byName(a).dependencies.includes(byName(b).urn), `${a} depends on ${b}`);
  dep("staging-migration-migrate", "staging-backup");
  dep("staging-app-release", "staging-migration-migrate");
  dep("staging-health", "staging-app-release");
  dep("staging-pm2-logs", "staging-health");
});

test("the release command is the one src/core/pm2 builds for this commit; the gate polls the app's port", () => {
  const cmd = byName("staging-app-release").inputs.create;
  assert.equal(
    cmd,
    releaseCommand({
      root: "/srv/notes",
      commit: COMMIT,
      appName: "notes",
      repoDir: resolve(__dirname, "../.."),
      appDir: "examples/app",
      install: ["npm ci"],
      script: "src/server.js",
      execMode: "cluster",
      instances: 2,
      bin: "pm2",
      keepReleases: 3,
    }),
  );
  assert.match(cmd, /pm2 startOrReload/);
  // A hung install fails the deploy at app.pm2.timeoutSeconds (default 30 min).
  assert.deepEqual(timeouts["staging-app-release"], { create: "1800s", update: "1800s" });
  assert.equal(byName("staging-health").inputs.url, "http://127.0.0.1:3335/health");
  assert.equal(
    byName("staging-pm2-logs").inputs.create,
    logCheckCommand({ appName: "notes", bin: "pm2" }, 200),
  );
});

test("secrets: the app gets the pooled URL through the environment; migrations and backup the direct one; nothing in plaintext", () => {
  const env = JSON.parse(byName("staging-app-release").inputs.environment.SAFE_DEPLOY_APP_ENV);
  assert.equal(env.DATABASE_URL, POOLED);
  assert.equal(env.JWT_SECRET_KEY, JWT);
  assert.equal(env.PORT, "3335");
  assert.equal(byName("staging-migration-migrate").inputs.environment.DATABASE_URL, DIRECT);
  assert.equal(byName("staging-backup").inputs.databaseUrl, DIRECT);
  for (const r of resources) {
    const plain = JSON.stringify(plaintextPart(r.wireInputs));
    for (const s of ["P00led-pw", "D1rect-pw", JWT]) assert.ok(!plain.includes(s), `${s} in ${r.name}`);
  }
});

test("outputs: the app URL once the gate passed; the release is identified by its commit", async () => {
  assert.equal(await valueOf(program.url), "http://127.0.0.1:3335");
  assert.equal(await valueOf(program.imageId), `git:${COMMIT}`);
  assert.deepEqual(await valueOf(program.containers), {});
});
