import { before, test } from "node:test";
import assert from "node:assert/strict";
import { type RecordedResource } from "../helpers/mocks";
import { loadProgram } from "../helpers/program";
import { derivedAppPassword, scramVerifier } from "../../src/core/database/roles";

// A stack from before the split: only dbPassword is set, the owner is the image's superuser `app`.
const DB_PASSWORD = "old-stack-pw-123";
let byName: (n: string) => RecordedResource;

before(async () => {
  const loaded = await loadProgram({
    config: { app: { image: "web:1" }, backup: { dir: "./backups/staging" } },
    secrets: { dbPassword: DB_PASSWORD },
  });
  ({ byName } = loaded.rec);
});

test("without dbAppPassword the app role's password is derived from dbPassword; the app still gets the role", () => {
  const pw = derivedAppPassword(DB_PASSWORD);
  const envs: string[] = byName("staging-app-app").inputs.envs;
  assert.ok(envs.includes(`DATABASE_URL=postgres://app_rw:${pw}@db:5432/app`), envs.join("\n"));
  const setup = byName("staging-database-app-role-setup").inputs;
  assert.ok(setup.stdin.includes(scramVerifier(pw, "app_rw")));
  assert.match(
    setup.stdin,
    /ALTER DEFAULT PRIVILEGES FOR ROLE "app" GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO "app_rw"/,
  );
});
