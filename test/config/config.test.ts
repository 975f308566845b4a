import { test } from "node:test";
import assert from "node:assert/strict";
import { ConfigError } from "../../src/core/errors";
import { parseStackConfig } from "../../src/config";

const minimal = { app: { image: "web:1" }, secretsSet: ["dbPassword"] };
const problemsOf = (raw: unknown): string[] => {
  try {
    parseStackConfig(raw, "staging");
  } catch (e) {
    assert.ok(e instanceof ConfigError);
    assert.equal(e.exitCode, 2);
    return e.problems;
  }
  assert.fail("expected a ConfigError");
};

test("defaults follow the users' scripts: 3 retries 10 s apart, 7 days of backups, 3 kept at least", () => {
  const c = parseStackConfig(minimal);
  assert.equal(c.health.retries, 3);
  assert.equal(c.health.delaySeconds, 10);
  assert.deepEqual(c.health.expectStatus, [200]);
  assert.equal(c.health.path, "/health");
  assert.equal(c.backup.retentionDays, 7);
  assert.equal(c.backup.minKeep, 3);
  assert.equal(c.backup.compression, "zstd");
  assert.equal(c.database.mode, "container");
  assert.equal(c.docker.host, "unix:///var/run/docker.sock");
  assert.equal(c.redis.enabled, false);
  assert.equal(c.rollback.auto, true);
  assert.equal(c.migrations.tool, "node-pg-migrate");
});

test("explicit values win over defaults", () => {
  const c = parseStackConfig({
    ...minimal,
    health: { retries: 15, delaySeconds: 2, expectStatus: [200, 204] },
    backup: { compression: "gzip", s3: { bucket: "my-backups", endpoint: "https://s3.filebase.com" } },
  });
  assert.equal(c.health.retries, 15);
  assert.deepEqual(c.health.expectStatus, [200, 204]);
  assert.equal(c.backup.compression, "gzip");
  assert.equal(c.backup.s3?.prefix, "safe-deploy/");
  assert.equal(c.backup.s3?.region, "us-east-1");
});

// Each row: raw config -> the problems expected, by key path (the rule follows the colon).
const cases: Array<[string, unknown, string[]]> = [
  ["missing app image", { secretsSet: ["dbPassword"] }, ["app.image"]],
  [
    "port out of range",
    { ...minimal, app: { image: "w", port: 0, hostPort: 70000 } },
    ["app.port", "app.hostPort"],
  ],
  ["typo in a section key", { ...minimal, app: { image: "w", imgae: "x" } }, ["app.imgae"]],
  ["typo in a top-level key", { ...minimal, helth: {} }, ["helth"]],
  ["unknown compression", { ...minimal, backup: { compression: "xz" } }, ["backup.compression"]],
  ["negative retries", { ...minimal, health: { retries: -1 } }, ["health.retries"]],
  ["health path without slash", { ...minimal, health: { path: "health" } }, ["health.path"]],
  ["bad bucket name", { ...minimal, backup: { s3: { bucket: "Bad_Bucket" } } }, ["backup.s3.bucket"]],
  ["command tool without command", { ...minimal, migrations: { tool: "command" } }, ["migrations.command"]],
  ["unknown migration tool", { ...minimal, migrations: { tool: "flyway" } }, ["migrations.tool"]],
  ["bad docker host", { ...minimal, docker: { host: "prod.example.com" } }, ["docker.host"]],
  ["container db without password", { app: { image: "w" } }, ["dbPassword"]],
  ["external db without URL", { app: { image: "w" }, database: { mode: "external" } }, ["databaseUrl"]],
  ["unknown database mode", { ...minimal, database: { mode: "sqlite" } }, ["database.mode"]],
  ["app and db on one host port", { ...minimal, app: { image: "w", hostPort: 5432 } }, ["app.hostPort"]],
  [
    "remote host needs a health URL and container-side backup and migrations",
    { ...minimal, docker: { host: "ssh://deploy@prod" } },
    ["health.url", "backup.runIn", "migrations.runIn"],
  ],
  ["unknown secret name", { ...minimal, secretsSet: ["dbPassword", "apiKey"] }, ["secretsSet.1"]],
];

for (const [name, raw, keys] of cases) {
  test(`config error: ${name}`, () => {
    assert.deepEqual(
      problemsOf(raw).map((p) => p.slice(0, p.indexOf(":"))),
      keys,
    );
  });
}

test("every problem is reported at once, in one message that says where to fix it", () => {
  try {
    parseStackConfig(
      { app: { port: "80" }, health: { retries: 0 }, backup: { retentionDays: 0 } },
      "production",
    );
    assert.fail("expected an error");
  } catch (e) {
    assert.ok(e instanceof ConfigError);
    assert.equal(e.problems.length, 5);
    assert.match(e.message, /^Stack config of "production" is invalid \(5 problems\):/);
    for (const key of ["app.image", "app.port", "health.retries", "backup.retentionDays", "dbPassword"]) {
      assert.match(e.message, new RegExp(`  - ${key.replace(".", "\\.")}: `));
    }
    assert.match(e.message, /Fix them in Pulumi\.production\.yaml/);
  }
});

test("maintenance during migrations needs the blue-green proxy, and says so", () => {
  const problems = problemsOf({ ...minimal, app: { image: "web:1", maintenanceDuringMigrations: true } });
  assert.equal(problems.length, 1);
  assert.match(problems[0], /^app\.maintenanceDuringMigrations: needs `app\.rollout: "blue-green"`/);
  const ok = parseStackConfig({
    ...minimal,
    app: {
      image: "web:1",
      rollout: "blue-green",
      maintenanceDuringMigrations: true,
      healthcheck: { command: ["CMD", "true"] },
    },
  });
  assert.equal(ok.app.maintenanceDuringMigrations, true);
  assert.equal(parseStackConfig(minimal).app.maintenanceDuringMigrations, false);
});
