import { test } from "node:test";
import assert from "node:assert/strict";
import { ConfigError } from "../../src/core/errors";
import { parseStackConfig, secretValueProblems } from "../../src/config";

const messageOf = (raw: unknown): string => {
  try {
    parseStackConfig(raw, "staging");
    return "";
  } catch (e) {
    assert.ok(e instanceof ConfigError);
    return e.message;
  }
};

test("dbAppPassword and appDatabaseUrl are known secret keys; a stack without dbAppPassword stays valid", () => {
  const c = parseStackConfig({ app: { image: "w" }, secretsSet: ["dbPassword", "dbAppPassword"] });
  assert.deepEqual(c.secretsSet, ["dbPassword", "dbAppPassword"]);
  assert.equal(messageOf({ app: { image: "w" }, secretsSet: ["dbPassword"] }), "");
  assert.equal(
    messageOf({
      app: { image: "w" },
      database: { mode: "external" },
      secretsSet: ["databaseUrl", "appDatabaseUrl"],
    }),
    "",
  );
});

test("appDatabaseUrl with a managed database is an error naming the command that fixes it", () => {
  const m = messageOf({ app: { image: "w" }, secretsSet: ["dbPassword", "appDatabaseUrl"] });
  assert.match(m, /appDatabaseUrl/);
  assert.match(m, /dbAppPassword/);
  assert.match(m, /pulumi config rm appDatabaseUrl/);
});

test("shape rules: a short dbAppPassword or a non-postgres appDatabaseUrl, never echoing the value", () => {
  const problems = secretValueProblems({
    dbAppPassword: "short-Pw",
    appDatabaseUrl: "mysql://u:Leak3d@h/db",
  });
  assert.equal(problems.length, 2);
  assert.match(problems[0], /^dbAppPassword: .*pulumi config set --secret dbAppPassword/);
  assert.match(problems[1], /^appDatabaseUrl: .*pulumi config set --secret appDatabaseUrl/);
  assert.ok(!problems.join("\n").includes("short-Pw") && !problems.join("\n").includes("Leak3d"));
  assert.deepEqual(
    secretValueProblems({
      dbAppPassword: "x".repeat(24),
      appDatabaseUrl: "postgres://app_rw:p@db.example.com:5432/app",
    }),
    [],
  );
});

test("logs and notifications mask the app role's derived password (no dbAppPassword set)", async () => {
  const { secretLiterals } = await import("../../src/cli/context");
  const { derivedAppPassword } = await import("../../src/core/database/roles");
  assert.ok(secretLiterals({ dbPassword: "owner-pw-123" }).includes(derivedAppPassword("owner-pw-123")));
  assert.ok(
    !secretLiterals({ dbPassword: "o", dbAppPassword: "own-app-pw" }).includes(derivedAppPassword("o")),
  );
});
