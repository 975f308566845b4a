import { before, test } from "node:test";
import assert from "node:assert/strict";
import { resolve } from "node:path";
import { plaintextPart, type RecordedResource } from "../helpers/mocks";
import { loadProgram, valueOf } from "../helpers/program";

const DB_PASSWORD = "prod-Pa55-w0rd";
const BACKUP_KEY = "0f".repeat(32);
let resources: RecordedResource[];
let byName: (n: string) => RecordedResource;
let program: typeof import("../../src/index");

// The shape of Pulumi.production.yaml: a remote Docker host, so dumps and migrations run in containers.
before(async () => {
  const loaded = await loadProgram({
    stack: "production",
    config: {
      docker: { host: "ssh://deploy@app.example.com" },
      // Pinned by digest, as in Pulumi.production.yaml: nothing to ask the (unreachable) SSH host.
      app: { image: `ghcr.io/example/web@sha256:${"0".repeat(64)}` },
      redis: { enabled: true },
      backup: {
        runIn: "container",
        s3: { bucket: "example-app-backups", region: "eu-west-1", manageBucket: true },
      },
      migrations: { runIn: "container", workDir: "/app", dir: "migrations" },
      health: { url: "https://app.example.com/health", retries: 5 },
    },
    secrets: { dbPassword: DB_PASSWORD, backupEncryptionKey: BACKUP_KEY },
  });
  ({ resources, byName } = loaded.rec);
  program = loaded.program;
});

test("the Docker provider points at the SSH host and Redis joins the graph", () => {
  assert.equal(byName("production-docker").inputs.host, "ssh://deploy@app.example.com");
  assert.ok(byName("production-redis-redis").type === "docker:index/container:Container");
  const envs: string[] = byName("production-app-app").inputs.envs;
  assert.ok(envs.includes("REDIS_URL=redis://redis:6379"));
  // An app that connects at start-up must not start before the container its REDIS_URL names.
  assert.ok(byName("production-app-app").dependencies.includes(byName("production-redis-redis").urn));
});

test("the backup runs inside the database container with the container's own URL", () => {
  const b = byName("production-backup").inputs;
  assert.equal(b.runIn, "container");
  assert.equal(b.container, byName("production-database-db").inputs.name ?? "production-database-db-1234567");
  assert.match(b.databaseUrl, /@127\.0\.0\.1:5432\/app$/);
  assert.equal(b.dockerHost, "ssh://deploy@app.example.com");
  assert.equal(b.s3.bucket, "example-app-backups");
});

test("the production stack declares its off-site bucket: versioned, encrypted, private, 30-day expiry", () => {
  const bucket = byName("production-backups");
  assert.equal(bucket.type, "aws:s3/bucket:Bucket");
  assert.equal(bucket.inputs.bucket, "example-app-backups");
  const byType = (t: string) => resources.filter((r) => r.type === t);
  assert.equal(
    byType("aws:s3/bucketVersioning:BucketVersioning")[0].inputs.versioningConfiguration.status,
    "Enabled",
  );
  assert.equal(
    byType("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")[0].inputs.blockPublicAcls,
    true,
  );
  assert.equal(
    byType("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration").length,
    1,
  );
  const lifecycle = byType("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration")[0];
  assert.match(JSON.stringify(lifecycle.inputs.rules), /"days":30/);
  // Only the backups expire: the release history kept in the same bucket (docs/ci-cd.md) stays.
  assert.deepEqual(
    lifecycle.inputs.rules.map((r: { filter: { prefix: string } }) => r.filter.prefix),
    ["safe-deploy/"],
  );
  assert.equal(byName("production-aws").inputs.region, "eu-west-1");
  const backup = byName("production-backup");
  assert.ok(backup.dependencies.includes(lifecycle.urn), "backups only once the bucket is set up");
  assert.equal(backup.inputs.s3.bucket, "example-app-backups");
  assert.equal(backup.inputs.encryptionKey, BACKUP_KEY);
});

test("migrations run in a one-off container of the new image; the URL only in the environment", () => {
  const m = byName("production-migration-migrate").inputs;
  assert.match(
    m.create,
    /^\( docker run --rm .*--network "\$SAFE_DEPLOY_NETWORK" -e DATABASE_URL -e PGOPTIONS -e PGAPPNAME -w \/app "\$SAFE_DEPLOY_IMAGE"/m,
  );
  assert.ok(!m.create.includes("postgres://"));
  assert.equal(m.environment.DOCKER_HOST, "ssh://deploy@app.example.com");
  assert.equal(m.environment.SAFE_DEPLOY_IMAGE, byName("production-app-app").inputs.image);
  assert.match(m.environment.DATABASE_URL, /^postgres:\/\/app:.+@db:5432\/app$/);
  assert.equal(m.dir, undefined);
});

test("the gate polls the public URL with the stack's retries", async () => {
  const g = byName("production-health").inputs;
  assert.equal(g.url, "https://app.example.com/health");
  assert.equal(g.retries, 5);
  assert.equal(await valueOf(program.url), "https://app.example.com/health");
});

test("no plaintext secret in any input", () => {
  for (const r of resources) {
    const plain = JSON.stringify(plaintextPart(r.wireInputs));
    assert.ok(!plain.includes(DB_PASSWORD) && !plain.includes(encodeURIComponent(DB_PASSWORD)), r.name);
    assert.ok(!plain.includes(BACKUP_KEY), `${r.name} holds the backup encryption key`);
  }
});

test("containers output names database, app and redis; the backup dir is the project's, per stack", async () => {
  const names = await valueOf(program.containers);
  assert.deepEqual(Object.keys(names).sort(), ["app", "database", "redis"]);
  assert.equal(byName("production-backup").inputs.dir, resolve(__dirname, "../../backups/production"));
});
