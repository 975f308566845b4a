import { before, test } from "node:test";
import assert from "node:assert/strict";
import { plaintextPart, type RecordedResource } from "../helpers/mocks";
import { loadProgram } from "../helpers/program";
import { scramVerifier } from "../../src/core/database/roles";

const DB_PASSWORD = "0wner-Pa55-abcdef";
const APP_PASSWORD = "app-R0le-Pa55-123456";
let resources: RecordedResource[];
let byName: (n: string) => RecordedResource;

before(async () => {
  const loaded = await loadProgram({
    config: {
      app: { image: "web:1", hostPort: 8080 },
      database: { mode: "container", image: "postgres:15", user: "shop", name: "shopdb", hostPort: 55432 },
      backup: { dir: "./backups/staging" },
    },
    secrets: { dbPassword: DB_PASSWORD, dbAppPassword: APP_PASSWORD },
  });
  ({ resources, byName } = loaded.rec);
});

const ROLE_CMD = "staging-database-app-role-setup";

test("the app connects as the app role (a secret URL); migrations and backups keep the owner", () => {
  const envs: string[] = byName("staging-app-app").inputs.envs;
  assert.ok(envs.includes(`DATABASE_URL=postgres://shop_rw:${APP_PASSWORD}@db:5432/shopdb`), envs.join("\n"));
  assert.equal(
    byName("staging-migration-migrate").inputs.environment.DATABASE_URL,
    `postgres://shop:${DB_PASSWORD}@127.0.0.1:55432/shopdb`,
  );
  assert.match(byName("staging-backup").inputs.databaseUrl, /^postgres:\/\/shop:/);
});

test("the role set-up runs after the database container is up and before the migration", () => {
  const setup = byName(ROLE_CMD);
  assert.equal(setup.type, "command:local:Command");
  assert.equal(byName("staging-database-app-role").type, "safe-deploy:database:AppRole");
  assert.ok(setup.dependencies.includes(byName("staging-database-db").urn));
  assert.ok(byName("staging-migration-migrate").dependencies.includes(setup.urn));
  assert.ok(!setup.dependencies.includes(byName("staging-migration-migrate").urn));
});

test("no password in the command string; both reach it only as secrets (env, stdin)", () => {
  const setup = byName(ROLE_CMD);
  const { create, environment, stdin, triggers, logging, addPreviousOutputInEnv } = setup.inputs;
  assert.equal(
    create,
    'docker exec -i -e PGPASSWORD "$SAFE_DEPLOY_DB_CONTAINER" psql -X -q -1 -v ON_ERROR_STOP=1 -h 127.0.0.1 -U shop -d shopdb -f -',
  );
  assert.equal(environment.PGPASSWORD, DB_PASSWORD);
  assert.equal(environment.SAFE_DEPLOY_DB_CONTAINER, "staging-database-db-1234567");
  // Only the SCRAM verifier of the app role's password is sent, never the password itself.
  assert.ok(stdin.includes(scramVerifier(APP_PASSWORD, "shop_rw")) && !stdin.includes(APP_PASSWORD));
  assert.match(triggers[0], /^[0-9a-f]{16}$/, "re-runs on every release (release key)");
  assert.equal(logging, "none");
  assert.equal(addPreviousOutputInEnv, false);
  assert.deepEqual(setup.additionalSecretOutputs.sort(), ["stderr", "stdout"]);
  for (const r of resources) {
    const plain = JSON.stringify(plaintextPart(r.wireInputs));
    assert.ok(
      !plain.includes(APP_PASSWORD) && !plain.includes(DB_PASSWORD),
      `${r.name} has a password in plaintext`,
    );
  }
  const wire = plaintextPart(setup.wireInputs) as Record<string, any>;
  assert.equal(wire.stdin, "[secret]");
});
