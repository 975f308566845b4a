// Issue 17: the program's graph for `app.target: render` with an external database (seed 000: Render +
// Supabase) under setMocks.
import { before, test } from "node:test";
import assert from "node:assert/strict";
import { plaintextPart, type RecordedResource } from "../helpers/mocks";
import { loadProgram, valueOf } from "../helpers/program";
import { callSerializedProvider } from "../helpers/provider";

const POOLED = "postgres://app.abcd:P00led-pw@aws-0-eu-west-1.pooler.supabase.com:6543/postgres";
const DIRECT = "postgres://postgres:D1rect-pw@db.abcd.supabase.co:5432/postgres";
const KEY = "rnd_Pr0gramKey42";
const COMMIT = "fedcba9876543210fedcba9876543210fedcba98";
let resources: RecordedResource[];
let byName: (n: string) => RecordedResource;
let program: typeof import("../../src/index");

before(async () => {
  process.env.SAFE_DEPLOY_COMMIT = COMMIT;
  const loaded = await loadProgram({
    config: {
      app: { target: "render", render: { serviceId: "srv-abc123" } },
      database: { mode: "external" },
      health: { url: "https://notes.onrender.com/health" },
    },
    secrets: { databaseUrl: POOLED, migrationDatabaseUrl: DIRECT, renderApiKey: KEY },
  });
  ({ resources, byName } = loaded.rec);
  program = loaded.program;
});

test("the render graph: backup, migration, RenderDeploy, health gate on the public URL; nothing of Docker", () => {
  assert.deepEqual(resources.map((r) => `${r.type} ${r.name}`).sort(), [
    "command:local:Command staging-migration-migrate",
    "pulumi-nodejs:dynamic/safe-deploy:Backup staging-backup",
    "pulumi-nodejs:dynamic/safe-deploy:HealthGate staging-health",
    "pulumi-nodejs:dynamic/safe-deploy:RenderDeploy staging-app-deploy",
    "safe-deploy:database:Database staging-database",
    "safe-deploy:deployment:Deployment staging",
    "safe-deploy:migration:Migration staging-migration",
    "safe-deploy:render:RenderApp staging-app",
  ]);
  const dep = (a: string, b: string) =>
    assert.ok(byName(a).dependencies.includes(byName(b).urn), `${a} depends on ${b}`);
  dep("staging-migration-migrate", "staging-backup");
  dep("staging-app-deploy", "staging-migration-migrate");
  dep("staging-health", "staging-app-deploy");
  assert.equal(byName("staging-health").inputs.url, "https://notes.onrender.com/health");
});

test("the deploy is of this commit on the configured service; migrations and backup use the direct URL", () => {
  const d = byName("staging-app-deploy").inputs;
  assert.equal(d.serviceId, "srv-abc123");
  assert.equal(d.commit, COMMIT);
  assert.equal(d.apiUrl, "https://api.render.com");
  assert.equal(d.timeoutSeconds, 900);
  assert.equal(byName("staging-migration-migrate").inputs.environment.DATABASE_URL, DIRECT);
  assert.equal(byName("staging-backup").inputs.databaseUrl, DIRECT);
});

test("the API key and database passwords are secret on the wire and not captured in __provider", () => {
  for (const r of resources) {
    const plain = JSON.stringify(plaintextPart(r.wireInputs));
    for (const s of [KEY, "P00led-pw", "D1rect-pw"]) assert.ok(!plain.includes(s), `${s} in ${r.name}`);
  }
  assert.ok(byName("staging-app-deploy").additionalSecretOutputs.includes("apiKey"));
});

test("the provider's check accepts the program's inputs through Pulumi's provider host", async () => {
  const { __provider: text, ...inputs } = byName("staging-app-deploy").inputs;
  const { deployId: _d, previousDeployId: _p, previousCommit: _c, ...rest } = inputs;
  const r = await callSerializedProvider(text, "check", [{}, rest]);
  assert.deepEqual(r.failures, []);
});

test("the stack's url is the public health URL, known once the gate passed", async () => {
  assert.equal(await valueOf(program.url), "https://notes.onrender.com/health");
  assert.equal(await valueOf(program.imageId), `git:${COMMIT}`);
});
