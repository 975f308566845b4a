import { before, test } from "node:test";
import assert from "node:assert/strict";
import { plaintextPart, type RecordedResource } from "../helpers/mocks";
import { loadProgram } from "../helpers/program";
import { callSerializedProvider } from "../helpers/provider";

const URL = "postgres://supa:Ext3rnal-pw@db.example.supabase.co:5432/postgres?sslmode=require";
let resources: RecordedResource[];
let byName: (n: string) => RecordedResource;

before(async () => {
  const loaded = await loadProgram({
    // backup.runIn "container" as a remote stack sets it: an external database has no container to dump in.
    config: { app: { image: "web:2" }, database: { mode: "external" }, backup: { runIn: "container" } },
    secrets: { databaseUrl: URL },
  });
  ({ resources, byName } = loaded.rec);
});

test("an external database adds no database container or volume; every stage gets its URL", () => {
  assert.ok(!resources.some((r) => r.type === "docker:index/volume:Volume"));
  assert.deepEqual(
    resources.filter((r) => r.type === "docker:index/container:Container").map((r) => r.name),
    ["staging-app-app"],
  );
  assert.equal(byName("staging-backup").inputs.databaseUrl, URL);
  assert.equal(byName("staging-migration-migrate").inputs.environment.DATABASE_URL, URL);
  assert.ok(byName("staging-app-app").inputs.envs.includes(`DATABASE_URL=${URL}`));
  assert.ok(byName("staging-migration-migrate").dependencies.includes(byName("staging-backup").urn));
});

test("the external URL stays a secret everywhere", () => {
  for (const r of resources)
    assert.ok(!JSON.stringify(plaintextPart(r.wireInputs)).includes("Ext3rnal-pw"), r.name);
});

test("backup.runIn container with an external database dumps from this machine; the provider accepts it", async () => {
  const { __provider: text, ...inputs } = byName("staging-backup").inputs;
  assert.equal(inputs.runIn, "local");
  assert.equal(inputs.container, undefined);
  const r = await callSerializedProvider(text, "check", [{}, inputs]);
  assert.deepEqual(r.failures, []);
});
