import assert from "node:assert/strict";
import { before, test } from "node:test";
import * as pulumi from "@pulumi/pulumi";
import { plaintextPart, setupMocks, type RecordedResource } from "../helpers/mocks";

// Issue 21: `migrations.databaseUrlEnv` names the variable the tool reads (Prisma's env("...")); the
// migration step sets it to the same secret URL as DATABASE_URL, never in plaintext.
let byName: (n: string) => RecordedResource;

before(async () => {
  ({ byName } = await setupMocks({ stack: "staging" }));
  const { Migration } = await import("../../src/components/migration");
  new Migration("next", {
    tool: "prisma",
    dir: "prisma/migrations",
    workDir: "/srv/app",
    runIn: "local",
    databaseUrl: pulumi.secret("postgres://app:s3cret@db:5432/app"),
    databaseUrlEnv: "NEXT_PRIVATE_DATABASE_URL",
    migrationsChecksum: "c".repeat(64),
    backupId: "b1",
    timeoutSeconds: 120,
  });
  await new Promise((r) => setTimeout(r, 300));
});

test("the tool's own variable gets the database URL, as a secret, and the guard is told its name", () => {
  const c = byName("next-migrate");
  assert.equal(c.inputs.environment.NEXT_PRIVATE_DATABASE_URL, "postgres://app:s3cret@db:5432/app");
  assert.equal(c.inputs.environment.DATABASE_URL, "postgres://app:s3cret@db:5432/app");
  assert.doesNotMatch(JSON.stringify(plaintextPart(c.wireInputs)), /s3cret/);
  assert.match(c.inputs.create, / --database-url-env NEXT_PRIVATE_DATABASE_URL /);
});
