import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, it } from "node:test";
import { checkDrift } from "../../../src/core/migrations/drift";
import { migrate } from "../../../src/core/migrations/runner";
import { startPostgres, type TestPostgres } from "../../helpers/postgres";

const ROOT = join(__dirname, "../../..");
const DIR = "examples/app/migrations";
let pg: TestPostgres;
before(async () => {
  pg = await startPostgres();
});
after(async () => pg?.close());

it("the example app's migrations apply through the runner, leave nothing pending and no drift", async () => {
  const url = await pg.createDatabase("app");
  const o = { tool: "node-pg-migrate" as const, dir: DIR, workDir: ROOT, databaseUrl: url };
  const up = await migrate({ ...o, action: "up", integrity: { criticalTables: ["notes"] } });
  assert.equal(up.before, undefined);
  assert.match(up.after ?? "", /^\d+_/);
  assert.equal((await migrate({ ...o, action: "check" })).output, "0 pending");
  assert.deepEqual((await checkDrift(o)).items, []);
  await pg.query("ALTER TABLE notes ALTER COLUMN body DROP NOT NULL", [], "app");
  assert.deepEqual(
    (await checkDrift(o)).items.map((d) => `${d.category} ${d.key}`),
    ["column public.notes.body"],
  );
});
