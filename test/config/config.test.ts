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
  // Issue 20: the change stream is on, kept an hour after the soak, dropped past 1 GB of WAL.
  assert.deepEqual(c.rollback, {
    auto: true,
    changeStream: true,
    keepChangesMinutes: 60,
    maxRetainedWalMB: 1024,
    slotWaitSeconds: 60,
    requireNoLoss: false,
  });
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
  [
    "tcp:// docker host (would be taken as local)",
    { ...minimal, docker: { host: "tcp://10.0.0.5:2376" } },
    ["docker.host"],
  ],
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
  [
    "no-loss rollback required with the change stream off",
    { ...minimal, rollback: { requireNoLoss: true, changeStream: false } },
    ["rollback.requireNoLoss"],
  ],
  [
    "WAL limit under one segment, negative keep window",
    { ...minimal, rollback: { maxRetainedWalMB: 1, keepChangesMinutes: -5 } },
    ["rollback.keepChangesMinutes", "rollback.maxRetainedWalMB"],
  ],
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

test("email needs both halves: recipients without smtpUrl, or smtpUrl without recipients, is an error", () => {
  const email = { to: ["ops@example.com"], from: "deploy@example.com" };
  assert.deepEqual(
    problemsOf({ ...minimal, notifications: { email } }).filter((p) => /smtpUrl|notifications/.test(p)),
    [
      "smtpUrl: secret is required when `notifications.email` is set: run `pulumi config set --secret smtpUrl <value>`",
    ],
  );
  const noRecipients = problemsOf({ ...minimal, secretsSet: ["dbPassword", "smtpUrl"] });
  assert.equal(noRecipients.length, 1);
  assert.match(noRecipients[0], /^notifications\.email: is required when the `smtpUrl` secret is set/);
  const c = parseStackConfig({ ...minimal, secretsSet: ["dbPassword", "smtpUrl"], notifications: { email } });
  assert.deepEqual(c.notifications.email, email);
});

test("secret values of the wrong shape are reported by key, with the command to fix them, never by value", async () => {
  const { secretValueProblems } = await import("../../src/config");
  const bad = {
    slackWebhookUrl: "hooks.slack.com/services/T000/B000/s3cr3tpath",
    webhookUrl: "ftp://example.com/x",
    smtpUrl: "https://user:sm7p-pw@mail.example.com",
    databaseUrl: "mysql://u:db-pw@h/d",
    backupEncryptionKey: "too-short-k3y",
    appSecrets: '{"JWT": 1}',
    hookSecrets: "[broken",
    dbPassword: "anything goes",
  };
  const problems = secretValueProblems(bad);
  assert.deepEqual(
    problems.map((p) => p.split(":")[0]),
    [
      "slackWebhookUrl",
      "webhookUrl",
      "smtpUrl",
      "databaseUrl",
      "backupEncryptionKey",
      "appSecrets",
      "hookSecrets",
    ],
  );
  for (const [k, v] of Object.entries(bad)) {
    const line = problems.find((p) => p.startsWith(`${k}:`));
    if (!line) continue;
    assert.ok(line.includes(`pulumi config set --secret ${k}`), line);
    for (const fragment of [v, "s3cr3tpath", "sm7p-pw", "db-pw", "too-short-k3y"])
      assert.ok(!line.includes(fragment), line);
  }
  const good = {
    slackWebhookUrl: "https://hooks.slack.com/services/T000/B000/xyz",
    webhookUrl: "http://127.0.0.1:8080/hook",
    smtpUrl: "smtps://u:p@smtp.example.com:465",
    databaseUrl: "postgresql://u:p@db:5432/app",
    backupEncryptionKey: Buffer.alloc(32, 7).toString("base64"),
    appSecrets: '{"JWT":"x"}',
  };
  assert.deepEqual(secretValueProblems(good), []);
  assert.deepEqual(secretValueProblems({ backupEncryptionKey: "0f".repeat(32) }), []);
});

test("without backup.dir, each stack writes to its own ./backups/<stack> (one shared directory let one stack's retention prune the other's backups)", () => {
  assert.equal(parseStackConfig(minimal, "staging").backup.dir, "./backups/staging");
  assert.equal(parseStackConfig(minimal, "production").backup.dir, "./backups/production");
  assert.equal(
    parseStackConfig({ ...minimal, backup: { dir: "/srv/backups" } }, "production").backup.dir,
    "/srv/backups",
  );
});

test("migrations.databaseUrlEnv: the variable the tool reads its URL from (issue 21); a name, nothing else", () => {
  const c = parseStackConfig({
    ...minimal,
    migrations: { tool: "prisma", databaseUrlEnv: "NEXT_PRIVATE_DATABASE_URL" },
  });
  assert.equal(c.migrations.databaseUrlEnv, "NEXT_PRIVATE_DATABASE_URL");
  assert.ok(
    problemsOf({ ...minimal, migrations: { databaseUrlEnv: "postgres://x" } }).some((p) =>
      /migrations\.databaseUrlEnv.*must be an environment variable name/.test(p),
    ),
  );
});
