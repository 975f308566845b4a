import { before, test } from "node:test";
import assert from "node:assert/strict";
import { plaintextPart, type RecordedResource } from "../helpers/mocks";
import { loadProgram } from "../helpers/program";

const OWNER_URL = "postgres://owner:0wner-pw@db.example.com:5432/shop?sslmode=require";
const APP_URL = "postgres://app_rw:App-pw-123@db.example.com:5432/shop?sslmode=require";
let resources: RecordedResource[];
let byName: (n: string) => RecordedResource;

before(async () => {
  const loaded = await loadProgram({
    config: { app: { image: "web:2" }, database: { mode: "external" } },
    secrets: { databaseUrl: OWNER_URL, appDatabaseUrl: APP_URL },
  });
  ({ resources, byName } = loaded.rec);
});

test("external database: the app takes appDatabaseUrl, migrations and backups the owner's databaseUrl", () => {
  assert.ok(byName("staging-app-app").inputs.envs.includes(`DATABASE_URL=${APP_URL}`));
  assert.equal(byName("staging-migration-migrate").inputs.environment.DATABASE_URL, OWNER_URL);
  assert.equal(byName("staging-backup").inputs.databaseUrl, OWNER_URL);
  assert.ok(
    !resources.some((r) => r.name.includes("app-role")),
    "no role set-up: the provider's admin does it",
  );
  for (const r of resources)
    assert.ok(!JSON.stringify(plaintextPart(r.wireInputs)).includes("App-pw-123"), r.name);
});
